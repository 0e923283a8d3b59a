package org.moeserve.bench;

import org.moeserve.units.LinkModel;
import org.moeserve.comms.Dispatch;
import org.moeserve.comms.Scheme;
import org.moeserve.comms.sim.ClusterSimulator;
import org.moeserve.comms.sim.SyntheticRouting;
import org.moeserve.placement.PlacementPlan;
import org.moeserve.placement.PlacementProblem;
import org.moeserve.placement.cpsat.AffinityPlacer;
import org.moeserve.placement.greedy.Baselines;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The cluster simulator at DeepSeek-V3 size: 100k tokens (top-8) through 256 experts x 58 MoE layers on 8 nodes x 8
 * devices, for round-robin, EPLB and the affinity plan, both dispatch schemes; the wall time of each simulation is
 * the figure of merit (target: under a minute). Usage: ./moe bench simulate [tokens] [placement seconds]
 */
final class SimulateScale {
    public static void main(String[] args) throws Exception {
        long tokens = args.length > 0 ? Long.parseLong(args[0]) : 100_000;
        double limit = args.length > 1 ? Double.parseDouble(args[1]) : 30;
        PlacementProblem p = PlacementScale.synthetic();
        Map<String, PlacementPlan> plans = new LinkedHashMap<>();
        plans.put("round-robin", Baselines.roundRobin().place(p));
        plans.put("EPLB", Baselines.eplb(8).place(p));
        plans.put("affinity", new AffinityPlacer(new AffinityPlacer.Options(limit, 1.10, Runtime.getRuntime().availableProcessors(),
                0), s -> { }).place(p));
        ClusterSimulator sim = new ClusterSimulator(new ClusterSimulator.Config(p.topology(), new LinkModel(450e9, 3_000),
                new LinkModel(50e9, 10_000), 1_000, 2_000, p.hiddenBytes()));
        System.out.println("machine: " + Bench.machine());
        System.out.printf("%d tokens, batches of 1024, %s; links 450GB/s+3us in a node, 50GB/s+10us between%n", tokens, p.source());
        System.out.println("| plan | scheme | bytes per token | inter-node bytes per token | all-to-all per step | step time | simulated in |");
        System.out.println("|---|---|---|---|---|---|---|");
        for (Map.Entry<String, PlacementPlan> en : plans.entrySet()) {
            Dispatch d = new Dispatch(en.getValue(), p.topology(), p.experts());
            for (Scheme s : Scheme.values()) {
                SyntheticRouting routing = new SyntheticRouting(p.load(), p.transitions(), p.topK(), tokens, 1024, 64, 1);
                long t0 = System.nanoTime();
                ClusterSimulator.Result r = sim.run(d, s, routing, p.layers(), null);
                double secs = (System.nanoTime() - t0) / 1e9;
                System.out.printf(Locale.ROOT, "| %s | %s | %.0f | %.0f | %.0f us | %.0f us | %.1f s |%n", en.getKey(), s.label(),
                        (double) r.traffic().totalBytes() / r.tokens(), (double) r.traffic().interNodeBytes() / r.tokens(),
                        r.allToAllNanos() / 1e3 / r.steps(), r.totalNanos() / 1e3 / r.steps(), secs);
            }
        }
    }
}
