package org.moeserve.runtime.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;
import org.moeserve.runtime.TestModels;
import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.engine.Generator;
import org.moeserve.runtime.engine.SamplingParams;
import org.moeserve.runtime.kernel.Parallel;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Random-weight checkpoints: the manifest names what real checkpoints hold, and what synth writes loads and runs. */
class SynthTest {
    static final List<String> MODELS = TestModels.ALL;

    /** The manifest is what the loader reads: every shared checkpoint of a supported family holds exactly it. */
    @ParameterizedTest
    @FieldSource("MODELS")
    void theManifestIsEveryTensorOfARealCheckpoint(String name) {
        try (Checkpoint ck = Checkpoint.open(TestModels.dir(name))) {
            List<Manifest.Entry> m = Manifest.of(ck.config());
            TreeSet<String> names = new TreeSet<>();
            for (Manifest.Entry e : m) {
                names.add(e.name());
                assertArrayEquals(e.shape(), ck.tensor(e.name(), null, e.shape()).shape(), e.name());
            }
            TreeSet<String> held = ck.tensorNames();
            if (ck.config().tieWordEmbeddings()) held.remove("lm_head.weight");
            assertEquals(held, names, name);
        }
    }

    /** The bundled configs of real models: their synthesised checkpoints hold the published parameter counts. */
    @Test
    void bundledRealConfigsHaveThePublishedParameterCounts() throws IOException {
        Path configs = TestModels.dir("tiny-mixtral-kjv").getParent().resolve("configs");
        Object[][] published = {{"mistralai--Mixtral-8x7B-v0.1", 46.7e9}, {"Qwen--Qwen3-30B-A3B", 30.5e9},
                {"allenai--OLMoE-1B-7B-0924", 6.92e9}, {"Qwen--Qwen3-235B-A22B", 235e9},
                {"deepseek-ai--DeepSeek-V2-Lite", 15.7e9}, {"deepseek-ai--DeepSeek-V3", 671e9}}; // V3 without its MTP layer
        for (Object[] p : published) {
            Path f = configs.resolve(p[0] + ".config.json");
            ModelConfig c = ModelConfig.fromJson(new ObjectMapper().readTree(f.toFile()), f);
            double params = Synth.bytes(c, DType.BF16) / 2.0;
            assertEquals((double) p[1], params, (double) p[1] * 0.01, p[0] + ": " + params);
        }
    }

    static ObjectNode config(String name) throws IOException {
        return (ObjectNode) new ObjectMapper().readTree(TestModels.dir(name).resolve("config.json").toFile());
    }

    @ParameterizedTest
    @FieldSource("MODELS")
    void aSynthesisedCheckpointLoadsAndDecodesAndShardingChangesNoValue(String name, @TempDir Path tmp) throws IOException {
        ObjectNode raw = config(name);
        ModelConfig c = ModelConfig.fromJson(raw, TestModels.dir(name).resolve("config.json"));
        Path one = tmp.resolve("one"), many = tmp.resolve("many");
        List<Path> single = Synth.write(raw, c, DType.BF16, 5, Long.MAX_VALUE, one, TestModels.dir("tiny-mixtral-kjv"));
        List<Path> shards = Synth.write(raw, c, DType.BF16, 5, Synth.bytes(c, DType.BF16) / 6, many, TestModels.dir("tiny-mixtral-kjv"));
        assertEquals(1, single.size());
        assertTrue(shards.size() > 3 && Files.exists(many.resolve("model.safetensors.index.json")), shards.toString());
        assertEquals(Synth.bytes(c, DType.BF16), shards.stream().mapToLong(p -> p.toFile().length()).sum(), 1 << 20,
                "the data, plus page-aligned headers");
        try (MoeModel a = MoeModel.load(one); MoeModel b = MoeModel.load(many)) {
            assertEquals(DType.BF16, a.dtype());
            for (int l : new int[]{0, c.moeLayers() - 1}) {
                assertArrayEquals(a.expert(l, 1).down().data().toArray(ValueLayout.JAVA_BYTE),
                        b.expert(l, 1).down().data().toArray(ValueLayout.JAVA_BYTE), "one seed, one value, any sharding");
            }
            float[] norm = a.finalNorm();
            assertTrue(Arrays.stream(new float[][]{norm}).allMatch(n -> n[0] == 1f && n[n.length - 1] == 1f), "norms are ones");
            float max = 0;
            for (long i = 0; i < a.expert(0, 0).up().elements(); i++) max = Math.max(max, Math.abs(a.expert(0, 0).up().get(i)));
            assertTrue(max > 0 && max <= Math.sqrt(3.0 / c.hiddenSize()) * 1.01, "|w| <= sqrt(3 / in): " + max);
            Generator g = new Generator(new Engine(a, Parallel.SERIAL));
            int[] out = g.generate(new Generator.Request(new int[]{1, 72, 101, 108}, 6, SamplingParams.GREEDY, false), t -> { }).tokens();
            assertEquals(6, out.length, "decodes (finite logits all the way)");
        }
    }
}
