package org.moeserve.placement.greedy;

import org.moeserve.placement.PlacementPlan;
import org.moeserve.placement.PlacementProblem;
import org.moeserve.placement.Placer;

import java.util.Arrays;

/**
 * Load-only placement with a proven bound, for when only per-expert load counts are known (the usual production
 * case: SGLang's and vLLM's recorders count load, not transitions). Per layer:
 * <ol>
 *   <li>replicas: each of the R spare slots goes to the expert whose per-replica load is then largest (this greedy
 *   minimises the largest per-replica load exactly);</li>
 *   <li>packing: replicas in decreasing load, each onto the least-loaded device with a free slot that does not hold
 *   the same expert (LPT), then pairwise swaps between the most loaded device and the others while the maximum falls.</li>
 * </ol>
 * Lower bound on a layer's max device load: max(total / devices, largest per-replica load); {@link #bound} reports
 * the worst layer's max/mean at that bound, so the gap to optimal is known without a solver.
 */
public final class BalancedPacking implements Placer {
    private double worstBound = 1;

    @Override
    public String name() { return "balanced packing"; }

    /** The worst layer's lower bound on max/mean device load, from the last {@link #place}. */
    public double bound() { return worstBound; }

    @Override
    public PlacementPlan place(PlacementProblem p) {
        int devices = p.topology().devices(), slots = p.topology().slots(), physical = devices * slots, experts = p.experts();
        int[][] phy = new int[p.layers()][physical];
        worstBound = 1;
        for (int l = 0; l < p.layers(); l++) {
            long[] load = p.load()[l];
            int[] reps = new int[experts];
            Arrays.fill(reps, 1);
            for (int extra = physical - experts; extra > 0; extra--) {
                int best = 0;
                for (int e = 1; e < experts; e++) if (share(load, reps, e) > share(load, reps, best)) best = e;
                reps[best]++;
            }
            // replicas, heaviest first (ties: expert id)
            int[] item = new int[physical];
            int k = 0;
            for (int e = 0; e < experts; e++) for (int r = 0; r < reps[e]; r++) item[k++] = e;
            Integer[] order = new Integer[physical];
            for (int i = 0; i < physical; i++) order[i] = i;
            Arrays.sort(order, (a, b) -> {
                int c = Double.compare(share(load, reps, item[b]), share(load, reps, item[a]));
                return c != 0 ? c : Integer.compare(item[a], item[b]);
            });
            int[][] slot = new int[devices][slots];
            int[] used = new int[devices];
            double[] dev = new double[devices];
            for (int i : order) {
                int e = item[i], target = -1;
                for (int d = 0; d < devices; d++) {
                    if (used[d] == slots || holds(slot[d], used[d], e)) continue;
                    if (target < 0 || dev[d] < dev[target]) target = d;
                }
                if (target < 0) { // every device with room holds e already: take any with room (a duplicate is still valid)
                    for (int d = 0; d < devices; d++) if (used[d] < slots && (target < 0 || dev[d] < dev[target])) target = d;
                }
                slot[target][used[target]++] = e;
                dev[target] += share(load, reps, e);
            }
            improve(slot, dev, load, reps);
            double total = 0, largest = 0;
            for (int e = 0; e < experts; e++) {
                total += load[e];
                largest = Math.max(largest, share(load, reps, e));
            }
            double mean = total / devices;
            if (mean > 0) worstBound = Math.max(worstBound, Math.max(mean, largest) / mean);
            for (int d = 0; d < devices; d++) System.arraycopy(slot[d], 0, phy[l], d * slots, slots);
        }
        return new PlacementPlan(1, name(), slots, phy);
    }

    /** Swaps between the most loaded device and another while that lowers the maximum. */
    private static void improve(int[][] slot, double[] dev, long[] load, int[] reps) {
        for (int round = 0; round < 1000; round++) {
            int hi = 0;
            for (int d = 1; d < dev.length; d++) if (dev[d] > dev[hi]) hi = d;
            boolean moved = false;
            for (int d = 0; d < dev.length && !moved; d++) {
                if (d == hi) continue;
                for (int a = 0; a < slot[hi].length && !moved; a++) {
                    for (int b = 0; b < slot[d].length && !moved; b++) {
                        int ea = slot[hi][a], eb = slot[d][b];
                        double delta = share(load, reps, ea) - share(load, reps, eb);
                        if (delta <= 0 || ea == eb) continue;
                        if (Math.max(dev[hi] - delta, dev[d] + delta) >= dev[hi] - 1e-9) continue;
                        if (holds(slot[d], slot[d].length, ea) || holds(slot[hi], slot[hi].length, eb)) continue;
                        slot[hi][a] = eb;
                        slot[d][b] = ea;
                        dev[hi] -= delta;
                        dev[d] += delta;
                        moved = true;
                    }
                }
            }
            if (!moved) return;
        }
    }

    private static double share(long[] load, int[] reps, int e) { return (double) load[e] / reps[e]; }

    private static boolean holds(int[] slots, int n, int e) {
        for (int i = 0; i < n; i++) if (slots[i] == e) return true;
        return false;
    }
}
