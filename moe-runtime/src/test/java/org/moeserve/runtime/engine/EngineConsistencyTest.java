package org.moeserve.runtime.engine;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;
import org.moeserve.runtime.TestModels;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.ExpertWeights;
import org.moeserve.runtime.model.MoeModel;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The engine's invariants on the demo model (and, where the attention or MLP differs, the other shapes): incremental decode with the KV cache equals recomputing the whole
 * sequence; a sequence batched with others equals the sequence alone; the thread count changes nothing; every
 * expert the router picks is obtained through the ExpertStore and released.
 */
class EngineConsistencyTest {
    static final int[] PROMPT = "And God said, Let there be light".chars().toArray();

    /** Every attention and MLP shape: grouped-query, q/k/v biases with a gated shared expert, MLA with and without a q LoRA. */
    static final List<String> SHAPES = List.of("tiny-mixtral-kjv", "tiny-qwen2moe-random", "tiny-deepseekv2-random",
            "tiny-deepseekv3-random");

    /** Bit-identical: MLA runs absorbed for prefill and decode alike, so the cached latent gives the same bits. */
    @ParameterizedTest
    @FieldSource("SHAPES")
    void incrementalDecodeEqualsFullRecomputation(String model) {
        try (MoeModel m = MoeModel.load(TestModels.dir(model))) {
            Engine e = new Engine(m, Parallel.SERIAL);
            Sequence inc = e.newSequence();
            e.forward(List.of(new Engine.Step(inc, Arrays.copyOf(PROMPT, 5)))).logits();
            for (int t = 5; t < PROMPT.length; t++) {
                float[] step = e.forward(List.of(new Engine.Step(inc, new int[]{PROMPT[t]}))).logits()[0];
                float[] full = e.forward(List.of(new Engine.Step(e.newSequence(), Arrays.copyOf(PROMPT, t + 1)))).logits()[0];
                assertArrayEquals(full, step, model + " position " + t);
            }
            assertEquals(PROMPT.length, inc.length());
            assertArrayEquals(PROMPT, inc.tokens());
        }
    }

    @ParameterizedTest
    @FieldSource("SHAPES")
    void batchedSequencesEqualEachAloneAndThreadsChangeNothing(String model) {
        String[] texts = {"In the beginning", "hacker n.", "def f(x):\n    return", "A fool and"};
        try (MoeModel m = MoeModel.load(TestModels.dir(model)); Parallel two = new Parallel(2)) {
            // alone, one thread
            List<float[]> alone = new ArrayList<>();
            Engine serial = new Engine(m, Parallel.SERIAL);
            for (String t : texts) {
                Sequence s = serial.newSequence();
                float[] l = serial.forward(List.of(new Engine.Step(s, t.chars().toArray()))).logits()[0];
                alone.add(serial.forward(List.of(new Engine.Step(s, new int[]{32}))).logits()[0]);
                assertEquals(t.length() + 1, s.length(), l.length + " logits");
            }
            // together (mixed prefill lengths, then a batched decode step), two threads
            Engine batched = new Engine(m, two);
            List<Engine.Step> prefill = new ArrayList<>(), decode = new ArrayList<>();
            for (String t : texts) prefill.add(new Engine.Step(batched.newSequence(), t.chars().toArray()));
            batched.forward(prefill).logits();
            for (Engine.Step s : prefill) decode.add(new Engine.Step(s.sequence(), new int[]{32}));
            float[][] together = batched.forward(decode).logits();
            for (int i = 0; i < texts.length; i++) {
                assertArrayEquals(alone.get(i), together[i], "sequence " + i + " batched vs alone (bit-identical)");
            }
        }
    }

    /**
     * At widths past the fork thresholds (DeepSeek-V2's layout widened: hidden 1024, 8 experts of 1024, top-3, two
     * shared experts, a dense first layer), a decode step computes all of a token's experts and the shared expert in
     * two forks cut across their products, and prefill runs the shared expert in the routed experts' fork: one, two
     * and three threads, and a store that may wait (the path the offload tiers take), give the same bits at every step.
     */
    @Test
    void decodeAtRealWidthsForksAcrossExpertsAndKeepsOneThreadsBits(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp)
            throws java.io.IOException {
        java.nio.file.Path src = TestModels.dir("tiny-deepseekv2-random");
        com.fasterxml.jackson.databind.node.ObjectNode raw = (com.fasterxml.jackson.databind.node.ObjectNode)
                new com.fasterxml.jackson.databind.ObjectMapper().readTree(src.resolve("config.json").toFile());
        raw.put("hidden_size", 1024).put("moe_intermediate_size", 1024).put("intermediate_size", 2048)
                .put("num_hidden_layers", 2).put("n_routed_experts", 8).put("num_experts_per_tok", 3);
        org.moeserve.runtime.model.ModelConfig c = org.moeserve.runtime.model.ModelConfig.fromJson(raw, src.resolve("config.json"));
        org.moeserve.runtime.model.Synth.write(raw, c, org.moeserve.runtime.model.DType.BF16, 3, Long.MAX_VALUE, tmp, TestModels.dir("tiny-mixtral-kjv"));
        try (MoeModel m = MoeModel.load(tmp); Parallel two = new Parallel(2); Parallel three = new Parallel(3)) {
            ExpertStore waits = (layer, expert) -> m.expert(layer, expert); // neverWaits() false: one expert at a time
            List<Engine> engines = List.of(new Engine(m, Parallel.SERIAL), new Engine(m, two), new Engine(m, three), new Engine(m, waits, two));
            List<List<float[]>> steps = new ArrayList<>();
            for (Engine e : engines) {
                List<float[]> got = new ArrayList<>();
                Sequence s = e.newSequence();
                float[] l = e.forward(List.of(new Engine.Step(s, Arrays.copyOf(PROMPT, 6)))).logits()[0];
                got.add(l);
                for (int t = 0; t < 5; t++) {
                    l = e.forward(List.of(new Engine.Step(s, new int[]{org.moeserve.runtime.engine.Sampler.argmax(l)}))).logits()[0];
                    got.add(l);
                }
                steps.add(got);
            }
            assertTrue(Float.isFinite(steps.get(0).get(5)[0]));
            for (int e = 1; e < engines.size(); e++) {
                for (int t = 0; t < steps.get(0).size(); t++) assertArrayEquals(steps.get(0).get(t), steps.get(e).get(t), "engine " + e + ", step " + t);
            }
        }
    }

    /**
     * The first (partly interpreted) run and a run after the JIT has compiled the kernels give the same bits:
     * guards against Vector API operations whose interpreter fallback rounds differently from the intrinsic.
     */
    @Test
    void coldAndWarmRunsAreBitIdentical() {
        try (MoeModel m = MoeModel.load(TestModels.dir("tiny-olmoe-random")); Parallel two = new Parallel(2)) {
            Engine e = new Engine(m, two);
            float[] cold = e.forward(List.of(new Engine.Step(e.newSequence(), PROMPT))).logits()[0];
            for (int i = 0; i < 400; i++) e.forward(List.of(new Engine.Step(e.newSequence(), PROMPT))).logits();
            float[] warm = e.forward(List.of(new Engine.Step(e.newSequence(), PROMPT))).logits()[0];
            assertArrayEquals(cold, warm);
        }
    }

    @Test
    void everyRoutedExpertIsAcquiredThroughTheStoreAndReleased() {
        try (MoeModel m = MoeModel.load(TestModels.dir("tiny-mixtral-kjv"))) {
            AtomicInteger acquired = new AtomicInteger(), released = new AtomicInteger();
            ExpertStore counting = new ExpertStore() {
                @Override
                public ExpertWeights acquire(int layer, int expert) {
                    acquired.incrementAndGet();
                    return m.expert(layer, expert);
                }

                @Override
                public void release(int layer, int expert) { released.incrementAndGet(); }
            };
            Engine e = new Engine(m, counting, Parallel.SERIAL);
            boolean[][] used = new boolean[m.config().moeLayers()][m.config().experts()];
            Engine.Forward fwd = e.forward(List.of(new Engine.Step(e.newSequence(), PROMPT)));
            for (int l = 0; l < used.length; l++) for (int r = 0; r < PROMPT.length; r++) for (int x : fwd.routing().experts(l, r)) used[l][x] = true;
            float[] viaStore = fwd.logits()[0];
            int distinct = 0;
            for (boolean[] l : used) for (boolean u : l) if (u) distinct++;
            assertEquals(distinct, acquired.get(), "one acquire per (layer, expert) the batch routes to");
            assertEquals(acquired.get(), released.get());
            Engine resident = new Engine(m, Parallel.SERIAL);
            assertArrayEquals(resident.forward(List.of(new Engine.Step(resident.newSequence(), PROMPT))).logits()[0], viaStore);
        }
    }

    @Test
    void routingHoldsTopKWithWeightsInOrder() {
        try (MoeModel m = MoeModel.load(TestModels.dir("tiny-mixtral-kjv"))) {
            Engine e = new Engine(m, Parallel.SERIAL);
            List<float[]> weights = new ArrayList<>();
            Routing rt = e.forward(List.of(new Engine.Step(e.newSequence(), PROMPT))).routing();
            for (int l = 0; l < rt.moeLayers(); l++) {
                for (int r = 0; r < rt.rows(); r++) {
                    int[] experts = rt.experts(l, r);
                    assertEquals(2, experts.length);
                    assertTrue(experts[0] != experts[1]);
                    weights.add(rt.weights(l, r));
                }
            }
            assertEquals(PROMPT.length * m.config().layers(), weights.size());
            for (float[] w : weights) {
                assertTrue(w[0] >= w[1], "highest weight first");
                assertEquals(1.0, w[0] + w[1], 1e-5, "Mixtral renormalises its top-k weights");
            }
        }
    }

    @Test
    void badTokensAndContextOverflowAreRejected() {
        try (MoeModel m = MoeModel.load(TestModels.dir("tiny-mixtral-kjv"))) {
            Engine e = new Engine(m, Parallel.SERIAL);
            IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                    () -> e.forward(List.of(new Engine.Step(e.newSequence(), new int[]{1, 999}))).logits());
            assertTrue(bad.getMessage().contains("token id 999"), bad.getMessage());
            // admission refuses a prompt that leaves no room; past admission, overflow is a broken invariant
            IllegalArgumentException full = assertThrows(IllegalArgumentException.class, () -> e.checkFits(256));
            assertTrue(full.getMessage().contains("context is 256"), full.getMessage());
            e.checkFits(255);
            assertThrows(IllegalStateException.class, () -> e.forward(List.of(new Engine.Step(e.newSequence(), new int[257]))));
            // --max-context: a tighter bound than the config's, named in the refusal
            e.limitContext(32);
            IllegalArgumentException limited = assertThrows(IllegalArgumentException.class, () -> e.checkFits(32));
            assertTrue(limited.getMessage().contains("context is 32 (--max-context)"), limited.getMessage());
            assertEquals(7, e.room(25));
            Sequence s = e.newSequence();
            e.forward(List.of(new Engine.Step(s, new int[31])));
            assertEquals(32, s.cache.capacity(), "the cache never grows past the limit");
            assertThrows(IllegalStateException.class, () -> e.forward(List.of(new Engine.Step(s, new int[]{1, 2}))));
            for (int bad2 : new int[]{1, 257}) {
                IllegalArgumentException r = assertThrows(IllegalArgumentException.class, () -> e.limitContext(bad2));
                assertTrue(r.getMessage().contains("--max-context is " + bad2 + " but must be in 2..256"), r.getMessage());
            }
        }
    }
}
