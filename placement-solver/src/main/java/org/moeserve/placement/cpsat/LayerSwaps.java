package org.moeserve.placement.cpsat;

/**
 * Fast moves for one layer's placement with its neighbours fixed (a linear cost {@code costOf[e][d]}): swap the
 * devices of two expert copies. Used where the layer is too large for CP-SAT to help within the chain's time
 * (256 experts x 64 devices): it keeps the slot counts, never puts two copies of an expert on one device, and keeps
 * every device's load within the cap.
 */
final class LayerSwaps {
    private LayerSwaps() { }

    /** A copy of {@code on} brought within the cap by the cheapest swaps, or null when none gets it there. */
    static int[][] repair(int[][] on, long[][] costOf, long[] share, long cap) {
        int[][] x = copy(on);
        int devices = x[0].length, experts = x.length;
        long[] load = loads(x, share);
        for (int guard = 0; guard < experts * devices; guard++) {
            int over = -1;
            for (int d = 0; d < devices; d++) if (load[d] > cap && (over < 0 || load[d] > load[over])) over = d;
            if (over < 0) return x;
            double best = Double.MAX_VALUE;
            int b1 = -1, b2 = -1, bd = -1;
            for (int e1 = 0; e1 < experts; e1++) {
                if (x[e1][over] == 0) continue;
                for (int d2 = 0; d2 < devices; d2++) {
                    if (d2 == over || x[e1][d2] == 1) continue;
                    for (int e2 = 0; e2 < experts; e2++) {
                        if (x[e2][d2] == 0 || x[e2][over] == 1 || share[e2] >= share[e1]) continue;
                        if (load[d2] - share[e2] + share[e1] > cap) continue;
                        // cost added per unit of overload removed
                        double score = (double) (costOf[e1][d2] + costOf[e2][over] - costOf[e1][over] - costOf[e2][d2])
                                / Math.min(share[e1] - share[e2], load[over] - cap);
                        if (score < best) {
                            best = score;
                            b1 = e1;
                            b2 = e2;
                            bd = d2;
                        }
                    }
                }
            }
            if (b1 < 0) return null;
            swap(x, load, share, b1, over, b2, bd);
        }
        return null;
    }

    /** Improving swaps, first found first taken, until none is left (or 100 passes). */
    static int[][] improve(int[][] on, long[][] costOf, long[] share, long cap) {
        int[][] x = copy(on);
        int devices = x[0].length, experts = x.length;
        long[] load = loads(x, share);
        int copies = 0;
        for (int[] row : x) for (int v : row) copies += v;
        int[] ce = new int[copies], cd = new int[copies];
        int c = 0;
        for (int e = 0; e < experts; e++) for (int d = 0; d < devices; d++) if (x[e][d] == 1) { ce[c] = e; cd[c++] = d; }
        boolean improved = true;
        for (int pass = 0; pass < 100 && improved; pass++) {
            improved = false;
            for (int a = 0; a < copies; a++) {
                for (int b = a + 1; b < copies; b++) {
                    int e1 = ce[a], d1 = cd[a], e2 = ce[b], d2 = cd[b];
                    if (d1 == d2 || e1 == e2 || x[e1][d2] == 1 || x[e2][d1] == 1) continue;
                    long delta = costOf[e1][d2] + costOf[e2][d1] - costOf[e1][d1] - costOf[e2][d2];
                    if (delta >= 0) continue;
                    if (load[d1] - share[e1] + share[e2] > cap && share[e2] > share[e1]) continue;
                    if (load[d2] - share[e2] + share[e1] > cap && share[e1] > share[e2]) continue;
                    swap(x, load, share, e1, d1, e2, d2);
                    ce[a] = e2;
                    ce[b] = e1;
                    improved = true;
                }
            }
        }
        return x;
    }

    private static void swap(int[][] x, long[] load, long[] share, int e1, int d1, int e2, int d2) {
        x[e1][d1] = 0;
        x[e2][d2] = 0;
        x[e1][d2] = 1;
        x[e2][d1] = 1;
        load[d1] += share[e2] - share[e1];
        load[d2] += share[e1] - share[e2];
    }

    private static long[] loads(int[][] x, long[] share) {
        long[] load = new long[x[0].length];
        for (int e = 0; e < x.length; e++) for (int d = 0; d < x[e].length; d++) load[d] += share[e] * x[e][d];
        return load;
    }

    private static int[][] copy(int[][] on) {
        int[][] x = new int[on.length][];
        for (int e = 0; e < on.length; e++) x[e] = on[e].clone();
        return x;
    }
}
