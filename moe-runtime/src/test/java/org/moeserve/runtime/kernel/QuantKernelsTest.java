package org.moeserve.runtime.kernel;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.moeserve.runtime.model.Blocks;
import org.moeserve.runtime.model.DType;
import org.moeserve.runtime.model.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * llama.cpp's block formats: hand-built blocks decode to the values the layout defines, the quantizers round-trip
 * within each format's error, and every vector kernel matches its scalar twin.
 */
class QuantKernelsTest {
    static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    static MemorySegment bytes(int n) { return MemorySegment.ofArray(new byte[n]); }

    static float[] decode(DType t, MemorySegment s, int n) {
        float[] y = new float[n];
        Blocks.dequantize(t, s, 0, n, y, 0);
        return y;
    }

    @Test
    void handBuiltBlocksDecodeAsTheLayoutsSay() {
        // Q8_0: d = 0.5, q[j] = j - 16
        MemorySegment q8 = bytes(34);
        q8.set(I16, 0, Float.floatToFloat16(0.5f));
        for (int j = 0; j < 32; j++) q8.set(ValueLayout.JAVA_BYTE, 2 + j, (byte) (j - 16));
        float[] y = decode(DType.Q8_0, q8, 32);
        for (int j = 0; j < 32; j++) assertEquals(0.5f * (j - 16), y[j]);

        // Q4_0: d = 2, qs[j] = low j, high 15 - j: x[j] = 2 (j - 8), x[j + 16] = 2 (7 - j)
        MemorySegment q4 = bytes(18);
        q4.set(I16, 0, Float.floatToFloat16(2f));
        for (int j = 0; j < 16; j++) q4.set(ValueLayout.JAVA_BYTE, 2 + j, (byte) (j | (15 - j) << 4));
        y = decode(DType.Q4_0, q4, 32);
        for (int j = 0; j < 16; j++) {
            assertEquals(2f * (j - 8), y[j]);
            assertEquals(2f * (7 - j), y[j + 16]);
        }

        // Q5_0: d = 1, low nibbles 3, the fifth bit set for even j (qh bit j) and for j + 16 when j is odd
        MemorySegment q5 = bytes(22);
        q5.set(I16, 0, Float.floatToFloat16(1f));
        int qh = 0;
        for (int j = 0; j < 16; j++) qh |= (j % 2 == 0 ? 1 << j : 0) | (j % 2 == 1 ? 1 << (j + 16) : 0);
        q5.set(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 2, qh);
        for (int j = 0; j < 16; j++) q5.set(ValueLayout.JAVA_BYTE, 6 + j, (byte) (3 | 3 << 4));
        y = decode(DType.Q5_0, q5, 32);
        for (int j = 0; j < 16; j++) {
            assertEquals(j % 2 == 0 ? 19 - 16 : 3 - 16, y[j]);
            assertEquals(j % 2 == 1 ? 19 - 16 : 3 - 16, y[j + 16]);
        }

        // Q4_K: d = 1, dmin = 0.5; group g has scale g + 1 and min 2g (groups 4..7 use the packed high bits: scale 40 + g)
        MemorySegment k4 = bytes(144);
        k4.set(I16, 0, Float.floatToFloat16(1f));
        k4.set(I16, 2, Float.floatToFloat16(0.5f));
        int[] sc = new int[8], mn = new int[8];
        for (int g = 0; g < 8; g++) {
            sc[g] = g < 4 ? g + 1 : 40 + g;
            mn[g] = 2 * g;
        }
        byte[] packed = new byte[12];
        for (int g = 0; g < 4; g++) {
            packed[g] = (byte) (sc[g] | (sc[g + 4] >> 4) << 6);
            packed[g + 4] = (byte) (mn[g] | (mn[g + 4] >> 4) << 6);
            packed[g + 8] = (byte) ((sc[g + 4] & 15) | (mn[g + 4] & 15) << 4);
        }
        MemorySegment.copy(packed, 0, k4, ValueLayout.JAVA_BYTE, 4, 12);
        for (int l = 0; l < 128; l++) k4.set(ValueLayout.JAVA_BYTE, 16 + l, (byte) ((l % 16) | ((l + 5) % 16) << 4));
        y = decode(DType.Q4_K, k4, 256);
        for (int g = 0; g < 8; g++) {
            assertEquals(sc[g], Blocks.q4kScale(k4, 4, g));
            assertEquals(mn[g], Blocks.q4kMin(k4, 4, g));
            for (int l = 0; l < 32; l++) {
                int byteIndex = 32 * (g / 2) + l, q = g % 2 == 0 ? byteIndex % 16 : (byteIndex + 5) % 16;
                assertEquals(sc[g] * q - 0.5f * mn[g], y[32 * g + l], 1e-6f, "Q4_K group " + g + " element " + l);
            }
        }

        // Q6_K: d = 0.25, scales[g] = g - 8; value q = (element index * 7) % 64 - 32 packed into ql/qh
        MemorySegment k6 = bytes(210);
        k6.set(I16, 208, Float.floatToFloat16(0.25f));
        for (int g = 0; g < 16; g++) k6.set(ValueLayout.JAVA_BYTE, 192 + g, (byte) (g - 8));
        int[] q = new int[256];
        for (int i = 0; i < 256; i++) q[i] = (i * 7) % 64;
        for (int h = 0; h < 2; h++) {
            for (int l = 0; l < 32; l++) {
                int b = 128 * h;
                k6.set(ValueLayout.JAVA_BYTE, 64 * h + l, (byte) ((q[b + l] & 15) | (q[b + l + 64] & 15) << 4));
                k6.set(ValueLayout.JAVA_BYTE, 64 * h + l + 32, (byte) ((q[b + l + 32] & 15) | (q[b + l + 96] & 15) << 4));
                k6.set(ValueLayout.JAVA_BYTE, 128 + 32 * h + l, (byte) ((q[b + l] >> 4) | (q[b + l + 32] >> 4) << 2
                        | (q[b + l + 64] >> 4) << 4 | (q[b + l + 96] >> 4) << 6));
            }
        }
        y = decode(DType.Q6_K, k6, 256);
        for (int i = 0; i < 256; i++) assertEquals(0.25f * (i / 16 - 8) * (q[i] - 32), y[i], "Q6_K element " + i);
    }

    static float[] gaussian(long seed, int n) {
        Random r = new Random(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (r.nextGaussian() * 0.02);
        return x;
    }

    /** Relative RMS error of each quantizer on Gaussian weights (what a trained matrix roughly looks like). */
    @ParameterizedTest(name = "{0}")
    @EnumSource(value = DType.class, names = {"Q8_0", "Q4_0", "Q5_0", "Q4_K", "Q6_K"})
    void quantizersRoundTripWithinTheirFormatsError(DType t) {
        int n = 4096;
        float[] x = gaussian(7, n);
        x[100] = 0.5f; // an outlier: its block's scale grows, the other blocks do not care
        MemorySegment s = bytes((int) t.byteSize(n));
        Blocks.quantize(t, x, 0, n, s, 0);
        float[] y = decode(t, s, n);
        double err = 0, ref = 0;
        for (int i = 0; i < n; i++) {
            err += (x[i] - y[i]) * (x[i] - y[i]);
            ref += x[i] * x[i];
        }
        double rel = Math.sqrt(err / ref);
        // ggml's reference quantizers on Gaussian data: about 0.4% (8 bits), 8-10% (4 bits), 4-5% (5 bits), 2% (6 bits)
        double bound = switch (t) { case Q8_0 -> 0.008; case Q4_0 -> 0.13; case Q5_0 -> 0.065; case Q4_K -> 0.11; case Q6_K -> 0.03; default -> 0; };
        assertTrue(rel < bound, t + ": relative RMS error " + rel + " >= " + bound);
        assertEquals(0.5f, y[100], 0.5f * (t == DType.Q8_0 ? 0.005f : 0.07f), t + " keeps the outlier");
        float[] zeros = new float[t.blockElems()];
        MemorySegment z = bytes(t.blockBytes());
        Blocks.quantize(t, zeros, 0, zeros.length, z, 0);
        assertArrayEquals(zeros, decode(t, z, zeros.length), 0f, t + ": an all-zero block stays zero");
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(value = DType.class, names = {"Q8_0", "Q4_0", "Q5_0", "Q4_K", "Q6_K"})
    void vectorKernelsMatchTheirScalarTwins(DType t) {
        try (Arena arena = Arena.ofShared(); Parallel par = new Parallel(2)) {
            for (int n : new int[]{256, 768, 2048}) {
                int d = 37;
                float[] w = gaussian(n, d * n), x = gaussian(n + 1, n);
                for (int i = 0; i < n; i++) x[i] *= 50; // activations of order 1
                MemorySegment seg = arena.allocate(t.byteSize((long) d * n), 64);
                Blocks.quantize(t, w, 0, d * n, seg, 0);
                Tensor wt = new Tensor("w", t, new int[]{d, n}, seg);
                float[] got = new float[d], want = new float[d];
                Kernels.matvec(wt, x, got, par);
                Kernels.matvecScalar(wt, x, want);
                float[] row = new float[n];
                for (int r = 0; r < d; r++) {
                    wt.row(r, row);
                    double mag = 0;
                    for (int i = 0; i < n; i++) mag += Math.abs(row[i] * x[i]);
                    assertEquals(want[r], got[r], 1e-5 * mag + 1e-7, t + " n=" + n + " row " + r);
                    assertEquals(Kernels.dot(wt, (long) r * n, x, n), got[r], 0f, "dot and matvec agree to the bit");
                }
                // a batch (four-input tiles and a remainder) gives each input the bits it gets alone
                float[][] xs = {x, gaussian(3, n), gaussian(4, n), gaussian(5, n), gaussian(6, n)}, outs = new float[5][d];
                Kernels.matmul(wt, xs, 5, outs, par);
                for (int i = 0; i < 5; i++) {
                    float[] alone = new float[d];
                    Kernels.matvec(wt, xs[i], alone, par);
                    assertArrayEquals(alone, outs[i], 0f, t + ": input " + i + " of a batch of 5 has its decode bits");
                }
            }
        }
    }

    /**
     * The word kernels take a super-block's values in an order of their own and x is reordered to match: a one-hot x
     * at any element must give exactly that element's decoded value, in both formats and at this vector length.
     */
    @ParameterizedTest(name = "{0}")
    @EnumSource(value = DType.class, names = {"Q4_K", "Q6_K"})
    void reorderedInputsPickEachElementOnce(DType t) {
        int n = 512;
        float[] w = gaussian(11, n);
        MemorySegment seg = bytes((int) t.byteSize(n));
        Blocks.quantize(t, w, 0, n, seg, 0);
        Tensor wt = new Tensor("w", t, new int[]{1, n}, seg);
        float[] want = decode(t, seg, n), x = new float[n];
        for (int e = 0; e < n; e++) {
            x[e] = 1;
            assertEquals(want[e], Kernels.dot(wt, 0, x, n), 1e-6f * Math.max(1, Math.abs(want[e])) + 1e-7f, t + " element " + e);
            x[e] = 0;
        }
        float[] seq = new float[n];
        for (int i = 0; i < n; i++) seq[i] = i;
        float[] order = QuantKernels.kernelInput(t, seq, n);
        boolean[] seen = new boolean[n];
        for (float v : order) {
            assertTrue(!seen[(int) v], t + ": element " + (int) v + " taken twice");
            seen[(int) v] = true;
        }
    }
}
