package org.moeserve.placement;

import org.junit.jupiter.api.Test;
import org.moeserve.placement.cpsat.AffinityPlacer;
import org.moeserve.placement.greedy.Baselines;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AffinityPlacerTest {
    /** A top-1 problem over consecutive pairs, each layer's load being the transitions into and out of it. */
    static PlacementProblem chain(String name, int layers, int experts, Topology topo, Map<String, long[][]> tr, int hiddenBytes) {
        long[][] load = new long[layers][experts];
        for (var en : tr.entrySet()) {
            int[] ab = PlacementProblem.pair(en.getKey());
            long[][] t = en.getValue();
            for (int i = 0; i < experts; i++) for (int j = 0; j < experts; j++) { load[ab[0]][i] += t[i][j]; load[ab[1]][j] += t[i][j]; }
        }
        return new PlacementProblem(name, layers, experts, 1, topo, load, tr, hiddenBytes);
    }

    /** perm[l]: a random relabelling of the experts per layer, so that contiguous layouts miss the paths. */
    static int[][] shuffled(SplittableRandom r, int layers, int experts) {
        int[][] perm = new int[layers][experts];
        for (int l = 0; l < layers; l++) {
            for (int e = 0; e < experts; e++) perm[l][e] = e;
            for (int e = experts - 1; e > 0; e--) { int j = r.nextInt(e + 1), t = perm[l][e]; perm[l][e] = perm[l][j]; perm[l][j] = t; }
        }
        return perm;
    }

    /**
     * 8 experts x 8 layers on 2 nodes x 2 devices of 2 slots: experts fall into 4 "paths" (e -> e or e^1 at the next
     * layer, mostly), shuffled per layer so that contiguous and round-robin layouts miss them.
     */
    static PlacementProblem small(int slots) {
        SplittableRandom r = new SplittableRandom(3);
        int layers = 8, experts = 8;
        int[][] perm = shuffled(r, layers, experts);
        Map<String, long[][]> tr = new HashMap<>();
        for (int l = 0; l + 1 < layers; l++) {
            long[][] t = new long[experts][experts];
            for (int path = 0; path < experts; path++) {
                int i = perm[l][path], j = perm[l + 1][path], k = perm[l + 1][path ^ 1];
                t[i][j] += 60 + r.nextInt(20);
                t[i][k] += 20;
                t[i][perm[l + 1][(path + 2) % experts]] += 5;
            }
            tr.put(l + "->" + (l + 1), t);
        }
        return chain("synthetic", layers, experts, Topology.of(2, 2, slots), tr, 4096);
    }

    @Test
    void theExactProgrammeMatchesExhaustiveSearch() {
        // 4 experts x 3 layers on 2 nodes x 1 device of 2 slots, no load cap to speak of: 6^3 plans, all tried
        SplittableRandom r = new SplittableRandom(11);
        int layers = 3, experts = 4;
        Map<String, long[][]> tr = new HashMap<>();
        for (int l = 0; l + 1 < layers; l++) {
            long[][] t = new long[experts][experts];
            for (int i = 0; i < experts; i++) for (int j = 0; j < experts; j++) t[i][j] = r.nextInt(50);
            tr.put(l + "->" + (l + 1), t);
        }
        PlacementProblem p = chain("exhaustive", layers, experts, Topology.of(2, 1, 2), tr, 8);
        AffinityPlacer exact = new AffinityPlacer(new AffinityPlacer.Options(5, 100, 1, 0), s -> { });
        double dp = AffinityPlacer.cost(exact.place(p), p);
        assertTrue(exact.lastReport().status().startsWith("OPTIMAL"), exact.lastReport().status());
        List<int[]> one = new java.util.ArrayList<>(); // the 6 ways to put 4 experts 2 + 2
        for (int a = 0; a < 4; a++) for (int b = a + 1; b < 4; b++) {
            int[] row = new int[4];
            int k = 2;
            row[0] = a;
            row[1] = b;
            for (int e = 0; e < 4; e++) if (e != a && e != b) row[k++] = e;
            one.add(row);
        }
        double brute = Double.MAX_VALUE;
        for (int[] x : one) for (int[] y : one) for (int[] z : one) {
            brute = Math.min(brute, AffinityPlacer.cost(new PlacementPlan(1, "all", 2, new int[][]{x, y, z}), p));
        }
        assertEquals(brute, dp, 1e-9);
        assertEquals(dp, exact.lastReport().bound(), 1e-9);
    }

    @Test
    void smallInstancesAreProvedOptimalAndCpSatComesWithinOnePercent() {
        PlacementProblem p = small(2); // 8 experts x 8 layers x 4 devices
        AffinityPlacer exact = new AffinityPlacer(new AffinityPlacer.Options(8, 1.10, 2, 1_000_000), s -> { });
        double optimum = AffinityPlacer.cost(exact.place(p), p);
        assertEquals(0, exact.lastReport().gap(), 1e-12, exact.lastReport().toString());
        // the integer program alone (exact method off) reaches the same optimum, or within 1% of it, in its time
        AffinityPlacer cp = new AffinityPlacer(new AffinityPlacer.Options(8, 1.10, 2, 1_000_000, 0), s -> { });
        PlacementPlan plan = cp.place(p);
        AffinityPlacer.Report rep = cp.lastReport();
        assertTrue(rep.bound() <= rep.cost() + 1e-9 && rep.gap() >= 0 && rep.gap() <= 1, rep.toString());
        double mine = AffinityPlacer.cost(plan, p);
        assertTrue(mine >= optimum - 1e-9, "nothing beats the optimum: " + mine + " < " + optimum);
        assertTrue(mine <= 1.01 * optimum, "CP-SAT " + mine + " vs the optimum " + optimum);
        assertEquals(rep.cost(), mine, 1e-6 * Math.max(1, mine), "the model's objective is the metrics' hop cost");
        PlanMetrics m = PlanMetrics.of(plan, p);
        for (Placer b : List.of(Baselines.contiguous(), Baselines.roundRobin(), Baselines.random(1), Baselines.eplb(2))) {
            PlacementPlan bp = b.place(p);
            bp.validate(p);
            assertTrue(mine <= AffinityPlacer.cost(bp, p), b.name() + ": " + AffinityPlacer.cost(bp, p) + " vs " + mine);
        }
        PlanMetrics rr = PlanMetrics.of(Baselines.roundRobin().place(p), p);
        assertTrue(m.crossDevice() < 0.6 * rr.crossDevice(), m.crossDevice() + " vs round-robin " + rr.crossDevice());
        PlanMetrics eplb = PlanMetrics.of(Baselines.eplb(2).place(p), p);
        assertTrue(m.maxImbalance() <= Math.max(1.10, eplb.maxImbalance()) + 1e-9, m.maxImbalance() + " vs EPLB " + eplb.maxImbalance());
    }

    /** The whole-model search starts from the layer chain's plan: its first solution is that plan, never a worse one. */
    @Test
    void cpSatsFirstSolutionIsTheWarmStartItWasHinted() {
        PlacementProblem p = small(2);
        List<String> lines = new java.util.concurrent.CopyOnWriteArrayList<>();
        AffinityPlacer placer = new AffinityPlacer(new AffinityPlacer.Options(4, 1.10, 2, 1_000_000, 0), lines::add);
        placer.place(p);
        double chain = Double.NaN, first = Double.NaN;
        for (String l : lines) {
            var m = java.util.regex.Pattern.compile("expected hop cost (\\d+)").matcher(l);
            if (!m.find()) continue;
            double c = Double.parseDouble(m.group(1));
            if (!l.contains("CP-SAT")) chain = Double.isNaN(chain) ? c : Math.min(chain, c);
            else if (Double.isNaN(first)) first = c;
        }
        assertTrue(!Double.isNaN(chain) && !Double.isNaN(first), String.join("\n", lines));
        assertTrue(first <= chain, "CP-SAT's first solution " + first + " vs the hint's " + chain + "\n" + String.join("\n", lines));
    }

    @Test
    void replicasAndTheLayerChainDecomposition() {
        PlacementProblem p = small(3); // 12 slots per layer: 4 replicas of the hottest
        PlacementPlan eplb = Baselines.eplb(2).place(p);
        AffinityPlacer chain = new AffinityPlacer(new AffinityPlacer.Options(10, 1.10, 2, 0), s -> { });
        PlacementPlan plan = chain.place(p);
        assertTrue(chain.lastReport().decomposed());
        plan.validate(p);
        for (int l = 0; l < p.layers(); l++) {
            int[] c = plan.replicaCounts(l, p.experts());
            int sum = 0;
            for (int v : c) sum += v;
            assertEquals(12, sum, "replica counts sum to the slots");
            assertEquals(java.util.Arrays.toString(eplb.replicaCounts(l, p.experts())), java.util.Arrays.toString(c),
                    "the same replication rule as EPLB");
        }
        double best = Math.min(AffinityPlacer.cost(eplb, p), Math.min(AffinityPlacer.cost(Baselines.contiguous().place(p), p),
                AffinityPlacer.cost(Baselines.roundRobin().place(p), p)));
        assertTrue(AffinityPlacer.cost(plan, p) <= best, "never worse than its warm start");
    }

    @Test
    void largeLayersAreSearchedBySwapsWithinTheLoadCap() {
        // 192 experts x 4 layers on 4 nodes x 8 devices of 7 slots (32 spare): each layer has 192 x 32 expert-device
        // variables, past the size where the chain calls CP-SAT, so the min-cost flow, the repair and the swaps do it
        SplittableRandom r = new SplittableRandom(7);
        int layers = 4, experts = 192;
        int[][] perm = shuffled(r, layers, experts);
        Map<String, long[][]> tr = new HashMap<>();
        for (int l = 0; l + 1 < layers; l++) {
            long[][] t = new long[experts][experts];
            for (int path = 0; path < experts; path++) {
                int heat = 1 + (path % 7 == 0 ? 6 : 0); // some hot paths, so the cap and the replicas matter
                t[perm[l][path]][perm[l + 1][path]] += 50L * heat;
                t[perm[l][path]][perm[l + 1][(path + 1) % experts]] += 20L * heat;
                t[perm[l][path]][perm[l + 1][r.nextInt(experts)]] += 10;
            }
            tr.put(l + "->" + (l + 1), t);
        }
        PlacementProblem p = chain("paths", layers, experts, Topology.of(4, 8, 7), tr, 8);
        PlacementPlan eplb = Baselines.eplb(4).place(p);
        AffinityPlacer chain = new AffinityPlacer(new AffinityPlacer.Options(20, 1.10, 2, 0), s -> { });
        PlacementPlan plan = chain.place(p);
        plan.validate(p);
        for (int l = 0; l < layers; l++) {
            assertEquals(java.util.Arrays.toString(eplb.replicaCounts(l, experts)), java.util.Arrays.toString(plan.replicaCounts(l, experts)));
            assertTrue(PlanMetrics.imbalance(plan, p, l) <= Math.max(1.10, PlanMetrics.imbalance(eplb, p, l)) + 1e-2,
                    "layer " + l + ": " + PlanMetrics.imbalance(plan, p, l) + " vs EPLB " + PlanMetrics.imbalance(eplb, p, l));
        }
        PlanMetrics m = PlanMetrics.of(plan, p), e = PlanMetrics.of(eplb, p);
        assertTrue(m.crossDevice() < 0.7 * e.crossDevice(), m.crossDevice() + " vs EPLB " + e.crossDevice());
        assertTrue(chain.lastReport().bound() <= chain.lastReport().cost(), chain.lastReport().toString());
    }

    @Test
    void badProblemsAreRefusedWithTheReason() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new PlacementProblem("x", 1, 16, 2, Topology.of(1, 2, 4), new long[1][16], Map.of(), 8));
        assertTrue(e.getMessage().contains("fewer than the 16 experts"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Topology.of(0, 4, 2));
        IllegalArgumentException pair = assertThrows(IllegalArgumentException.class,
                () -> new PlacementProblem("x", 2, 2, 1, Topology.of(1, 2, 1), new long[2][2], Map.of("1->5", new long[2][2]), 8));
        assertTrue(pair.getMessage().contains("1->5"), pair.getMessage());
    }

    @Test
    void replacementMovesExpertsOnlyWhereTheGainPaysForIt() {
        PlacementProblem p = small(2);
        PlacementPlan current = Baselines.roundRobin().place(p);
        PlacementPlan frozen = new AffinityPlacer(new AffinityPlacer.Options(5, 1.10, 2, 0), s -> { }).replacing(current, 1e9).place(p);
        assertEquals(0, AffinityPlacer.moved(current, frozen, p.experts()), "a prohibitive migration cost moves nothing");
        PlacementPlan free = new AffinityPlacer(new AffinityPlacer.Options(5, 1.10, 2, 0), s -> { }).replacing(current, 0).place(p);
        assertTrue(AffinityPlacer.moved(current, free, p.experts()) > 0);
        assertTrue(AffinityPlacer.cost(free, p) < AffinityPlacer.cost(current, p), "moving freely gains");
        PlacementPlan some = new AffinityPlacer(new AffinityPlacer.Options(5, 1.10, 2, 0), s -> { }).replacing(current, 30).place(p);
        int movedSome = AffinityPlacer.moved(current, some, p.experts()), movedFree = AffinityPlacer.moved(current, free, p.experts());
        assertTrue(movedSome <= movedFree, "a migration cost moves no more than none: " + movedSome + " vs " + movedFree);
        assertThrows(IllegalArgumentException.class, () -> new AffinityPlacer(AffinityPlacer.Options.DEFAULT, s -> { }).replacing(current, -1));
    }
}
