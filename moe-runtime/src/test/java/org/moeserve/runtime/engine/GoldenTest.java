package org.moeserve.runtime.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.moeserve.runtime.TestModels;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.MoeModel;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The forward pass against golden.json: fp32 logits, routing and greedy continuations computed by PyTorch from
 * the same weights (models/README.md). Tolerances are the issue's: logits within 2e-3 * max(1, |logit|);
 * top-k sets identical unless the reference's k-th and (k+1)-th probabilities differ by under 1e-5; greedy
 * continuations identical token for token.
 */
class GoldenTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static Parallel par;

    @BeforeAll
    static void pool() { par = new Parallel(2); }

    @AfterAll
    static void close() { par.close(); }

    static Stream<Arguments> prompts() throws IOException {
        List<Arguments> out = new ArrayList<>();
        for (String m : TestModels.ALL) {
            JsonNode g = JSON.readTree(TestModels.dir(m).resolve("golden.json").toFile());
            for (int i = 0; i < g.get("prompts").size(); i++) out.add(Arguments.of(m, i));
        }
        return out.stream();
    }

    static JsonNode golden(String model, int prompt) throws IOException {
        return JSON.readTree(TestModels.dir(model).resolve("golden.json").toFile()).get("prompts").get(prompt);
    }

    static int[] ints(JsonNode a) {
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = a.get(i).asInt();
        return out;
    }

    @ParameterizedTest(name = "{0} prompt {1}: logits and routing at every position")
    @MethodSource("prompts")
    void logitsAndRoutingMatchReference(String modelName, int prompt) throws IOException {
        JsonNode g = golden(modelName, prompt);
        int[] ids = ints(g.get("input_ids"));
        try (MoeModel model = MoeModel.load(TestModels.dir(modelName))) {
            Engine engine = new Engine(model, par);
            Map<String, int[]> routed = new HashMap<>(); // "model layer/pos" -> experts
            Engine.Forward fwd = engine.forward(List.of(new Engine.Step(engine.newSequence(), ids)), true, false);
            float[][] logits = fwd.logits();
            int[] modelLayer = model.config().modelLayerOf();
            for (int m = 0; m < fwd.routing().moeLayers(); m++) {
                for (int p = 0; p < ids.length; p++) routed.put(modelLayer[m] + "/" + p, fwd.routing().experts(m, p));
            }

            JsonNode ref = g.get("logits");
            assertEquals(ids.length, logits.length);
            double worst = 0;
            for (int p = 0; p < ids.length; p++) {
                for (int t = 0; t < logits[p].length; t++) {
                    double want = ref.get(p).get(t).asDouble();
                    double err = Math.abs(logits[p][t] - want) / Math.max(1, Math.abs(want));
                    worst = Math.max(worst, err);
                    if (err > 2e-3) {
                        fail(modelName + " prompt " + prompt + ": logit[" + p + "][" + t + "] = " + logits[p][t]
                                + ", reference " + want);
                    }
                }
            }
            int checked = 0;
            for (JsonNode layerRouting : g.get("routing")) {
                int layer = layerRouting.get("layer").asInt();
                for (int p = 0; p < ids.length; p++) {
                    int[] want = ints(layerRouting.get("experts").get(p));
                    int[] got = routed.get(layer + "/" + p);
                    int[] a = want.clone(), b = got.clone();
                    Arrays.sort(a);
                    Arrays.sort(b);
                    assertArrayEquals(a, b, modelName + " prompt " + prompt + " layer " + layer + " position " + p
                            + ": experts " + Arrays.toString(got) + ", reference " + Arrays.toString(want));
                    checked++;
                }
            }
            assertTrue(checked > 0, "golden.json has routing to check");
        }
    }

    @ParameterizedTest(name = "{0} prompt {1}: greedy continuation, token for token")
    @MethodSource("prompts")
    void greedyContinuationMatchesReference(String modelName, int prompt) throws IOException {
        JsonNode g = golden(modelName, prompt);
        int[] ids = ints(g.get("input_ids"));
        int[] want = ints(g.get("greedy_ids"));
        try (MoeModel model = MoeModel.load(TestModels.dir(modelName))) {
            Engine engine = new Engine(model, par);
            Sequence seq = engine.newSequence();
            float[] logits = engine.forward(List.of(new Engine.Step(seq, ids))).logits()[0];
            int[] got = new int[want.length];
            for (int i = 0; i < want.length; i++) {
                got[i] = Sampler.argmax(logits);
                logits = engine.forward(List.of(new Engine.Step(seq, new int[]{got[i]}))).logits()[0];
            }
            assertArrayEquals(want, got, modelName + " prompt " + prompt + " greedy continuation");
        }
    }
}
