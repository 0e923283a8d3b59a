package org.moeserve.placement;

import org.junit.jupiter.api.Test;
import org.moeserve.placement.greedy.BalancedPacking;
import org.moeserve.placement.greedy.Baselines;

import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Load-only placement: valid plans, at most EPLB's imbalance, and close to the proven bound. */
class BalancedPackingTest {
    /** DeepSeek-V3 shape: 58 MoE layers x 256 experts, Zipf-skewed load, 32 redundant slots on 4 x 8 GPUs. */
    static PlacementProblem deepseekShaped() {
        int layers = 58, experts = 256;
        SplittableRandom r = new SplittableRandom(5);
        long[][] load = new long[layers][experts];
        for (int l = 0; l < layers; l++) {
            int[] perm = new int[experts];
            for (int i = 0; i < experts; i++) perm[i] = i;
            for (int i = experts - 1; i > 0; i--) {
                int j = r.nextInt(i + 1), x = perm[i];
                perm[i] = perm[j];
                perm[j] = x;
            }
            for (int i = 0; i < experts; i++) load[l][perm[i]] = (long) (200_000 / Math.pow(i + 1, 0.9)) + r.nextInt(50);
        }
        return new PlacementProblem("deepseek-shaped load", layers, experts, 8, Topology.of(4, 8, (experts + 32) / 32), load,
                Map.of(), 14336);
    }

    @Test
    void packsEveryExpertWithinEplbsImbalanceAndNearTheBound() {
        PlacementProblem p = deepseekShaped();
        BalancedPacking bp = new BalancedPacking();
        long t0 = System.nanoTime();
        PlacementPlan plan = bp.place(p);
        double seconds = (System.nanoTime() - t0) / 1e9;
        plan.validate(p);
        int devices = p.topology().devices(), slots = p.topology().slots();
        for (int l = 0; l < p.layers(); l++) {
            Set<Integer> seen = new HashSet<>();
            for (int e : plan.phy2log()[l]) seen.add(e);
            assertEquals(p.experts(), seen.size(), "every expert has a slot in layer " + l);
            for (int d = 0; d < devices; d++) {
                Set<Integer> here = new HashSet<>();
                for (int s = d * slots; s < (d + 1) * slots; s++) assertTrue(here.add(plan.phy2log()[l][s]), "no expert twice on a device");
            }
        }
        double packed = PlanMetrics.of(plan, p).maxImbalance();
        double eplb = PlanMetrics.of(Baselines.eplb(4).place(p), p).maxImbalance();
        assertTrue(packed <= eplb, "max/mean " + packed + " vs EPLB's " + eplb);
        assertTrue(packed <= bp.bound() * 1.02, "within 2% of the proven bound " + bp.bound() + ": " + packed);
        assertTrue(seconds < 60, seconds + " s");
    }
}
