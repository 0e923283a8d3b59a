package org.moeserve.runtime.engine;

import org.moeserve.runtime.model.ModelConfig;

import java.util.Arrays;

/**
 * RoPE angles per position, as Hugging Face computes them in fp32: inv_freq[i] = 1 / theta^(2i/d),
 * angle = position * inv_freq[i], then cos and sin. With YaRN (DeepSeek's rope_scaling) the frequencies blend
 * interpolated (inv_freq / factor) and original ones over a linear ramp between the correction dimensions of
 * beta_fast and beta_slow, and cos/sin are multiplied by mscale(mscale) / mscale(mscale_all_dim), as DeepSeek's
 * DeepseekV2YarnRotaryEmbedding does. Tables grow with the positions in use (doubling), never beyond the context: a
 * config claiming a context of 2^31 costs nothing until a sequence gets there.
 */
final class Rope {
    private final float[] invFreq;
    private final float mscale;
    private final int maxPositions;
    float[][] cos = new float[0][];
    float[][] sin = new float[0][];

    Rope(int dim, double theta, int maxPositions) { this(dim, theta, maxPositions, null); }

    Rope(int dim, double theta, int maxPositions, ModelConfig.Yarn yarn) {
        int half = dim / 2;
        invFreq = new float[half];
        int low = 0;
        float span = 1;
        if (yarn != null) { // the ramp between the correction dimensions of beta_fast and beta_slow
            low = Math.max((int) Math.floor(correctionDim(yarn.betaFast(), dim, theta, yarn.originalMaxPositions())), 0);
            int high = Math.min((int) Math.ceil(correctionDim(yarn.betaSlow(), dim, theta, yarn.originalMaxPositions())), dim - 1);
            span = (low == high ? high + 0.001f : high) - low;
        }
        for (int i = 0; i < half; i++) {
            float base = (float) Math.pow(theta, (2.0 * i) / dim);
            float extra = 1f / base;
            if (yarn == null) {
                invFreq[i] = extra;
                continue;
            }
            float inter = 1f / ((float) yarn.factor() * base);
            float extraMask = 1f - Math.clamp((i - low) / span, 0f, 1f);
            invFreq[i] = inter * (1 - extraMask) + extra * extraMask;
        }
        mscale = yarn == null ? 1f : (float) (yarn.mscale(yarn.mscale()) / yarn.mscale(yarn.mscaleAllDim()));
        this.maxPositions = maxPositions;
        ensure(Math.min(maxPositions, 256));
    }

    /** The dimension whose wavelength makes {@code rotations} turns over the original context (YaRN). */
    private static double correctionDim(double rotations, int dim, double base, int maxPositions) {
        return dim * Math.log(maxPositions / (rotations * 2 * Math.PI)) / (2 * Math.log(base));
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
                cos[p][i] = (float) Math.cos(angle) * mscale;
                sin[p][i] = (float) Math.sin(angle) * mscale;
            }
        }
    }
}
