package org.moeserve.cache.sim;

import org.moeserve.cache.CacheStats;
import org.moeserve.cache.Clock;
import org.moeserve.cache.ExpertCache;
import org.moeserve.cache.ExpertKey;
import org.moeserve.cache.policy.BeladyPolicy;
import org.moeserve.cache.policy.EvictionPolicy;
import org.moeserve.cache.policy.ForesightPolicy;
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
 * Steps run as a scheduler runs them ({@link #steps}): with batch B, B sequences interleaved, and each step acquires
 * the union of its tokens' experts once per layer. With no predictor, loading is on demand. The oracle prefetcher
 * (oracle, oracle:N) asks for the true experts of the next H layers: oracle:0 only for layers of its own step (it knows
 * nothing of the next token, as a perfect within-token predictor would not), oracle and oracle:N, N >= 1, across the
 * step's end as well.
 */
public final class CacheSimulator {
    /**
     * @param layerNanos modelled compute per layer (attention + experts)
     * @param horizon    prefetch lookahead H
     * @param prefetchK  experts prefetched per future layer
     * @param deadlines  skip prefetches the link cannot deliver before their layer needs them
     * @param readers    the link's schedule: 0 a serial link, n > 0 a disk tier's n reader threads beside demand reads
     */
    public record Options(long budgetBytes, long expertBytes, LinkModel link, long layerNanos, int horizon, int prefetchK,
                          boolean deadlines, int batch, int readers) {
        public Options(long budgetBytes, long expertBytes, LinkModel link, long layerNanos, int horizon, int prefetchK,
                       boolean deadlines, int batch) {
            this(budgetBytes, expertBytes, link, layerNanos, horizon, prefetchK, deadlines, batch, 0);
        }

        public Options {
            if (readers < 0) throw new IllegalArgumentException("readers is " + readers + " but must be >= 0");
            if (layerNanos < 0) throw new IllegalArgumentException("layer time is " + layerNanos + " ns but must be >= 0");
            if (horizon < 1) throw new IllegalArgumentException("horizon is " + horizon + " but must be >= 1");
            if (prefetchK < 1) throw new IllegalArgumentException("prefetch k is " + prefetchK + " but must be >= 1");
            if (batch < 1) throw new IllegalArgumentException("batch is " + batch + " but must be >= 1");
        }

        /** One token per step. */
        public Options(long budgetBytes, long expertBytes, LinkModel link, long layerNanos, int horizon, int prefetchK, boolean deadlines) {
            this(budgetBytes, expertBytes, link, layerNanos, horizon, prefetchK, deadlines, 1);
        }
    }

    /** Figures of one replay: cache statistics, Belady's hit rate at the same budget, the modelled times. */
    public record Result(String policy, String predictor, CacheStats stats, double beladyHitRate, long simulatedNanos,
                         long computeNanos) {
        /** Step time relative to all-resident (stalls added to compute). */
        public double slowdown() { return computeNanos == 0 ? 1 : (double) simulatedNanos / computeNanos; }
    }

    private CacheSimulator() {}

    /**
     * The decode steps a scheduler would run: {@code batch} sequences at a time (a sequence starts where a token has
     * no predecessor), one token of each per step; a finished sequence's place goes to the next (continuous batching).
     * With batch 1: every token alone, in order.
     */
    public static List<List<TokenSample>> steps(List<TokenSample> tokens, int batch) {
        List<List<TokenSample>> seqs = new ArrayList<>();
        for (TokenSample s : tokens) {
            if (s.previousPath() == null || seqs.isEmpty()) seqs.add(new ArrayList<>());
            seqs.getLast().add(s);
        }
        List<List<TokenSample>> out = new ArrayList<>();
        int next = 0;
        List<int[]> active = new ArrayList<>(); // {sequence, position}
        while (true) {
            while (active.size() < batch && next < seqs.size()) active.add(new int[]{next++, 0});
            if (active.isEmpty()) return out;
            List<TokenSample> step = new ArrayList<>(active.size());
            for (int[] a : active) step.add(seqs.get(a[0]).get(a[1]++));
            out.add(step);
            active.removeIf(a -> a[1] >= seqs.get(a[0]).size());
        }
    }

    /** The experts a step acquires at a layer: the union of its tokens', each once, in a fixed order. */
    static List<ExpertKey> union(List<TokenSample> step, int layer) {
        java.util.TreeSet<Integer> ids = new java.util.TreeSet<>();
        for (TokenSample s : step) for (int e : s.path()[layer]) if (e >= 0) ids.add(e);
        List<ExpertKey> out = new ArrayList<>(ids.size());
        for (int e : ids) out.add(new ExpertKey(layer, e));
        return out;
    }

    /** The most experts one layer of one step uses at once (what the fast tier must hold beyond the rest). */
    public static int widestLayer(List<TokenSample> tokens, int batch) {
        int widest = 0;
        for (List<TokenSample> step : steps(tokens, batch)) {
            for (int l = 0; l < step.getFirst().path().length; l++) widest = Math.max(widest, union(step, l).size());
        }
        return widest;
    }

    /** Every expert access in replay order, one token per step (valid cells only). */
    public static List<ExpertKey> accesses(List<TokenSample> tokens) { return accesses(tokens, 1); }

    /** Every expert access in replay order with {@code batch} sequences a step: each step's union per layer. */
    public static List<ExpertKey> accesses(List<TokenSample> tokens, int batch) {
        List<ExpertKey> out = new ArrayList<>();
        for (List<TokenSample> step : steps(tokens, batch)) {
            int layers = step.getFirst().path().length;
            for (int l = 0; l < layers; l++) out.addAll(union(step, l));
        }
        return out;
    }

    /** The step of each access of {@link #accesses(List, int)}, in the same order (what belady:N counts in). */
    public static int[] stepOfAccess(List<TokenSample> tokens, int batch) {
        List<List<TokenSample>> steps = steps(tokens, batch);
        int[] out = new int[64];
        int n = 0;
        for (int s = 0; s < steps.size(); s++) {
            List<TokenSample> step = steps.get(s);
            for (int l = 0; l < step.getFirst().path().length; l++) {
                int u = union(step, l).size();
                if (n + u > out.length) out = java.util.Arrays.copyOf(out, Math.max(2 * out.length, n + u));
                java.util.Arrays.fill(out, n, n + u, s);
                n += u;
            }
        }
        return java.util.Arrays.copyOf(out, n);
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
        List<List<TokenSample>> steps = steps(tokens, o.batch());
        try (ExpertCache cache = new ExpertCache(new ExpertCache.Config(o.budgetBytes(), o.expertBytes(), o.link(), false, 0, o.readers()),
                null, policy, clock)) {
            long half = o.layerNanos() / 2;
            Prefetcher prefetcher = oracle || predictor == null ? null
                    : new Prefetcher(predictor, cache, layers, o.horizon(), o.prefetchK(), o.layerNanos(), o.deadlines());
            if (prefetcher != null && log != null) prefetcher.setLog(log);
            // the oracle prefetches the truth of the next H layers; with belady:0's foresight, only within its own step
            boolean seesNext = !(policy instanceof ForesightPolicy f && f.steps() == 0);
            for (int t = 0; t < steps.size(); t++) {
                List<TokenSample> step = steps.get(t);
                List<TokenSample> next = t + 1 < steps.size() && seesNext ? steps.get(t + 1) : null;
                for (int l = 0; l < layers; l++) {
                    clock.advance(half);
                    List<ExpertKey> now = union(step, l);
                    cache.reserve(now);
                    for (ExpertKey k : now) cache.acquire(k);
                    clock.advance(o.layerNanos() - half);
                    computeNanos += o.layerNanos();
                    for (ExpertKey k : now) cache.release(k);
                    if (prefetcher != null) prefetcher.layerDone(l, clock.nanoTime());
                    else cache.cancelStale(l);
                    if (oracle) {
                        prefetchTruth(cache, step, next, l, layers, o.horizon());
                    } else if (prefetcher != null) {
                        for (int r = 0; r < step.size(); r++) prefetcher.afterLayer(step.get(r).context(l), clock.nanoTime(), r);
                    }
                }
            }
            return new Result(policy.name(), oracle ? "oracle" : predictor == null ? "none (on demand)" : predictor.name(),
                    cache.stats(), Double.NaN, clock.nanoTime(), computeNanos);
        }
    }

    private static void prefetchTruth(ExpertCache cache, List<TokenSample> step, List<TokenSample> next, int l, int layers, int h) {
        for (int d = 1; d <= h; d++) {
            int m = l + d;
            List<TokenSample> owner = m < layers ? step : next;
            if (owner == null) return;
            for (ExpertKey k : union(owner, m % layers)) cache.prefetch(k, d);
        }
    }

    /** Belady's hit rate at this budget, loading on demand: the bound for demand loading. */
    public static double beladyHitRate(List<TokenSample> tokens, int layers, Options o) {
        Result r = run(tokens, layers, new BeladyPolicy(accesses(tokens, o.batch())), null, false, o);
        return r.stats().hitRate();
    }
}
