package org.moeserve.cache.sim;

import org.moeserve.routing.predict.TokenSample;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Expert paths with the structure real routing has, for replays at production shape without production data (the
 * scale benchmark and tests): skewed expert popularity per layer (Zipf), inter-layer affinity (a token's expert at
 * layer l makes a few experts at l+1 likely) and temporal reuse (a token repeats some of its predecessor's experts at
 * the same layer). Seeded: the same arguments give the same paths.
 */
public final class SyntheticPaths {
    private SyntheticPaths() {}

    /**
     * @param reuse    probability that a slot repeats the previous token's expert at that layer
     * @param affinity probability that a slot follows the layer before's first expert (else popularity)
     */
    public static List<TokenSample> generate(int tokens, int layers, int experts, int topK, double reuse, double affinity, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double[][] pop = new double[layers][experts]; // cumulative Zipf(1.0) over a random permutation per layer
        int[][][] next = new int[layers][experts][3];  // the 3 likely successors of each expert
        for (int l = 0; l < layers; l++) {
            int[] perm = perm(experts, r);
            double sum = 0;
            for (int i = 0; i < experts; i++) sum += 1.0 / (i + 1);
            double acc = 0;
            double[] p = new double[experts];
            for (int i = 0; i < experts; i++) p[perm[i]] = 1.0 / (i + 1) / sum;
            for (int e = 0; e < experts; e++) pop[l][e] = acc += p[e];
            for (int e = 0; e < experts; e++) for (int j = 0; j < 3; j++) next[l][e][j] = r.nextInt(experts);
        }
        List<TokenSample> out = new ArrayList<>(tokens);
        int[][] prev = null;
        for (int t = 0; t < tokens; t++) {
            int[][] path = new int[layers][];
            for (int l = 0; l < layers; l++) {
                int[] sel = new int[topK];
                int n = 0;
                while (n < topK) {
                    double u = r.nextDouble();
                    int e;
                    if (prev != null && u < reuse) e = prev[l][r.nextInt(topK)];
                    else if (l > 0 && u < reuse + affinity) e = next[l - 1][path[l - 1][0]][r.nextInt(3)];
                    else e = sample(pop[l], r.nextDouble());
                    boolean dup = false;
                    for (int j = 0; j < n; j++) dup |= sel[j] == e;
                    if (!dup) sel[n++] = e;
                }
                path[l] = sel;
            }
            out.add(new TokenSample("synthetic", -1, path, null, prev));
            prev = path;
        }
        return out;
    }

    private static int sample(double[] cumulative, double u) {
        int lo = 0, hi = cumulative.length - 1;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (cumulative[mid] < u) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    private static int[] perm(int n, SplittableRandom r) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = r.nextInt(i + 1), x = p[i];
            p[i] = p[j];
            p[j] = x;
        }
        return p;
    }
}
