package org.moeserve.bench;

import org.moeserve.placement.PlacementPlan;
import org.moeserve.placement.PlacementProblem;
import org.moeserve.placement.PlanMetrics;
import org.moeserve.placement.Placer;
import org.moeserve.placement.Topology;
import org.moeserve.placement.cpsat.AffinityPlacer;
import org.moeserve.placement.greedy.Baselines;
import org.moeserve.routing.RoutingStats;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Placement at DeepSeek-V3 size: 256 experts x 58 MoE layers on 8 nodes x 8 devices (5 slots each: 64 redundant, as DeepSeek deploys with spare slots), statistics
 * synthesised from the real ones: OLMoE-1B-7B's published 64x64 top-1 transitions (layer 0 -> 7, arxiv), tiled to
 * 256 experts (a block keeps its affinity, other blocks get a quarter of it), experts relabelled at random per layer.
 * Usage: ./moe bench placement [time limit seconds]
 */
final class PlacementScale {
    public static void main(String[] args) throws Exception {
        double limit = args.length > 0 ? Double.parseDouble(args[0]) : 55;
        PlacementProblem p = synthetic();
        System.out.println("machine: " + Bench.machine());
        System.out.println("| solver | crossing devices | crossing nodes | mean max/mean load | worst max/mean load | time |");
        System.out.println("|---|---|---|---|---|---|");
        for (Placer pl : List.of(Baselines.roundRobin(), Baselines.eplb(8))) {
            long t0 = System.nanoTime();
            PlacementPlan plan = pl.place(p);
            print(pl.name(), PlanMetrics.of(plan, p), (System.nanoTime() - t0) / 1e9);
        }
        AffinityPlacer cp = new AffinityPlacer(new AffinityPlacer.Options(limit, 1.10, Runtime.getRuntime().availableProcessors(),
                AffinityPlacer.Options.DEFAULT.maxMonolithic()), System.err::println);
        long t0 = System.nanoTime();
        PlacementPlan plan = cp.place(p);
        print("affinity (" + cp.lastReport().status() + String.format(java.util.Locale.ROOT, ", gap to the slot bound %.1f%%)", 100 * cp.lastReport().gap()), PlanMetrics.of(plan, p), (System.nanoTime() - t0) / 1e9);
    }

    /** The synthetic DeepSeek-V3-sized problem (see the class comment). */
    static PlacementProblem synthetic() throws java.io.IOException {
        Path stats = Path.of(System.getProperty("moe.home", ".")).resolve("../shared/data/olmoe-paper-stats/olmoe-arxiv.json");
        long[][] base = RoutingStats.read(stats).transitionsTop1().get("0->7");
        int layers = 58, experts = 256, b = base.length;
        SplittableRandom rnd = new SplittableRandom(5);
        int[][] relabel = new int[layers][experts];
        for (int l = 0; l < layers; l++) {
            for (int e = 0; e < experts; e++) relabel[l][e] = e;
            for (int e = experts - 1; e > 0; e--) { int j = rnd.nextInt(e + 1), t = relabel[l][e]; relabel[l][e] = relabel[l][j]; relabel[l][j] = t; }
        }
        long[][] load = new long[layers][experts];
        Map<String, long[][]> tr = new HashMap<>();
        for (int l = 0; l + 1 < layers; l++) {
            long[][] t = new long[experts][experts];
            for (int i = 0; i < experts; i++) {
                for (int j = 0; j < experts; j++) {
                    long v = base[i % b][j % b] * (i / b == j / b ? 4 : 1) / 4;
                    t[relabel[l][i]][relabel[l + 1][j]] = v;
                    load[l][relabel[l][i]] += v;
                    load[l + 1][relabel[l + 1][j]] += v;
                }
            }
            tr.put(l + "->" + (l + 1), t);
        }
        return new PlacementProblem("synthetic DeepSeek-V3 size", layers, experts, 8, Topology.of(8, 8, 5),
                load, tr, 7168 * 2);
    }

    static void print(String name, PlanMetrics m, double s) {
        System.out.printf(java.util.Locale.ROOT, "| %s | %.1f%% | %.1f%% | %.3f | %.3f | %.1f s |%n", name, 100 * m.crossDevice(),
                100 * m.crossNode(), m.meanImbalance(), m.maxImbalance(), s);
    }
}
