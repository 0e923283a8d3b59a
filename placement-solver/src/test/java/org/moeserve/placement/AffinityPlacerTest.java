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
    /**
     * 8 experts x 8 layers on 2 nodes x 2 devices of 2 slots: experts fall into 4 "paths" (e -> e or e^1 at the next
     * layer, mostly), shuffled per layer so that contiguous and round-robin layouts miss them.
     */
    static PlacementProblem small(int slots) {
        SplittableRandom r = new SplittableRandom(3);
        int layers = 8, experts = 8;
        int[][] perm = new int[layers][experts];
        for (int l = 0; l < layers; l++) {
            for (int e = 0; e < experts; e++) perm[l][e] = e;
            for (int e = experts - 1; e > 0; e--) { int j = r.nextInt(e + 1), t = perm[l][e]; perm[l][e] = perm[l][j]; perm[l][j] = t; }
        }
        long[][] load = new long[layers][experts];
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
            for (int i = 0; i < experts; i++) for (int j = 0; j < experts; j++) { load[l][i] += t[i][j]; load[l + 1][j] += t[i][j]; }
        }
        return new PlacementProblem("synthetic", layers, experts, 1, new Topology(2, 2, slots, 1, 4), load, tr, 4096);
    }

    @Test
    void smallInstanceBeatsEveryBaselineWithoutLoosingBalanceAndReportsItsBound() {
        PlacementProblem p = small(2);
        AffinityPlacer cp = new AffinityPlacer(new AffinityPlacer.Options(8, 1.10, 2, 1_000_000), s -> { });
        PlacementPlan plan = cp.place(p);
        AffinityPlacer.Report rep = cp.lastReport();
        // (not yet proved optimal in this time on 2 cores: the bound is reported, and must be a bound)
        assertTrue(rep.bound() <= rep.cost() + 1e-9 && rep.gap() >= 0 && rep.gap() <= 1, rep.toString());
        double mine = AffinityPlacer.cost(plan, p);
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
    void badProblemsAreRefusedWithTheReason() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new PlacementProblem("x", 1, 16, 2, new Topology(1, 2, 4, 1, 4), new long[1][16], Map.of(), 8));
        assertTrue(e.getMessage().contains("fewer than the 16 experts"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new Topology(0, 4, 2, 1, 4));
        IllegalArgumentException pair = assertThrows(IllegalArgumentException.class,
                () -> new PlacementProblem("x", 2, 2, 1, new Topology(1, 2, 1, 1, 4), new long[2][2], Map.of("1->5", new long[2][2]), 8));
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
