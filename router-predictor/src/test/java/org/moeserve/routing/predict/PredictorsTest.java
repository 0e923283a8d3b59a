package org.moeserve.routing.predict;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.moeserve.routing.RoutingStats;
import org.moeserve.routing.TraceHeader;
import org.moeserve.routing.TraceRecord;
import org.moeserve.routing.stats.TraceStatistics;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Each predictor on data whose answer is known, and the evaluator's arithmetic. */
class PredictorsTest {
    @TempDir
    Path tmp;

    static final int LAYERS = 4, EXPERTS = 8;

    /**
     * Synthetic tokens: hidden state h ~ N(0, I) of 16 dims; the top-2 at layer l are the two largest of R_l h
     * for fixed random R_l. The path is a function of h (learnable) and consecutive layers are linked only
     * through h (so affinity learns little).
     */
    static List<TokenSample> synthetic(int n, long seed) {
        SplittableRandom fixed = new SplittableRandom(99), rnd = new SplittableRandom(seed);
        float[][][] r = new float[LAYERS][EXPERTS][16];
        for (float[][] a : r) for (float[] b : a) for (int i = 0; i < 16; i++) b[i] = (float) fixed.nextGaussian();
        List<TokenSample> out = new ArrayList<>();
        for (int t = 0; t < n; t++) {
            float[] h = new float[16];
            for (int i = 0; i < 16; i++) h[i] = (float) rnd.nextGaussian();
            int[][] path = new int[LAYERS][];
            float[][] hidden = new float[LAYERS][];
            for (int l = 0; l < LAYERS; l++) {
                float[] s = new float[EXPERTS];
                for (int e = 0; e < EXPERTS; e++) for (int i = 0; i < 16; i++) s[e] += r[l][e][i] * h[i];
                path[l] = PredictorEvaluation.topK(s, 2);
                hidden[l] = h;
            }
            out.add(new TokenSample("synthetic", -1, path, hidden, null));
        }
        return out;
    }

    @Test
    void oracleIsPerfectAndTopKOrdersByScore() {
        PredictorEvaluation ev = PredictorEvaluation.run(new OraclePredictor(LAYERS, EXPERTS), synthetic(50, 1), LAYERS, 3, 2);
        for (int d = 1; d <= 3; d++) {
            assertEquals(1.0, ev.at(d).precision());
            assertEquals(1.0, ev.at(d).recall());
        }
        // distance d has (LAYERS - d) source layers per token
        assertEquals(50L * (LAYERS - 1) * 2, ev.at(1).predictions());
        assertEquals(50L * (LAYERS - 3) * 2, ev.at(3).predictions());
        assertArrayEquals(new int[]{3, 0, 1}, PredictorEvaluation.topK(new float[]{5, 2, 1, 9, 2}, 3));
    }

    @Test
    void affinityFollowsADeterministicChain() {
        // expert e at layer l always leads to (e + 3) mod 8 at l + 1
        List<TraceRecord> recs = new ArrayList<>();
        List<TokenSample> samples = new ArrayList<>();
        SplittableRandom rnd = new SplittableRandom(5);
        for (int t = 0; t < 200; t++) {
            int a = rnd.nextInt(EXPERTS), b = (a + 1 + rnd.nextInt(EXPERTS - 1)) % EXPERTS;
            int[][] path = new int[LAYERS][];
            for (int l = 0; l < LAYERS; l++) path[l] = new int[]{(a + 3 * l) % EXPERTS, (b + 3 * l) % EXPERTS};
            recs.add(new TraceRecord("s" + t, "chain", "prefill", new int[0], new int[][][]{path}, null));
            samples.add(new TokenSample("chain", -1, path, null, null));
        }
        TraceStatistics st = new TraceStatistics(new TraceHeader("m", LAYERS, EXPERTS, 2, null), recs);
        PredictorEvaluation aff = PredictorEvaluation.run(new AffinityPredictor(st.transitions(1)), samples, LAYERS, 3, 2);
        // distance 1 is exact; further on, each token's random partner expert blurs the propagated mixture
        assertEquals(1.0, aff.at(1).precision(), 1e-12);
        for (int d = 2; d <= 3; d++) assertTrue(aff.at(d).precision() > 0.75, "distance " + d + ": " + aff.at(d).precision());
        long[][] load = new long[LAYERS][];
        for (int l = 0; l < LAYERS; l++) load[l] = st.load(l);
        PredictorEvaluation pop = PredictorEvaluation.run(new PopularityPredictor(load), samples, LAYERS, 1, 2);
        assertTrue(pop.at(1).precision() < 0.5, "popularity cannot follow the chain: " + pop.at(1).precision());
    }

    @Test
    void evaluationCountsKnownCellsOnlyAndPerDomain() {
        int[][] path = {{0, 1}, {2, -1}, {3, 4}, {5, 6}};
        TokenSample s = new TokenSample("a", 1, path, null, null);
        // a predictor that always says {2, 3}
        ExpertPredictor fixed = new ExpertPredictor() {
            public String name() { return "fixed"; }

            public float[][] predict(TokenContext ctx, int horizon) {
                float[][] out = new float[ExpertPredictor.rows(LAYERS, ctx.layer(), horizon)][EXPERTS];
                for (float[] o : out) { o[2] = 2; o[3] = 1; }
                return out;
            }
        };
        PredictorEvaluation ev = PredictorEvaluation.run(fixed, List.of(s), LAYERS, 1, 2);
        // d=1: layer1 {2} (one unknown): 1 hit; layer2 {3,4}: 1 hit; layer3 {5,6}: 0 hits
        assertEquals(2.0 / 6, ev.at(1).precision(), 1e-12);
        assertEquals(2.0 / 5, ev.at(1).recall(), 1e-12);
        assertEquals(ev.at(1).precision(), ev.at("a", 1).precision());
        @SuppressWarnings("unchecked")
        Map<String, Object> dom = (Map<String, Object>) ((Map<String, Object>) ev.toMap().get("domains")).get("a");
        assertEquals(1L, dom.get("tokens"));
        assertThrows(IllegalArgumentException.class, () -> PredictorEvaluation.run(fixed, List.of(s), LAYERS, 4, 2));
    }

    @Test
    void lookaheadGateIsTheNextRouterOnTheNormalisedHiddenState() {
        float[][][] router = new float[3][4][2];
        float[][] norm = {{1, 1}, {2, 0.5f}, {1, 1}};
        router[1] = new float[][]{{1, 0}, {0, 1}, {-1, 0}, {1, 1}};
        router[2] = new float[][]{{0, 1}, {0, 0}, {1, 0}, {-1, -1}};
        LookaheadGatePredictor g = new LookaheadGatePredictor(router, norm, 0f);
        float[] h = {3, 4}; // rms = sqrt(12.5)
        float[][] s = g.predict(new TokenContext(0, 0, new int[][]{{0}}, h, null, null), 2);
        float inv = (float) (1 / Math.sqrt(12.5));
        float x0 = 3 * inv * 2, x1 = 4 * inv * 0.5f;
        assertArrayEquals(new float[]{x0, x1, -x0, x0 + x1}, s[0], 1e-6f);
        assertArrayEquals(new float[]{4 * inv, 0, 3 * inv, -7 * inv}, s[1], 1e-6f);
        assertThrows(IllegalStateException.class, () -> g.predict(new TokenContext(0, 0, new int[][]{{0}}, null, null, null), 1));
    }

    @Test
    void learnedPredictorLearnsAPathFromHiddenStatesAndSurvivesSaveAndLoad() throws IOException {
        List<TokenSample> train = synthetic(3000, 2), test = synthetic(500, 3);
        LearnedPathPredictor p = LearnedPathPredictor.train(train, LAYERS, EXPERTS,
                new LearnedPathPredictor.Options(32, 15, 32, 3e-3, 7), e -> { });
        PredictorEvaluation ev = PredictorEvaluation.run(p, test, LAYERS, 3, 2);
        long[][] load = new long[LAYERS][EXPERTS];
        for (TokenSample s : train) for (int l = 0; l < LAYERS; l++) for (int e : s.path()[l]) load[l][e]++;
        PredictorEvaluation pop = PredictorEvaluation.run(new PopularityPredictor(load), test, LAYERS, 3, 2);
        for (int d = 1; d <= 3; d++) {
            assertTrue(ev.at(d).precision() > 0.85, "learned at d=" + d + ": " + ev.at(d).precision());
            assertTrue(ev.at(d).precision() > pop.at(d).precision() + 0.4, "learned vs popularity at d=" + d);
        }
        Path f = tmp.resolve("p.bin");
        p.save(f);
        LearnedPathPredictor back = LearnedPathPredictor.load(f);
        TokenContext ctx = test.getFirst().context(1);
        float[][] a = p.predict(ctx, 2), b = back.predict(ctx, 2);
        for (int j = 0; j < a.length; j++) assertArrayEquals(a[j], b[j]);
        Files.writeString(f, "not a predictor");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LearnedPathPredictor.load(f));
        assertTrue(e.getMessage().contains("not a moe-predictor/1 file"), e.getMessage());
    }

    @Test
    void statsPredictionScoresTopOneTransitions() {
        long[][] fit = {{0, 9, 1}, {5, 0, 0}, {1, 1, 8}};
        long[][] test = {{0, 4, 1}, {3, 2, 0}, {0, 0, 5}};
        RoutingStats f = new RoutingStats("m", 2, 3, 1, "fit", 25, Map.of(), Map.of(), Map.of("0->1", fit), Map.of());
        RoutingStats t = new RoutingStats("m", 2, 3, 1, "test", 15, Map.of(), Map.of(), Map.of("0->1", test), Map.of());
        // affinity: 0->1, 1->0, 2->2: hits 4 + 3 + 5 = 12 of 15
        assertEquals(12.0 / 15, StatsPrediction.evaluate(f, t, "0->1", true, 1).accuracy(), 1e-12);
        // popularity: column sums of fit = [6, 10, 9] -> always 1: hits 4 + 2 + 0 = 6 of 15
        assertEquals(6.0 / 15, StatsPrediction.evaluate(f, t, "0->1", false, 1).accuracy(), 1e-12);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> StatsPrediction.evaluate(f, t, "0->7", true, 1));
        assertTrue(e.getMessage().contains("0->7"), e.getMessage());
    }
}
