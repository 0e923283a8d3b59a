package org.moeserve.bench;

import org.moeserve.cache.ExpertKey;
import org.moeserve.cache.policy.Policies;
import org.moeserve.cache.sim.CacheSimulator;
import org.moeserve.cache.sim.SyntheticPaths;
import org.moeserve.routing.TraceHeader;
import org.moeserve.routing.TraceRecord;
import org.moeserve.routing.predict.AffinityPredictor;
import org.moeserve.routing.predict.TokenSample;
import org.moeserve.routing.stats.TraceStatistics;
import org.moeserve.units.LinkModel;

import java.util.List;
import java.util.Locale;

/**
 * Replay speed at production shape: {@code tokens} synthetic tokens of 26 MoE layers x 64 experts x top-6 (the
 * shape of a real production trace) through every policy at 25% resident, a 25 GB/s link with 10 us latency (a
 * load of 9.4 MB costs about 1.3 layers of 0.3 ms): accesses per second per policy, and the total time. The
 * accesses and their steps are built once, outside the timed replays.
 */
public final class ReplayScale {
    public static void main(String[] args) {
        int tokens = args.length > 0 ? Integer.parseInt(args[0]) : 100_000;
        int layers = 26, experts = 64, topK = 6;
        long t0 = System.nanoTime();
        List<TokenSample> paths = SyntheticPaths.generate(tokens, layers, experts, topK, 0.3, 0.4, 1);
        System.err.printf(Locale.ROOT, "replay: %d tokens generated in %.1f s%n", tokens, (System.nanoTime() - t0) / 1e9);
        long expertBytes = 3L * 2048 * 768 * 2;
        int slots = layers * experts / 4;
        CacheSimulator.Options o = new CacheSimulator.Options(slots * expertBytes, expertBytes, new LinkModel(25e9, 10_000),
                300_000, 2, topK, true);
        List<ExpertKey> future = CacheSimulator.accesses(paths);
        int[] stepOf = CacheSimulator.stepOfAccess(paths, 1);
        long[][] load = new long[layers][experts];
        for (ExpertKey k : future) load[k.layer()][k.expert()]++;
        int[][][] ex = new int[paths.size()][][];
        for (int t = 0; t < ex.length; t++) ex[t] = paths.get(t).path();
        TraceStatistics st = new TraceStatistics(new TraceHeader("synthetic", layers, experts, topK, null),
                List.of(new TraceRecord("s", "synthetic", "decode", new int[0], ex, null)));
        System.out.println("machine: " + Bench.machine());
        System.out.println("| policy | accesses | seconds | accesses/s | hit rate |");
        System.out.println("|---|---|---|---|---|");
        long all = System.nanoTime();
        List<String> policies = args.length > 1 ? List.of(args[1].split(",")) : List.of("lru", "lfu", "pin", "predictive", "belady", "oracle");
        for (String p : policies) {
            long s = System.nanoTime();
            CacheSimulator.Result r = CacheSimulator.run(paths, layers, Policies.create(p, layers, slots, topK, load, future, stepOf),
                    p.equals("predictive") ? new AffinityPredictor(st.transitions(1)) : null, p.startsWith("oracle"), o,
                    null);
            double secs = (System.nanoTime() - s) / 1e9;
            System.out.printf(Locale.ROOT, "| %s | %d | %.1f | %.0f | %.3f |%n", p, future.size(), secs, future.size() / secs, r.stats().hitRate());
        }
        System.out.printf(Locale.ROOT, "every policy: %.1f s%n", (System.nanoTime() - all) / 1e9);
    }
}
