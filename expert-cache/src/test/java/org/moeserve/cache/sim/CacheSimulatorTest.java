package org.moeserve.cache.sim;

import org.junit.jupiter.api.Test;
import org.moeserve.cache.ExpertKey;
import org.moeserve.cache.policy.BeladyPolicy;
import org.moeserve.cache.policy.ForesightPolicy;
import org.moeserve.cache.policy.LruPolicy;
import org.moeserve.cache.policy.PredictivePolicy;
import org.moeserve.units.LinkModel;
import org.moeserve.routing.predict.OraclePredictor;
import org.moeserve.routing.predict.TokenSample;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CacheSimulatorTest {
    static final int LAYERS = 4, EXPERTS = 8;

    /** Tokens whose experts drift slowly (some reuse between neighbours, as real routing has). */
    static List<TokenSample> tokens(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        List<TokenSample> out = new ArrayList<>();
        int[][] prev = null;
        for (int t = 0; t < n; t++) {
            int[][] path = new int[LAYERS][];
            for (int l = 0; l < LAYERS; l++) {
                int a = prev != null && r.nextDouble() < 0.5 ? prev[l][0] : r.nextInt(EXPERTS);
                int b = (a + 1 + r.nextInt(EXPERTS - 1)) % EXPERTS;
                path[l] = new int[]{a, b};
            }
            out.add(new TokenSample("d", t, path, null, prev));
            prev = path;
        }
        return out;
    }

    static CacheSimulator.Options opts(double bandwidth) {
        return new CacheSimulator.Options(8 * 1000, 1000, new LinkModel(bandwidth, 0), 10_000, 2, 2, true);
    }

    @Test
    void countsEveryAccessAndComputeTime() {
        List<TokenSample> t = tokens(200, 1);
        CacheSimulator.Result r = CacheSimulator.run(t, LAYERS, new LruPolicy(), null, false, opts(1e9));
        assertEquals(200L * LAYERS * 2, r.stats().accesses());
        assertEquals(200L * LAYERS * 10_000, r.computeNanos());
        assertEquals(r.computeNanos() + r.stats().stallNanos(), r.simulatedNanos(), "time = compute + stalls");
        assertTrue(r.slowdown() > 1);
    }

    @Test
    void oraclePrefetchOnAFastLinkHidesAlmostEverythingAndBeladyBoundsDemandLoading() {
        List<TokenSample> t = tokens(300, 2);
        CacheSimulator.Result oracle = CacheSimulator.run(t, LAYERS, new BeladyPolicy(CacheSimulator.accesses(t)), null,
                true, opts(100e9));
        // only the first token's first layers cannot have been prefetched
        assertTrue(oracle.stats().hitRate() > 0.99, "oracle hit rate " + oracle.stats().hitRate());
        double belady = CacheSimulator.beladyHitRate(t, LAYERS, opts(1e9));
        CacheSimulator.Result lru = CacheSimulator.run(t, LAYERS, new LruPolicy(), null, false, opts(1e9));
        assertTrue(belady >= lru.stats().hitRate(), belady + " vs " + lru.stats().hitRate());
        // a perfect predictor driving the predictive policy also hides the link
        CacheSimulator.Result perfect = CacheSimulator.run(t, LAYERS, new PredictivePolicy(LAYERS),
                new OraclePredictor(LAYERS, EXPERTS), false, opts(100e9));
        assertTrue(perfect.stats().hitRate() > lru.stats().hitRate(), perfect.stats().summary());
        // within a token every prefetch is right; the next token's first layers are guessed from this token's
        // path (reuse), about half of which are wrong here (50% reuse in these tokens)
        assertTrue(perfect.stats().prefetchPrecision() > 0.75, perfect.stats().summary());
        List<ExpertKey> acc = CacheSimulator.accesses(t);
        assertEquals(300 * LAYERS * 2, acc.size());
    }

    /**
     * belady:N, Belady seeing N steps ahead: with foresight of the whole replay it is Belady, hit for hit; with less,
     * never above Belady; one token of foresight buys hits over none (these tokens reuse half their experts). oracle:0
     * prefetches only within its own token, so on a link fast enough to hide everything it still misses the first
     * layers of tokens, where oracle:1 does not.
     */
    @Test
    void foresightLiesBetweenBlindnessAndBelady() {
        List<TokenSample> t = tokens(400, 3);
        List<ExpertKey> acc = CacheSimulator.accesses(t);
        int[] stepOf = CacheSimulator.stepOfAccess(t, 1);
        assertEquals(acc.size(), stepOf.length);
        assertEquals(0, stepOf[0]);
        assertEquals(399, stepOf[stepOf.length - 1]);
        long belady = CacheSimulator.run(t, LAYERS, new BeladyPolicy(acc), null, false, opts(1e9)).stats().hits();
        long all = CacheSimulator.run(t, LAYERS, new ForesightPolicy(acc, stepOf, 400, LAYERS), null, false, opts(1e9)).stats().hits();
        assertEquals(belady, all, "foresight of every step is Belady");
        long[] hits = new long[3];
        for (int n = 0; n < hits.length; n++) {
            ForesightPolicy f = new ForesightPolicy(acc, stepOf, n, LAYERS);
            assertEquals("belady:" + n, f.name());
            hits[n] = CacheSimulator.run(t, LAYERS, f, null, false, opts(1e9)).stats().hits();
            assertTrue(hits[n] <= belady, "belady:" + n + " " + hits[n] + " > Belady " + belady);
        }
        assertTrue(hits[1] > hits[0] * 1.05, "one token of foresight: " + hits[1] + " vs none: " + hits[0]);
        double within = CacheSimulator.run(t, LAYERS, new ForesightPolicy(acc, stepOf, 0, LAYERS), null, true, opts(100e9)).stats().hitRate();
        double across = CacheSimulator.run(t, LAYERS, new ForesightPolicy(acc, stepOf, 1, LAYERS), null, true, opts(100e9)).stats().hitRate();
        assertTrue(across > 0.99, "oracle:1 on a fast link " + across);
        assertTrue(within < 0.95, "oracle:0 cannot prefetch the next token's first layers: " + within);
    }

    /**
     * The predictive policy's estimate learns which of recency and frequency a routing rewards: on paths that repeat
     * 30% of their predecessor's experts (where a pure frequency lost to LRU by 0.05) and on paths that repeat none
     * (where popularity is all there is), its demand-loading hit rate beats LRU's.
     */
    @Test
    void predictiveEvictionBeatsLruWithAndWithoutReuse() {
        int layers = 8, experts = 64, topK = 6, slots = layers * experts / 4;
        CacheSimulator.Options o = new CacheSimulator.Options(slots * 1000L, 1000, new LinkModel(1e9, 0), 10_000, 2, topK, true);
        for (double reuse : new double[]{0.3, 0.0}) {
            List<TokenSample> t = SyntheticPaths.generate(1500, layers, experts, topK, reuse, 0.4, 7);
            double lru = CacheSimulator.run(t, layers, new LruPolicy(), null, false, o).stats().hitRate();
            double predictive = CacheSimulator.run(t, layers, new PredictivePolicy(layers), null, false, o).stats().hitRate();
            assertTrue(predictive > lru + 0.02, "reuse " + reuse + ": predictive " + predictive + " vs LRU " + lru);
        }
    }
}
