package org.moeserve.runtime.engine;

import org.junit.jupiter.api.Test;
import org.moeserve.routing.TraceHeader;
import org.moeserve.routing.TraceReader;
import org.moeserve.routing.TraceRecord;
import org.moeserve.runtime.TestModels;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.MoeModel;

import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** --routing-replay: the engine routes by a recorded trace, and replaying a model's own routing reproduces it. */
class RoutingReplayTest {
    static final int[] PROMPT = "And God said, Let there be light".chars().toArray();

    @Test
    void replayingTheModelsOwnRoutingReproducesItsLogits() {
        try (MoeModel m = MoeModel.load(TestModels.dir("tiny-mixtral-kjv"))) {
            Engine plain = new Engine(m, Parallel.SERIAL);
            Engine.Forward own = plain.forward(List.of(new Engine.Step(plain.newSequence(), PROMPT)), true, false);
            int layers = m.config().moeLayers();
            int[][][] path = new int[PROMPT.length][layers][];
            for (int p = 0; p < PROMPT.length; p++) for (int l = 0; l < layers; l++) path[p][l] = own.routing().experts(l, p);
            TraceReader.Trace trace = new TraceReader.Trace(new TraceHeader("tiny-mixtral-kjv", layers, 16, 2, "test"),
                    List.of(new TraceRecord("s0", "test", "prefill", PROMPT, path, null)));
            Engine replayed = new Engine(m, Parallel.SERIAL);
            replayed.setRoutingReplay(RoutingReplay.of(trace, m.config(), "own.trace"));
            Engine.Forward again = replayed.forward(List.of(new Engine.Step(replayed.newSequence(), PROMPT)), true, false);
            for (int p = 0; p < PROMPT.length; p++) {
                for (int l = 0; l < layers; l++) assertArrayEquals(path[p][l], again.routing().experts(l, p));
                // Mixtral renormalises its top-k: the softmax over the chosen experts is the same weights
                assertArrayEquals(own.logits()[p], again.logits()[p], 1e-4f, "position " + p);
            }
        }
    }

    @Test
    void foreignRoutingIsFollowedAndTracesThatDoNotFitAreRefused() {
        try (MoeModel m = MoeModel.load(TestModels.dir("tiny-mixtral-kjv"))) {
            SplittableRandom rnd = new SplittableRandom(3);
            int traceLayers = 4, len = 5; // fewer layers and a shorter sequence than the model's: both cycle
            int[][][] path = new int[len][traceLayers][];
            for (int p = 0; p < len; p++) {
                for (int l = 0; l < traceLayers; l++) {
                    int a = rnd.nextInt(8), b = 8 + rnd.nextInt(8);
                    path[p][l] = new int[]{a, b};
                }
            }
            TraceReader.Trace trace = new TraceReader.Trace(new TraceHeader("other", traceLayers, 16, 2, "test"),
                    List.of(new TraceRecord("s0", "d", "prefill", new int[0], path, null)));
            Engine e = new Engine(m, Parallel.SERIAL);
            e.setRoutingReplay(RoutingReplay.of(trace, m.config(), "t"));
            Engine.Forward f = e.forward(List.of(new Engine.Step(e.newSequence(), PROMPT)), true, false);
            for (int p = 0; p < PROMPT.length; p++) {
                for (int l = 0; l < m.config().moeLayers(); l++) {
                    assertArrayEquals(path[p % len][l % traceLayers], f.routing().experts(l, p));
                    float[] w = f.routing().weights(l, p);
                    assertEquals(1.0, w[0] + w[1], 1e-5, "the gate's softmax over the replayed pair");
                }
            }
            TraceReader.Trace top3 = new TraceReader.Trace(new TraceHeader("x", 1, 16, 3, "t"),
                    List.of(new TraceRecord("s", "d", "prefill", new int[0], new int[][][]{{{1, 2, 3}}}, null)));
            IllegalArgumentException k = assertThrows(IllegalArgumentException.class, () -> RoutingReplay.of(top3, m.config(), "a.trace"));
            assertTrue(k.getMessage().contains("a.trace routes top-3 but the model routes top-2"), k.getMessage());
            TraceReader.Trace wide = new TraceReader.Trace(new TraceHeader("x", 1, 64, 2, "t"),
                    List.of(new TraceRecord("s", "d", "prefill", new int[0], new int[][][]{{{1, 40}}}, null)));
            IllegalArgumentException w = assertThrows(IllegalArgumentException.class, () -> RoutingReplay.of(wide, m.config(), "b.trace"));
            assertTrue(w.getMessage().contains("routes among 64 experts but the model has 16"), w.getMessage());
        }
    }
}
