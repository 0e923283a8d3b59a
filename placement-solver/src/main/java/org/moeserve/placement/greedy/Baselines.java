package org.moeserve.placement.greedy;

import org.moeserve.placement.PlacementPlan;
import org.moeserve.placement.PlacementProblem;
import org.moeserve.placement.Placer;

import java.util.SplittableRandom;

/**
 * The placements everything is compared with. Each fills every layer's physical slots with one copy of every
 * logical expert plus replicas of the hottest (EPLB's replication rule), then lays the physical experts out:
 * <ul>
 *   <li>contiguous: in logical order, device by device (vLLM's default expert-parallel layout);</li>
 *   <li>round-robin: physical expert k on device k mod devices;</li>
 *   <li>random: a seeded shuffle;</li>
 *   <li>eplb: DeepSeek's hierarchical load balancer ({@link Eplb}), which balances load and ignores affinity.</li>
 * </ul>
 */
public final class Baselines {
    private Baselines() {}

    public static Placer contiguous() { return simple("contiguous", (k, devices, slots, rnd) -> k); }

    public static Placer roundRobin() {
        return simple("round-robin", (k, devices, slots, rnd) -> (k % devices) * slots + k / devices);
    }

    public static Placer random(long seed) { return simple("random", null, seed); }

    /** EPLB with {@code groups} expert groups (groups that divide across nodes enable its hierarchical policy). */
    public static Placer eplb(int groups) {
        return new Placer() {
            @Override
            public String name() { return "eplb"; }

            @Override
            public PlacementPlan place(PlacementProblem p) {
                float[][] w = new float[p.layers()][p.experts()];
                for (int l = 0; l < p.layers(); l++) for (int e = 0; e < p.experts(); e++) w[l][e] = p.load()[l][e];
                return new PlacementPlan(1, name(), p.topology().slots(),
                        Eplb.rebalance(w, p.physicalPerLayer(), groups, p.topology().nodes(), p.topology().devices()));
            }
        };
    }

    /** Logical experts plus replicas of the hottest, in that order (EPLB's replicate step on the whole layer). */
    public static int[] physicalExperts(long[] load, int physical) {
        float[] w = new float[load.length];
        for (int e = 0; e < load.length; e++) w[e] = load[e];
        return Eplb.replicate(w, physical)[0];
    }

    private interface Layout { int slotOf(int k, int devices, int slots, SplittableRandom rnd); }

    private static Placer simple(String name, Layout layout) { return simple(name, layout, 7); }

    private static Placer simple(String name, Layout layout, long seed) {
        return new Placer() {
            @Override
            public String name() { return name; }

            @Override
            public PlacementPlan place(PlacementProblem p) {
                int phys = p.physicalPerLayer(), devices = p.topology().devices(), slots = p.topology().slots();
                int[][] out = new int[p.layers()][phys];
                SplittableRandom rnd = new SplittableRandom(seed);
                for (int l = 0; l < p.layers(); l++) {
                    int[] experts = physicalExperts(p.load()[l], phys);
                    int[] slotOf = new int[phys];
                    if (layout == null) { // random: a seeded permutation of the slots
                        for (int k = 0; k < phys; k++) slotOf[k] = k;
                        for (int k = phys - 1; k > 0; k--) {
                            int j = rnd.nextInt(k + 1), t = slotOf[k];
                            slotOf[k] = slotOf[j];
                            slotOf[j] = t;
                        }
                    } else {
                        for (int k = 0; k < phys; k++) slotOf[k] = layout.slotOf(k, devices, slots, rnd);
                    }
                    for (int k = 0; k < phys; k++) out[l][slotOf[k]] = experts[k];
                }
                return new PlacementPlan(1, name, slots, out);
            }
        };
    }
}
