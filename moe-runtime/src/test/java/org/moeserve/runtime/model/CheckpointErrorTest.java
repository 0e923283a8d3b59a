package org.moeserve.runtime.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.moeserve.runtime.TestModels;
import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.kernel.Parallel;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bad checkpoints fail with one clear message naming the file, the tensor, what was expected and what was found.
 * Each case is a real model directory on disk: a copy of tiny-olmoe-random with one thing broken.
 */
class CheckpointErrorTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String GATE = "model.layers.1.mlp.gate.weight";
    @TempDir
    Path tmp;
    int copies;

    /** A copy of the OLMoE checkpoint whose safetensors header has been edited by {@code edit}. */
    Path copyWithHeader(Consumer<ObjectNode> edit) throws IOException {
        Path src = TestModels.dir("tiny-olmoe-random"), dst = tmp.resolve("model-" + copies++);
        Files.createDirectories(dst);
        for (String f : List.of("config.json", "tokenizer.json", "tokenizer_config.json")) {
            Files.copy(src.resolve(f), dst.resolve(f));
        }
        byte[] all = Files.readAllBytes(src.resolve("model.safetensors"));
        long n = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        ObjectNode header = (ObjectNode) JSON.readTree(new String(all, 8, (int) n, StandardCharsets.UTF_8));
        edit.accept(header);
        write(dst.resolve("model.safetensors"), header, Arrays.copyOfRange(all, 8 + (int) n, all.length));
        return dst;
    }

    static void write(Path file, ObjectNode header, byte[] data) throws IOException {
        byte[] h = JSON.writeValueAsBytes(header);
        int padded = (h.length + 7) / 8 * 8;
        ByteBuffer b = ByteBuffer.allocate(8 + padded + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(padded).put(h);
        for (int i = h.length; i < padded; i++) b.put((byte) ' ');
        b.put(data);
        Files.write(file, b.array());
    }

    static void fails(Path dir, String... fragments) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> MoeModel.load(dir).close());
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "message should contain '" + f + "': " + e.getMessage());
        }
    }

    void editConfig(Path dir, Consumer<ObjectNode> edit) throws IOException {
        ObjectNode c = (ObjectNode) JSON.readTree(dir.resolve("config.json").toFile());
        edit.accept(c);
        JSON.writeValue(dir.resolve("config.json").toFile(), c);
    }

    @Test
    void missingDirectoryConfigAndWeights() throws IOException {
        fails(tmp.resolve("nowhere"), "nowhere", "model directory not found");
        Path dir = copyWithHeader(h -> {});
        Files.delete(dir.resolve("model.safetensors"));
        fails(dir, "no weights", "model.safetensors");
        Files.delete(dir.resolve("config.json"));
        fails(dir, "config.json", "file not found");
    }

    @Test
    void unknownArchitecture() throws IOException {
        Path dir = copyWithHeader(h -> {});
        editConfig(dir, c -> c.putArray("architectures").add("LlamaForCausalLM"));
        fails(dir, "config.json", "LlamaForCausalLM", "MixtralForCausalLM, Qwen3MoeForCausalLM, OlmoeForCausalLM");
    }

    @Test
    void configFieldMissingOrOutOfRange() throws IOException {
        Path dir = copyWithHeader(h -> {});
        editConfig(dir, c -> c.put("num_experts_per_tok", 99));
        fails(dir, "num_experts_per_tok is 99", "16");
        editConfig(dir, c -> { c.put("num_experts_per_tok", 4); c.remove("hidden_size"); });
        fails(dir, "hidden_size is missing");
    }

    @Test
    void tensorMissing() throws IOException {
        fails(copyWithHeader(h -> h.remove("model.layers.1.mlp.experts.3.up_proj.weight")),
                "tensor model.layers.1.mlp.experts.3.up_proj.weight is missing");
    }

    @Test
    void tensorOfWrongShape() throws IOException {
        // same number of elements (16*64 = 8*128), so only the shape is wrong
        fails(copyWithHeader(h -> ((ObjectNode) h.get(GATE)).putArray("shape").add(8).add(128)),
                "model.safetensors", GATE, "has shape [8, 128], config wants [16, 64]");
    }

    @Test
    void tensorOfWrongDtype() throws IOException {
        fails(copyWithHeader(h -> ((ObjectNode) h.get(GATE)).put("dtype", "I16")),
                GATE, "has dtype I16", "supported dtypes are BF16, F16 and F32");
        fails(copyWithHeader(h -> ((ObjectNode) h.get(GATE)).put("dtype", "F16")),
                GATE, "has dtype F16", "other weights are BF16");
    }

    @Test
    void truncatedFile() throws IOException {
        Path dir = copyWithHeader(h -> {});
        Path f = dir.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(f);
        Files.write(f, Arrays.copyOf(all, all.length - 1000));
        fails(dir, "model.safetensors", "truncated", "ends at byte");
        Files.write(f, Arrays.copyOf(all, 5));
        fails(dir, "truncated", "5 bytes");
    }

    @Test
    void corruptHeader() throws IOException {
        Path dir = copyWithHeader(h -> {});
        Path f = dir.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(f);
        byte[] bad = all.clone();
        ByteBuffer.wrap(bad).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 1L << 40);
        Files.write(f, bad);
        fails(dir, "corrupt safetensors header", "header length 1099511627776");
        bad = all.clone();
        bad[8] = 'x'; // the header's opening brace
        Files.write(f, bad);
        fails(dir, "corrupt safetensors header", "not valid JSON");
        fails(copyWithHeader(h -> ((ObjectNode) h.get(GATE)).putArray("data_offsets").add(10).add(2)),
                GATE, "data_offsets");
    }

    @Test
    void shardedCheckpointLoadsAndComputesLikeTheSingleFile() throws IOException {
        Path single = TestModels.dir("tiny-olmoe-random");
        byte[] all = Files.readAllBytes(single.resolve("model.safetensors"));
        long n = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        ObjectNode header = (ObjectNode) JSON.readTree(new String(all, 8, (int) n, StandardCharsets.UTF_8));
        byte[] data = Arrays.copyOfRange(all, 8 + (int) n, all.length);
        Path dir = tmp.resolve("sharded");
        Files.createDirectories(dir);
        for (String f : List.of("config.json", "tokenizer.json", "tokenizer_config.json")) {
            Files.copy(single.resolve(f), dir.resolve(f));
        }
        // tensors alternate between two shards, each shard with its own packed data region
        ObjectNode[] h = {JSON.createObjectNode(), JSON.createObjectNode()};
        java.io.ByteArrayOutputStream[] d = {new java.io.ByteArrayOutputStream(), new java.io.ByteArrayOutputStream()};
        ObjectNode weightMap = JSON.createObjectNode();
        int i = 0;
        for (Iterator<String> it = header.fieldNames(); it.hasNext(); ) {
            String name = it.next();
            if (name.equals("__metadata__")) continue;
            ObjectNode e = header.get(name).deepCopy();
            ArrayNode offs = (ArrayNode) e.get("data_offsets");
            int s = i++ % 2;
            long begin = offs.get(0).asLong(), end = offs.get(1).asLong();
            long at = d[s].size();
            d[s].write(data, (int) begin, (int) (end - begin));
            e.putArray("data_offsets").add(at).add(at + end - begin);
            h[s].set(name, e);
            weightMap.put(name, "model-0000" + (s + 1) + "-of-00002.safetensors");
        }
        for (int s = 0; s < 2; s++) write(dir.resolve("model-0000" + (s + 1) + "-of-00002.safetensors"), h[s], d[s].toByteArray());
        ObjectNode index = JSON.createObjectNode();
        index.set("weight_map", weightMap);
        JSON.writeValue(dir.resolve("model.safetensors.index.json").toFile(), index);

        int[] prompt = {72, 101, 108, 108, 111};
        try (MoeModel a = MoeModel.load(single); MoeModel b = MoeModel.load(dir)) {
            float[] la = new Engine(a, Parallel.SERIAL).forward(List.of(stepOf(new Engine(a, Parallel.SERIAL), prompt))).logits()[0];
            Engine eb = new Engine(b, Parallel.SERIAL);
            float[] lb = eb.forward(List.of(stepOf(eb, prompt))).logits()[0];
            assertArrayEquals(la, lb, "sharded vs single-file logits");
        }
        // a shard the index names but that is not there
        Files.delete(dir.resolve("model-00002-of-00002.safetensors"));
        fails(dir, "model-00002-of-00002.safetensors", "file not found");
    }

    static Engine.Step stepOf(Engine e, int[] tokens) { return new Engine.Step(e.newSequence(), tokens); }

    /** Every config field is range-checked at load: one line naming the whole path, the field and its value. */
    @Test
    void configValuesOutOfRangeFailInOneLineNamingTheWholePath() throws IOException {
        Object[][] cases = {
                {"num_attention_heads", 0, "num_attention_heads is 0"},
                {"num_hidden_layers", -1, "num_hidden_layers is -1"},
                {"num_hidden_layers", Integer.MAX_VALUE, "num_hidden_layers is 2147483647"},
                {"rms_norm_eps", -1, "rms_norm_eps is -1"},
                {"rope_theta", 0, "rope_theta is 0"},
                {"hidden_act", "gelu", "hidden_act is \"gelu\""},
                {"sliding_window", 64, "sliding_window is 64"},
                {"bos_token_id", 100000, "bos_token_id is 100000"},
                {"eos_token_id", -5, "eos_token_id -5"},
                {"num_experts_per_tok", 99, "num_experts_per_tok is 99"},
                {"vocab_size", "many", "vocab_size is \"many\""},
        };
        for (Object[] c : cases) {
            Path dir = copyWithHeader(h -> {});
            editConfig(dir, cfg -> {
                if (c[1] instanceof Integer i) cfg.put((String) c[0], i);
                else cfg.put((String) c[0], (String) c[1]);
                if (c[0].equals("sliding_window")) cfg.put("use_sliding_window", true);
            });
            CheckpointException e = assertThrows(CheckpointException.class, () -> MoeModel.load(dir).close(), (String) c[0]);
            assertTrue(e.getMessage().contains((String) c[2]), c[0] + ": " + e.getMessage());
            assertTrue(e.getMessage().startsWith(dir.toAbsolutePath().resolve("config.json").toString()), "the whole path: " + e.getMessage());
            assertTrue(e.getMessage().lines().count() == 1, "one line: " + e.getMessage());
        }
    }

    /** A context of 2^31-1 positions costs nothing until a sequence gets there (RoPE tables grow with use). */
    @Test
    void aHugeContextIsSizedByUseNotByTheConfig() throws IOException {
        Path dir = copyWithHeader(h -> {});
        editConfig(dir, cfg -> cfg.put("max_position_embeddings", Integer.MAX_VALUE));
        long t0 = System.nanoTime();
        try (MoeModel m = MoeModel.load(dir)) {
            Engine e = new Engine(m, Parallel.SERIAL);
            float[] logits = e.forward(List.of(new Engine.Step(e.newSequence(), new int[]{1, 2, 3}))).logits()[0];
            assertTrue(Float.isFinite(logits[0]));
        }
        assertTrue(System.nanoTime() - t0 < 20_000_000_000L, "no context-sized tables were built");
    }

    /** A NaN in the weights is named when it reaches the logits, not printed as NUL bytes. */
    @Test
    void nanWeightsAreNamedNotGenerated() throws IOException {
        Path dir = copyWithHeader(h -> {});
        byte[] all = Files.readAllBytes(dir.resolve("model.safetensors"));
        long n = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        com.fasterxml.jackson.databind.JsonNode t = JSON.readTree(new String(all, 8, (int) n, StandardCharsets.UTF_8)).get("model.norm.weight");
        long begin = 8 + n + t.get("data_offsets").get(0).asLong();
        int width = t.get("dtype").asText().equals("F32") ? 4 : 2;
        for (long i = begin; i < begin + 8L * width; i++) all[(int) i] = (byte) 0xff; // NaN whatever the dtype
        Files.write(dir.resolve("model.safetensors"), all);
        try (MoeModel m = MoeModel.load(dir)) {
            Engine e = new Engine(m, Parallel.SERIAL);
            IllegalStateException x = assertThrows(IllegalStateException.class,
                    () -> e.forward(List.of(new Engine.Step(e.newSequence(), new int[]{1, 2}))));
            assertTrue(x.getMessage().contains("non-finite") && x.getMessage().contains(dir.getFileName().toString()), x.getMessage());
        }
    }
}
