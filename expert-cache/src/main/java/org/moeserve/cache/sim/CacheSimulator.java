package org.moeserve.cache.sim;

import org.moeserve.cache.CacheStats;
import org.moeserve.cache.Clock;
import org.moeserve.cache.ExpertCache;
import org.moeserve.cache.ExpertKey;
import org.moeserve.cache.policy.BeladyPolicy;
import org.moeserve.cache.policy.EvictionPolicy;
import org.moeserve.cache.prefetch.Prefetcher;
import org.moeserve.units.LinkModel;
import org.moeserve.routing.predict.ExpertPredictor;
import org.moeserve.routing.predict.TokenSample;

import java.util.ArrayList;
import java.util.List;

/**
 * Replays recorded expert paths against the expert cache in virtual time, without expert compute: the same cache,
 * link and policy code as a live run, far faster than real time. Per token and MoE layer:
 *
 * <pre>
 *   attention: clock += layerNanos/2 ; acquire the layer's experts (stalls if not loaded) ;
 *   experts:   clock += layerNanos/2 ; release ; cancel stale prefetches for this layer ;
 *   predict:   the {@link Prefetcher} (the same one live offload runs): top-K predicted experts of the next H
 *              layers, the last layer wrapping to the next token
 * </pre>
 *
 * Tokens run one after another in the order given (sequence by sequence). With no predictor, loading is on demand.
 */
public final class CacheSimulator {
    /**
     * @param layerNanos modelled compute per layer (attention + experts)
     * @param horizon    prefetch lookahead H
     * @param prefetchK  experts prefetched per future layer
     * @param deadlines  skip prefetches the link cannot deliver before their layer needs them
     */
    public record Options(long budgetBytes, long expertBytes, LinkModel link, long layerNanos, int horizon, int prefetchK,
                          boolean deadlines) {
        public Options {
            if (layerNanos < 0) throw new IllegalArgumentException("layer time is " + layerNanos + " ns but must be >= 0");
            if (horizon < 1) throw new IllegalArgumentException("horizon is " + horizon + " but must be >= 1");
            if (prefetchK < 1) throw new IllegalArgumentException("prefetch k is " + prefetchK + " but must be >= 1");
        }
    }

    /** Figures of one replay: cache statistics, Belady's hit rate at the same budget, the modelled times. */
    public record Result(String policy, String predictor, CacheStats stats, double beladyHitRate, long simulatedNanos,
                         long computeNanos) {
        /** Step time relative to all-resident (stalls added to compute). */
        public double slowdown() { return computeNanos == 0 ? 1 : (double) simulatedNanos / computeNanos; }
    }

    private CacheSimulator() {}

    /** Every expert access in replay order (valid cells only). */
    public static List<ExpertKey> accesses(List<TokenSample> tokens) {
        List<ExpertKey> out = new ArrayList<>();
        for (TokenSample s : tokens) {
            for (int l = 0; l < s.path().length; l++) for (int e : s.path()[l]) if (e >= 0) out.add(new ExpertKey(l, e));
        }
        return out;
    }

    /**
     * @param predictor null for demand loading; with {@code oracle} the true path is prefetched instead
     */
    public static Result run(List<TokenSample> tokens, int layers, EvictionPolicy policy, ExpertPredictor predictor,
                             boolean oracle, Options o) {
        return run(tokens, layers, policy, predictor, oracle, o, null);
    }

    /** As above, telling {@code log} every prefetch the predictor's prefetcher asks for. */
    public static Result run(List<TokenSample> tokens, int layers, EvictionPolicy policy, ExpertPredictor predictor,
                             boolean oracle, Options o, Prefetcher.DecisionLog log) {
        Clock.Virtual clock = new Clock.Virtual();
        long computeNanos = 0;
        try (ExpertCache cache = new ExpertCache(new ExpertCache.Config(o.budgetBytes(), o.expertBytes(), o.link(), false),
                null, policy, clock)) {
            long half = o.layerNanos() / 2;
            Prefetcher prefetcher = oracle || predictor == null ? null
                    : new Prefetcher(predictor, cache, layers, o.horizon(), o.prefetchK(), o.layerNanos(), o.deadlines());
            if (prefetcher != null && log != null) prefetcher.setLog(log);
            for (int t = 0; t < tokens.size(); t++) {
                TokenSample s = tokens.get(t);
                TokenSample next = t + 1 < tokens.size() ? tokens.get(t + 1) : null;
                for (int l = 0; l < layers; l++) {
                    clock.advance(half);
                    List<ExpertKey> now = new ArrayList<>();
                    for (int e : s.path()[l]) if (e >= 0) now.add(new ExpertKey(l, e));
                    for (ExpertKey k : now) cache.acquire(k);
                    clock.advance(o.layerNanos() - half);
                    computeNanos += o.layerNanos();
                    for (ExpertKey k : now) cache.release(k);
                    if (prefetcher != null) prefetcher.layerDone(l, clock.nanoTime());
                    else cache.cancelStale(l);
                    if (oracle) {
                        prefetchTruth(cache, s, next, l, layers, o.horizon());
                    } else if (prefetcher != null) {
                        prefetcher.afterLayer(s.context(l), clock.nanoTime());
                    }
                }
            }
            return new Result(policy.name(), oracle ? "oracle" : predictor == null ? "none (on demand)" : predictor.name(),
                    cache.stats(), Double.NaN, clock.nanoTime(), computeNanos);
        }
    }

    private static void prefetchTruth(ExpertCache cache, TokenSample s, TokenSample next, int l, int layers, int h) {
        for (int d = 1; d <= h; d++) {
            int m = l + d;
            TokenSample owner = m < layers ? s : next;
            if (owner == null) return;
            int layer = m % layers;
            for (int e : owner.path()[layer]) if (e >= 0) cache.prefetch(new ExpertKey(layer, e), d);
        }
    }

    /** Belady's hit rate at this budget, loading on demand: the bound for demand loading. */
    public static double beladyHitRate(List<TokenSample> tokens, int layers, Options o) {
        Result r = run(tokens, layers, new BeladyPolicy(accesses(tokens)), null, false, o);
        return r.stats().hitRate();
    }
}
