package org.moeserve.runtime.engine;

import java.util.Arrays;

/**
 * RoPE angles per position, as Hugging Face computes them in fp32: inv_freq[i] = 1 / theta^(2i/d),
 * angle = position * inv_freq[i], then cos and sin. Tables grow with the positions in use (doubling), never beyond
 * the context: a config claiming a context of 2^31 costs nothing until a sequence gets there.
 */
final class Rope {
    private final float[] invFreq;
    private final int maxPositions;
    float[][] cos = new float[0][];
    float[][] sin = new float[0][];

    Rope(int headDim, double theta, int maxPositions) {
        int half = headDim / 2;
        invFreq = new float[half];
        for (int i = 0; i < half; i++) invFreq[i] = (float) (1.0 / Math.pow(theta, (2.0 * i) / headDim));
        this.maxPositions = maxPositions;
        ensure(Math.min(maxPositions, 256));
    }

    /** Makes rows 0..positions-1 available. */
    void ensure(int positions) {
        int have = cos.length;
        if (positions <= have) return;
        int n = (int) Math.min(maxPositions, Math.max(positions, 2L * have));
        cos = Arrays.copyOf(cos, n);
        sin = Arrays.copyOf(sin, n);
        for (int p = have; p < n; p++) {
            cos[p] = new float[invFreq.length];
            sin[p] = new float[invFreq.length];
            for (int i = 0; i < invFreq.length; i++) {
                float angle = (float) p * invFreq[i];
                cos[p][i] = (float) Math.cos(angle);
                sin[p][i] = (float) Math.sin(angle);
            }
        }
    }
}
