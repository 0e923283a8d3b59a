package org.moeserve.runtime.model;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * llama.cpp's block formats in plain Java: the reference decoding of each layout (the scalar twin of the vector
 * kernels in {@code QuantKernels}) and quantizers that write the same layouts. The layouts are ggml's
 * ({@code ggml-common.h}); the quantizers follow the published reference algorithms ({@code quantize_row_*_ref}:
 * round-to-nearest for Q8_0/Q4_0/Q5_0, the weighted scale/min search for Q4_K and the scale search for Q6_K), so a
 * file we write decodes identically in llama.cpp. Byte layouts per block, little-endian:
 *
 * <pre>
 * Q8_0  34 B / 32:  f16 d | int8 q[32]                          x = d q
 * Q4_0  18 B / 32:  f16 d | u8 qs[16]                           x[j] = d ((qs[j] &amp; 15) - 8), x[j+16] = d ((qs[j] &gt;&gt; 4) - 8)
 * Q5_0  22 B / 32:  f16 d | u32 qh | u8 qs[16]                  as Q4_0 with bit j (j+16) of qh as 5th bit, minus 16
 * Q4_K 144 B / 256: f16 d | f16 dmin | u8 scales[12] | u8 qs[128]
 *       8 groups of 32 with 6-bit scale sc and min m (packed in scales); group 2c takes the low nibbles of
 *       qs[32c..32c+32), group 2c+1 the high ones: x = d sc q - dmin m
 * Q6_K 210 B / 256: u8 ql[128] | u8 qh[64] | int8 scales[16] | f16 d
 *       per half h (128 values): q = 4 low bits from ql[64h..], 2 high bits from qh[32h..], minus 32; x = d scales[g] q
 *       for the group g of 16
 * </pre>
 */
public final class Blocks {
    private Blocks() {}

    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public static float half(MemorySegment s, long off) { return Float.float16ToFloat(s.get(I16, off)); }

    private static int u8(MemorySegment s, long off) { return s.get(ValueLayout.JAVA_BYTE, off) & 0xFF; }

    /** Decodes n elements (whole blocks) of type t from byte {@code off} of s into dst[o..o+n). */
    public static void dequantize(DType t, MemorySegment s, long off, int n, float[] dst, int o) {
        int be = t.blockElems(), bb = t.blockBytes();
        for (int b = 0; b < n / be; b++) block(t, s, off + (long) b * bb, dst, o + b * be);
    }

    /** Element i (flat, counted from byte 0 of s, which starts a block) of a tensor of type t. */
    public static float element(DType t, MemorySegment s, long i) {
        float[] y = new float[t.blockElems()];
        block(t, s, i / t.blockElems() * t.blockBytes(), y, 0);
        return y[(int) (i % t.blockElems())];
    }

    private static void block(DType t, MemorySegment s, long p, float[] y, int o) {
        switch (t) {
            case Q8_0 -> {
                float d = half(s, p);
                for (int j = 0; j < 32; j++) y[o + j] = d * s.get(ValueLayout.JAVA_BYTE, p + 2 + j);
            }
            case Q4_0 -> {
                float d = half(s, p);
                for (int j = 0; j < 16; j++) {
                    int q = u8(s, p + 2 + j);
                    y[o + j] = d * ((q & 15) - 8);
                    y[o + j + 16] = d * ((q >> 4) - 8);
                }
            }
            case Q5_0 -> {
                float d = half(s, p);
                int qh = s.get(I32, p + 2);
                for (int j = 0; j < 16; j++) {
                    int q = u8(s, p + 6 + j);
                    y[o + j] = d * (((q & 15) | ((qh >>> j) & 1) << 4) - 16);
                    y[o + j + 16] = d * (((q >> 4) | ((qh >>> (j + 16)) & 1) << 4) - 16);
                }
            }
            case Q4_K -> {
                float d = half(s, p), dmin = half(s, p + 2);
                long sc = p + 4, qs = p + 16;
                for (int c = 0; c < 4; c++) {
                    float d1 = d * q4kScale(s, sc, 2 * c), m1 = dmin * q4kMin(s, sc, 2 * c);
                    float d2 = d * q4kScale(s, sc, 2 * c + 1), m2 = dmin * q4kMin(s, sc, 2 * c + 1);
                    for (int l = 0; l < 32; l++) {
                        int q = u8(s, qs + 32 * c + l);
                        y[o + 64 * c + l] = d1 * (q & 15) - m1;
                        y[o + 64 * c + 32 + l] = d2 * (q >> 4) - m2;
                    }
                }
            }
            case Q6_K -> {
                float d = half(s, p + 208);
                for (int h = 0; h < 2; h++) {
                    long ql = p + 64 * h, qh = p + 128 + 32 * h, sc = p + 192 + 8 * h;
                    int yo = o + 128 * h;
                    for (int l = 0; l < 32; l++) {
                        int is = l / 16, lo = u8(s, ql + l), hi = u8(s, ql + l + 32), b = u8(s, qh + l);
                        y[yo + l] = d * s.get(ValueLayout.JAVA_BYTE, sc + is) * (((lo & 15) | (b & 3) << 4) - 32);
                        y[yo + l + 32] = d * s.get(ValueLayout.JAVA_BYTE, sc + is + 2) * (((hi & 15) | ((b >> 2) & 3) << 4) - 32);
                        y[yo + l + 64] = d * s.get(ValueLayout.JAVA_BYTE, sc + is + 4) * (((lo >> 4) | ((b >> 4) & 3) << 4) - 32);
                        y[yo + l + 96] = d * s.get(ValueLayout.JAVA_BYTE, sc + is + 6) * (((hi >> 4) | ((b >> 6) & 3) << 4) - 32);
                    }
                }
            }
            default -> throw new IllegalArgumentException(t + " is not a block format");
        }
    }

    /** Group j's 6-bit scale in Q4_K's 12 packed bytes at sc. */
    public static int q4kScale(MemorySegment s, long sc, int j) {
        return j < 4 ? u8(s, sc + j) & 63 : (u8(s, sc + j + 4) & 15) | (u8(s, sc + j - 4) >> 6) << 4;
    }

    /** Group j's 6-bit min in Q4_K's 12 packed bytes at sc. */
    public static int q4kMin(MemorySegment s, long sc, int j) {
        return j < 4 ? u8(s, sc + j + 4) & 63 : (u8(s, sc + j + 4) >> 4) | (u8(s, sc + j) >> 6) << 4;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Quantizers
    // ---------------------------------------------------------------------------------------------------------

    /** x[xo..xo+n) (whole blocks) written as type t at byte {@code off} of dst. */
    public static void quantize(DType t, float[] x, int xo, int n, MemorySegment dst, long off) {
        if (!t.quantized()) throw new IllegalArgumentException(t + " is not a block format");
        int be = t.blockElems(), bb = t.blockBytes();
        if (n % be != 0) throw new IllegalArgumentException(n + " values are not a whole number of " + t + " blocks of " + be);
        byte[] out = new byte[bb];
        for (int b = 0; b < n / be; b++) {
            java.util.Arrays.fill(out, (byte) 0);
            switch (t) {
                case Q8_0 -> q8_0(x, xo + b * be, out);
                case Q4_0 -> q4_0(x, xo + b * be, out);
                case Q5_0 -> q5_0(x, xo + b * be, out);
                case Q4_K -> q4_K(x, xo + b * be, out);
                case Q6_K -> q6_K(x, xo + b * be, out);
                default -> throw new AssertionError(t);
            }
            MemorySegment.copy(out, 0, dst, ValueLayout.JAVA_BYTE, off + (long) b * bb, bb);
        }
    }

    private static void putHalf(byte[] b, int at, float v) {
        short h = Float.floatToFloat16(v);
        b[at] = (byte) h;
        b[at + 1] = (byte) (h >> 8);
    }

    private static float roundTripHalf(float v) { return Float.float16ToFloat(Float.floatToFloat16(v)); }

    /** C's roundf: halves away from zero. */
    private static int roundf(float v) { return (int) (v < 0 ? -Math.floor(-v + 0.5f) : Math.floor(v + 0.5f)); }

    /** ggml's nearest_int: halves to even. */
    private static int nearest(float v) { return (int) Math.rint(v); }

    private static void q8_0(float[] x, int o, byte[] y) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[o + j]));
        float d = amax / 127, id = d != 0 ? 1 / d : 0;
        putHalf(y, 0, d);
        for (int j = 0; j < 32; j++) y[2 + j] = (byte) roundf(x[o + j] * id);
    }

    /** The value of largest magnitude, with its sign (Q4_0/Q5_0 scale by it so that it maps to -8 / -16 exactly). */
    private static float signedMax(float[] x, int o, int n) {
        float amax = 0, max = 0;
        for (int j = 0; j < n; j++) {
            if (Math.abs(x[o + j]) > amax) {
                amax = Math.abs(x[o + j]);
                max = x[o + j];
            }
        }
        return max;
    }

    private static void q4_0(float[] x, int o, byte[] y) {
        float d = signedMax(x, o, 32) / -8, id = d != 0 ? 1 / d : 0;
        putHalf(y, 0, d);
        for (int j = 0; j < 16; j++) {
            int a = Math.min(15, (int) (x[o + j] * id + 8.5f)), b = Math.min(15, (int) (x[o + 16 + j] * id + 8.5f));
            y[2 + j] = (byte) (a | b << 4);
        }
    }

    private static void q5_0(float[] x, int o, byte[] y) {
        float d = signedMax(x, o, 32) / -16, id = d != 0 ? 1 / d : 0;
        putHalf(y, 0, d);
        int qh = 0;
        for (int j = 0; j < 16; j++) {
            int a = Math.min(31, (int) (x[o + j] * id + 16.5f)), b = Math.min(31, (int) (x[o + 16 + j] * id + 16.5f));
            y[6 + j] = (byte) ((a & 15) | (b & 15) << 4);
            qh |= ((a & 16) >> 4) << j | ((b & 16) >> 4) << (j + 16);
        }
        for (int k = 0; k < 4; k++) y[2 + k] = (byte) (qh >>> (8 * k));
    }

    private static void q4_K(float[] x, int o, byte[] y) {
        int[] L = new int[256], aux = new int[32];
        float[] scales = new float[8], mins = new float[8], w = new float[32];
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; j++) {
            float sumX2 = 0;
            for (int l = 0; l < 32; l++) sumX2 += x[o + 32 * j + l] * x[o + 32 * j + l];
            float av = (float) Math.sqrt(sumX2 / 32);
            for (int l = 0; l < 32; l++) w[l] = av + Math.abs(x[o + 32 * j + l]);
            float[] min = new float[1];
            scales[j] = scaleMinSearch(x, o + 32 * j, w, L, 32 * j, min, aux);
            mins[j] = min[0];
            maxScale = Math.max(maxScale, scales[j]);
            maxMin = Math.max(maxMin, mins[j]);
        }
        float invScale = maxScale > 0 ? 63f / maxScale : 0, invMin = maxMin > 0 ? 63f / maxMin : 0;
        for (int j = 0; j < 8; j++) {
            int ls = Math.min(63, nearest(invScale * scales[j])), lm = Math.min(63, nearest(invMin * mins[j]));
            if (j < 4) {
                y[4 + j] = (byte) ls;
                y[4 + j + 4] = (byte) lm;
            } else {
                y[4 + j + 4] = (byte) ((ls & 15) | (lm & 15) << 4);
                y[4 + j - 4] |= (byte) ((ls >> 4) << 6);
                y[4 + j] |= (byte) ((lm >> 4) << 6);
            }
        }
        putHalf(y, 0, maxScale / 63f);
        putHalf(y, 2, maxMin / 63f);
        MemorySegment ys = MemorySegment.ofArray(y);
        float d = roundTripHalf(maxScale / 63f), dmin = roundTripHalf(maxMin / 63f);
        for (int j = 0; j < 8; j++) {
            float dj = d * q4kScale(ys, 4, j);
            if (dj == 0) continue;
            float dm = dmin * q4kMin(ys, 4, j);
            for (int l = 0; l < 32; l++) L[32 * j + l] = Math.max(0, Math.min(15, nearest((x[o + 32 * j + l] + dm) / dj)));
        }
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) y[16 + 32 * c + l] = (byte) (L[64 * c + l] | L[64 * c + 32 + l] << 4);
        }
    }

    /**
     * ggml's make_qkx2_quants for one group of 32 at 4 bits: levels 0..15 with a scale and a min (min <= 0), chosen
     * by a weighted least-squares search over 21 trial scales. Returns the scale; min[0] gets -min.
     */
    private static float scaleMinSearch(float[] x, int o, float[] w, int[] L, int lo, float[] minOut, int[] aux) {
        final int n = 32, nmax = 15;
        float min = x[o], max = x[o], sumW = w[0], sumX = w[0] * x[o];
        for (int i = 1; i < n; i++) {
            min = Math.min(min, x[o + i]);
            max = Math.max(max, x[o + i]);
            sumW += w[i];
            sumX += w[i] * x[o + i];
        }
        if (min > 0) min = 0;
        if (max == min) {
            for (int i = 0; i < n; i++) L[lo + i] = 0;
            minOut[0] = -min;
            return 0;
        }
        float iscale = nmax / (max - min), scale = 1 / iscale, best = 0;
        for (int i = 0; i < n; i++) {
            int l = Math.max(0, Math.min(nmax, nearest(iscale * (x[o + i] - min))));
            L[lo + i] = l;
            float diff = scale * l + min - x[o + i];
            best += w[i] * diff * diff;
        }
        for (int is = 0; is <= 20; is++) {
            iscale = (-1f + 0.1f * is + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; i++) {
                int l = Math.max(0, Math.min(nmax, nearest(iscale * (x[o + i] - min))));
                aux[i] = l;
                sumL += w[i] * l;
                sumL2 += w[i] * l * l;
                sumXL += w[i] * l * x[o + i];
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det > 0) {
                float s = (sumW * sumXL - sumX * sumL) / det, m = (sumL2 * sumX - sumL * sumXL) / det;
                if (m > 0) {
                    m = 0;
                    s = sumXL / sumL2;
                }
                float err = 0;
                for (int i = 0; i < n; i++) {
                    float diff = s * aux[i] + m - x[o + i];
                    err += w[i] * diff * diff;
                }
                if (err < best) {
                    for (int i = 0; i < n; i++) L[lo + i] = aux[i];
                    best = err;
                    scale = s;
                    min = m;
                }
            }
        }
        minOut[0] = -min;
        return scale;
    }

    private static void q6_K(float[] x, int o, byte[] y) {
        int[] L = new int[256];
        float[] scales = new float[16];
        float maxScale = 0, maxAbs = 0;
        for (int g = 0; g < 16; g++) {
            scales[g] = signedScaleSearch(x, o + 16 * g, L, 16 * g);
            if (Math.abs(scales[g]) > maxAbs) {
                maxAbs = Math.abs(scales[g]);
                maxScale = scales[g];
            }
        }
        if (maxAbs < 1e-15f) return; // an all-zero block: every byte 0, d = 0
        float iscale = -128f / maxScale;
        putHalf(y, 208, 1 / iscale);
        for (int g = 0; g < 16; g++) y[192 + g] = (byte) Math.min(127, nearest(iscale * scales[g]));
        float d0 = roundTripHalf(1 / iscale);
        for (int g = 0; g < 16; g++) {
            float d = d0 * y[192 + g];
            if (d == 0) continue;
            for (int i = 0; i < 16; i++) L[16 * g + i] = Math.max(-32, Math.min(31, nearest(x[o + 16 * g + i] / d))) + 32;
        }
        for (int h = 0; h < 2; h++) {
            int j = 128 * h;
            for (int l = 0; l < 32; l++) {
                int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
                y[64 * h + l] = (byte) ((q1 & 15) | (q3 & 15) << 4);
                y[64 * h + l + 32] = (byte) ((q2 & 15) | (q4 & 15) << 4);
                y[128 + 32 * h + l] = (byte) ((q1 >> 4) | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6);
            }
        }
    }

    /**
     * ggml's make_qx_quants for a group of 16 at 6 bits (levels -32..31, weights x^2): the scale that maps the value
     * of largest magnitude to -32, refined over 18 nearby trial scales by least squares. Returns the scale.
     */
    private static float signedScaleSearch(float[] x, int o, int[] L, int lo) {
        final int n = 16, nmax = 32;
        float max = signedMax(x, o, n);
        if (Math.abs(max) < 1e-15f) {
            for (int i = 0; i < n; i++) L[lo + i] = 0;
            return 0;
        }
        float iscale = -nmax / max, sumLX = 0, sumL2 = 0;
        for (int i = 0; i < n; i++) {
            int l = Math.max(-nmax, Math.min(nmax - 1, nearest(iscale * x[o + i])));
            L[lo + i] = l + nmax;
            float w = x[o + i] * x[o + i];
            sumLX += w * x[o + i] * l;
            sumL2 += w * l * l;
        }
        float scale = sumL2 != 0 ? sumLX / sumL2 : 0, best = scale * sumLX;
        for (int is = -9; is <= 9; is++) {
            if (is == 0) continue;
            iscale = -(nmax + 0.1f * is) / max;
            sumLX = 0;
            sumL2 = 0;
            for (int i = 0; i < n; i++) {
                int l = Math.max(-nmax, Math.min(nmax - 1, nearest(iscale * x[o + i])));
                float w = x[o + i] * x[o + i];
                sumLX += w * x[o + i] * l;
                sumL2 += w * l * l;
            }
            if (sumL2 > 0 && sumLX * sumLX > best * sumL2) {
                for (int i = 0; i < n; i++) L[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, nearest(iscale * x[o + i])));
                scale = sumLX / sumL2;
                best = scale * sumLX;
            }
        }
        return scale;
    }
}
