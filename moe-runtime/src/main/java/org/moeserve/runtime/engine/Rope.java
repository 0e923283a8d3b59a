package org.moeserve.runtime.engine;

/**
 * RoPE angles per position, as Hugging Face computes them in fp32: inv_freq[i] = 1 / theta^(2i/d),
 * angle = position * inv_freq[i], then cos and sin. Tables are built once for the whole context.
 */
final class Rope {
    final float[][] cos;
    final float[][] sin;

    Rope(int headDim, double theta, int maxPositions) {
        int half = headDim / 2;
        float[] invFreq = new float[half];
        for (int i = 0; i < half; i++) invFreq[i] = (float) (1.0 / Math.pow(theta, (2.0 * i) / headDim));
        cos = new float[maxPositions][half];
        sin = new float[maxPositions][half];
        for (int p = 0; p < maxPositions; p++) {
            for (int i = 0; i < half; i++) {
                float angle = (float) p * invFreq[i];
                cos[p][i] = (float) Math.cos(angle);
                sin[p][i] = (float) Math.sin(angle);
            }
        }
    }
}
