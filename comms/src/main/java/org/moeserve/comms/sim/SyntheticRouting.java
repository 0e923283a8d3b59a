package org.moeserve.comms.sim;

import java.util.Iterator;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.SplittableRandom;

/**
 * Tokens' routing drawn from statistics, for simulating where no trace exists (moe-stats/1, or synthesised at
 * DeepSeek-V3 size). A token's first choice at layer l follows the known top-1 transitions from the nearest earlier
 * layer that has a pair into l (so inter-layer affinity is kept), else layer l's load; its other k-1 choices are
 * drawn from layer l's load, distinct. Deterministic for a seed. Sequences are {@code perSequence} tokens long.
 */
public final class SyntheticRouting implements Iterable<ClusterSimulator.Step> {
    private final long[][] loadCum;          // [layer] cumulative load
    private final long[][][] pairCum;        // [layer] -> cumulative rows of the pair into it, or null
    private final int[] pairFrom;            // [layer] -> the earlier layer of that pair, or -1
    private final int layers, experts, topK, batch, perSequence;
    private final long tokens, seed;

    public SyntheticRouting(long[][] load, Map<String, long[][]> transitionsTop1, int topK, long tokens, int batch,
                            int perSequence, long seed) {
        this.layers = load.length;
        this.experts = load[0].length;
        if (topK < 1 || topK > experts) throw new IllegalArgumentException("top-k is " + topK + " but must be in 1.." + experts);
        if (batch < 1) throw new IllegalArgumentException("batch is " + batch + " tokens but must be >= 1");
        this.topK = topK;
        this.tokens = tokens;
        this.batch = batch;
        this.perSequence = Math.max(1, perSequence);
        this.seed = seed;
        loadCum = new long[layers][];
        for (int l = 0; l < layers; l++) {
            int used = 0;
            for (long v : load[l]) if (v > 0) used++;
            long[] w = load[l].clone();
            if (used < topK) for (int e = 0; e < experts; e++) w[e] = Math.max(0, w[e]) + 1; // too few to draw k distinct
            loadCum[l] = cumulative(w);
        }
        pairCum = new long[layers][][];
        pairFrom = new int[layers];
        java.util.Arrays.fill(pairFrom, -1);
        for (Map.Entry<String, long[][]> en : transitionsTop1.entrySet()) {
            String[] ab = en.getKey().split("->");
            int a = Integer.parseInt(ab[0].trim()), b = Integer.parseInt(ab[1].trim());
            if (b >= layers || a >= b || a < pairFrom[b]) continue;
            pairFrom[b] = a;
            pairCum[b] = new long[experts][];
            for (int i = 0; i < experts; i++) pairCum[b][i] = cumulative(en.getValue()[i]);
        }
    }

    private static long[] cumulative(long[] w) {
        long[] c = new long[w.length];
        long s = 0;
        for (int i = 0; i < w.length; i++) c[i] = s += Math.max(0, w[i]);
        return c;
    }

    private static int draw(long[] cum, SplittableRandom r) {
        long u = r.nextLong(cum[cum.length - 1]);
        int lo = 0, hi = cum.length - 1;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (cum[mid] > u) hi = mid;
            else lo = mid + 1;
        }
        return lo;
    }

    @Override
    public Iterator<ClusterSimulator.Step> iterator() {
        SplittableRandom r = new SplittableRandom(seed);
        return new Iterator<>() {
            long done;

            @Override
            public boolean hasNext() { return done < tokens; }

            @Override
            public ClusterSimulator.Step next() {
                if (!hasNext()) throw new NoSuchElementException();
                int n = (int) Math.min(batch, tokens - done);
                long[] seq = new long[n];
                int[][][] ex = new int[n][layers][topK];
                for (int t = 0; t < n; t++) {
                    seq[t] = (done + t) / perSequence;
                    for (int l = 0; l < layers; l++) {
                        int[] row = ex[t][l];
                        int a = pairFrom[l];
                        long[] cond = a >= 0 ? pairCum[l][ex[t][a][0]] : null;
                        row[0] = cond != null && cond[experts - 1] > 0 ? draw(cond, r) : draw(loadCum[l], r);
                        for (int j = 1; j < topK; j++) {
                            int e;
                            boolean dup;
                            do {
                                e = draw(loadCum[l], r);
                                dup = false;
                                for (int i = 0; i < j; i++) dup |= row[i] == e;
                            } while (dup);
                            row[j] = e;
                        }
                    }
                }
                done += n;
                return new ClusterSimulator.Step(seq, ex);
            }
        };
    }
}
