package org.moeserve.routing;

/**
 * The k largest of n scores, largest first, ties to the lower index (torch.topk leaves the order of equal values
 * unspecified; this one is fixed). One implementation for the router, the predictors and their evaluation.
 */
public final class TopK {
    private TopK() {}

    /** Allocation-free: the k largest of p[0..n) into idx/val. */
    public static void select(float[] p, int n, int k, int[] idx, float[] val) {
        for (int j = 0; j < k; j++) {
            idx[j] = -1;
            val[j] = Float.NEGATIVE_INFINITY;
        }
        for (int i = 0; i < n; i++) {
            float v = p[i];
            if (idx[k - 1] >= 0 && v <= val[k - 1]) continue;
            int j = k - 1;
            while (j > 0 && (idx[j - 1] < 0 || v > val[j - 1])) {
                idx[j] = idx[j - 1];
                val[j] = val[j - 1];
                j--;
            }
            idx[j] = i;
            val[j] = v;
        }
    }

    /** Indices of the k largest scores (min(k, length) of them). */
    public static int[] of(float[] s, int k) {
        int n = Math.max(0, Math.min(k, s.length));
        int[] idx = new int[n];
        if (n == 0) return idx;
        select(s, s.length, n, idx, new float[n]);
        return idx;
    }
}
