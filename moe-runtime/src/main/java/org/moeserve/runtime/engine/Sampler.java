package org.moeserve.runtime.engine;

import java.util.SplittableRandom;

/** Picks the next token from logits (greedy, temperature, top-p); one per sequence, holding its generator. */
public final class Sampler {
    private final SamplingParams params;
    private final SplittableRandom random;

    public Sampler(SamplingParams params) {
        this.params = params;
        this.random = new SplittableRandom(params.seed());
    }

    /** Index of the largest logit; the lowest index wins a tie (as torch.argmax). */
    public static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }

    /** log(sum_i exp(logits[i])), with the max subtracted first (in double). */
    public static double logSumExp(float[] logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) max = Math.max(max, l);
        double sum = 0;
        for (float l : logits) sum += Math.exp(l - max);
        return max + Math.log(sum);
    }

    /** log softmax of the logits (temperature 1): what the model assigns, whatever a request samples with. */
    public static float[] logSoftmax(float[] logits) {
        double lse = logSumExp(logits);
        float[] out = new float[logits.length];
        for (int i = 0; i < out.length; i++) out[i] = (float) (logits[i] - lse);
        return out;
    }

    public int sample(float[] logits) {
        if (params.greedy()) return argmax(logits);
        int n = logits.length;
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) max = Math.max(max, l);
        double[] p = new double[n];
        double sum = 0;
        for (int i = 0; i < n; i++) {
            p[i] = Math.exp((logits[i] - max) / params.temperature());
            sum += p[i];
        }
        for (int i = 0; i < n; i++) p[i] /= sum;
        if (params.topP() >= 1) { // every token kept: draw in index order, O(vocabulary)
            double u = random.nextDouble();
            for (int i = 0; i < n; i++) {
                u -= p[i];
                if (u <= 0) return i;
            }
            int last = n - 1; // rounding left u above 0: the last token with any mass
            while (last > 0 && p[last] == 0) last--;
            return last;
        }
        // nucleus: the smallest prefix (by probability, then index) whose mass reaches topP, taken from a heap, so a
        // 150,000-token vocabulary costs O(n + k log n) per token, not a sort of every token
        int[] heap = new int[n];
        for (int i = 0; i < n; i++) heap[i] = i;
        for (int i = n / 2 - 1; i >= 0; i--) siftDown(heap, i, n, p);
        int[] order = new int[n];
        int keep = 0, size = n;
        double mass = 0;
        while (keep < n && (keep == 0 || mass < params.topP())) {
            int top = heap[0];
            heap[0] = heap[--size];
            siftDown(heap, 0, size, p);
            order[keep++] = top;
            mass += p[top];
        }
        double u = random.nextDouble() * mass;
        for (int i = 0; i < keep; i++) {
            u -= p[order[i]];
            if (u <= 0) return order[i];
        }
        return order[keep - 1];
    }

    /** Before: higher probability first, then the lower index (the order a stable descending sort gives). */
    private static boolean before(int a, int b, double[] p) { return p[a] != p[b] ? p[a] > p[b] : a < b; }

    private static void siftDown(int[] heap, int i, int size, double[] p) {
        while (true) {
            int l = 2 * i + 1, best = i;
            if (l < size && before(heap[l], heap[best], p)) best = l;
            if (l + 1 < size && before(heap[l + 1], heap[best], p)) best = l + 1;
            if (best == i) return;
            int t = heap[i];
            heap[i] = heap[best];
            heap[best] = t;
            i = best;
        }
    }
}
