package org.moeserve.placement.cpsat;

import org.moeserve.placement.PlacementPlan;
import org.moeserve.placement.PlacementProblem;
import org.moeserve.placement.Topology;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Exact placement of small problems by dynamic programming along the layer chain: the proof of optimality that
 * CP-SAT's relaxation is too weak to give. Applies when there are no spare slots (every expert has one copy), every
 * known pair joins two consecutive known layers (a trace's consecutive pairs, or the published 0->7, 7->15), and one
 * layer's placements (experts! / slots!^devices, e.g. 2,520 for 8 experts on 4 devices of 2 slots) are few enough to
 * enumerate. Then the hop cost is a sum of terms between neighbouring layers, so
 * {@code best(l+1, t) = min over s of best(l, s) + cost(s, t)} over every placement s and t that respects the load
 * cap, which is exact. Devices stay labelled (no symmetry reduction), so the work is placements^2 x experts per pair.
 */
public final class ExactChain {
    private ExactChain() { }

    /** Placements of one layer (devices labelled), or Long.MAX_VALUE where the method does not apply. */
    public static long states(PlacementProblem p) {
        Topology t = p.topology();
        if (p.redundant() != 0 || !chained(p)) return Long.MAX_VALUE;
        double n = 1; // experts! / (slots!)^devices
        for (int i = 2; i <= p.experts(); i++) n *= i;
        for (int d = 0; d < t.devices(); d++) for (int i = 2; i <= t.slots(); i++) n /= i;
        return n > 1e15 ? Long.MAX_VALUE : Math.round(n);
    }

    private static boolean chained(PlacementProblem p) {
        int[] known = AffinityPlacer.knownLayers(p);
        for (String k : p.transitions().keySet()) {
            int[] ab = PlacementProblem.pair(k);
            int ia = Arrays.binarySearch(known, ab[0]);
            if (ia + 1 >= known.length || known[ia + 1] != ab[1]) return false;
        }
        return known.length > 0;
    }

    /**
     * The optimal plan under per-layer load caps ({@code share[l][e]} summed per device at most {@code cap[l]}),
     * layers without known pairs taken from {@code fallback}. Null if some layer has no placement within its cap.
     */
    static PlacementPlan solve(PlacementProblem p, long[][] share, long[] cap, PlacementPlan fallback, String solver) {
        Topology topo = p.topology();
        int E = p.experts(), D = topo.devices();
        int[] known = AffinityPlacer.knownLayers(p);
        double[][] hop = new double[D][D];
        for (int a = 0; a < D; a++) for (int b = 0; b < D; b++) hop[a][b] = topo.cost(a, b);
        List<int[][]> layerStates = new ArrayList<>();
        for (int l : known) {
            int[][] s = enumerate(E, D, topo.slots(), share[l], cap[l]);
            if (s.length == 0) return null;
            layerStates.add(s);
        }
        double[] best = new double[layerStates.get(0).length];
        int[][] parent = new int[known.length][];
        double[][] m = new double[E][D];
        for (int k = 0; k + 1 < known.length; k++) {
            long[][] T = p.transitions().get(known[k] + "->" + known[k + 1]);
            int[][] from = layerStates.get(k), to = layerStates.get(k + 1);
            double[] next = new double[to.length];
            Arrays.fill(next, Double.POSITIVE_INFINITY);
            int[] par = new int[to.length];
            for (int s = 0; s < from.length; s++) {
                // m[j][q]: cost of the tokens arriving at expert j if j sits on q, given placement s of the layer before
                for (double[] row : m) Arrays.fill(row, 0);
                if (T != null) {
                    for (int i = 0; i < E; i++) {
                        double[] h = hop[from[s][i]];
                        for (int j = 0; j < E; j++) {
                            long v = T[i][j];
                            if (v != 0) for (int q = 0; q < D; q++) m[j][q] += v * h[q];
                        }
                    }
                }
                double base = best[s];
                for (int t = 0; t < to.length; t++) {
                    int[] dev = to[t];
                    double c = base;
                    for (int j = 0; j < E; j++) c += m[j][dev[j]];
                    if (c < next[t]) {
                        next[t] = c;
                        par[t] = s;
                    }
                }
            }
            best = next;
            parent[k + 1] = par;
        }
        int arg = 0;
        for (int t = 1; t < best.length; t++) if (best[t] < best[arg]) arg = t;
        int[][] out = new int[p.layers()][];
        for (int l = 0; l < p.layers(); l++) out[l] = fallback.phy2log()[l].clone();
        for (int k = known.length - 1; k >= 0; k--) {
            int[] dev = layerStates.get(k)[arg];
            int[] fill = new int[D];
            int[] row = new int[D * topo.slots()];
            for (int e = 0; e < E; e++) row[dev[e] * topo.slots() + fill[dev[e]]++] = e;
            out[known[k]] = row;
            if (k > 0) arg = parent[k][arg];
        }
        return new PlacementPlan(1, solver, topo.slots(), out);
    }

    /** Every assignment of E experts to D devices of exactly `slots` each whose device loads stay within cap. */
    private static int[][] enumerate(int E, int D, int slots, long[] share, long cap) {
        List<int[]> out = new ArrayList<>();
        fill(0, new int[E], new int[D], new long[D], slots, share, cap, out);
        return out.toArray(int[][]::new);
    }

    private static void fill(int e, int[] dev, int[] used, long[] load, int slots, long[] share, long cap, List<int[]> out) {
        if (e == dev.length) {
            out.add(dev.clone());
            return;
        }
        for (int d = 0; d < used.length; d++) {
            if (used[d] == slots || load[d] + share[e] > cap) continue;
            dev[e] = d;
            used[d]++;
            load[d] += share[e];
            fill(e + 1, dev, used, load, slots, share, cap, out);
            used[d]--;
            load[d] -= share[e];
        }
    }
}
