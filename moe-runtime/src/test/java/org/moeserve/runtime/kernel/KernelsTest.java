package org.moeserve.runtime.kernel;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.moeserve.runtime.model.DType;
import org.moeserve.runtime.model.Tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every Vector API kernel against its scalar twin. The two sum in different orders, so they agree to fp32
 * rounding: |vector - scalar| <= 1e-5 * sum|terms| (a sum of n fp32 products loses at most ~n ulp of the
 * magnitude sum; 1e-5 covers n up to thousands with margin). Sizes cover the vector tails (n not a multiple
 * of the lane count or of 4 lanes).
 */
class KernelsTest {
    static final int[] SIZES = {1, 3, 7, 8, 9, 31, 32, 33, 64, 100, 128, 192, 257};
    static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** A (rows, cols) tensor of the dtype holding random values, in little-endian off-heap memory. */
    static Tensor random(DType dt, int rows, int cols, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        MemorySegment seg = java.lang.foreign.Arena.ofAuto().allocate((long) rows * cols * dt.bytes());
        for (long i = 0; i < (long) rows * cols; i++) {
            float v = (float) rnd.nextGaussian();
            switch (dt) {
                case F32 -> seg.set(F32, i * 4, v);
                case BF16 -> seg.set(I16, i * 2, (short) (Float.floatToRawIntBits(v) >>> 16));
                case F16 -> seg.set(I16, i * 2, Float.floatToFloat16(v));
            }
        }
        return new Tensor("w", dt, new int[]{rows, cols}, seg);
    }

    static float[] vec(int n, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) rnd.nextGaussian();
        return x;
    }

    static void close(float want, float got, double magnitude, String what) {
        assertTrue(Math.abs(want - got) <= 1e-5 * Math.max(1, magnitude), what + ": scalar " + want + ", vector " + got);
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "F16", "BF16"}) // block formats: QuantKernelsTest
    void dotMatchesScalarForEveryDtypeAndTail(DType dt) {
        for (int n : SIZES) {
            Tensor w = random(dt, 3, n, n);
            float[] x = vec(n, 100 + n);
            for (int r = 0; r < 3; r++) {
                double mag = 0;
                for (int i = 0; i < n; i++) mag += Math.abs(w.get((long) r * n + i) * x[i]);
                close(Kernels.dotScalar(w, (long) r * n, x, n), Kernels.dot(w, (long) r * n, x, n), mag, dt + " n=" + n);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "F16", "BF16"}) // block formats: QuantKernelsTest
    void matvecAndMatmulMatchScalarOnOneAndTwoThreads(DType dt) {
        try (Parallel two = new Parallel(2)) {
            // 5 rows: one 4x4 tile and a row of four-row kernels; 133 rows at n=512: past one L2 block of inputs
            for (int[] shape : new int[][]{{192, 128, 5}, {258, 64, 5}, {17, 33, 5}, {512, 512, 5}, {130, 512, 133}}) {
                int d = shape[0], n = shape[1], rows = shape[2];
                Tensor w = random(dt, d, n, d * 31L + n);
                float[][] x = new float[rows][];
                for (int r = 0; r < rows; r++) x[r] = vec(n, r * 7L + n);
                float[][] want = new float[rows][d], got1 = new float[rows][d], got2 = new float[rows][d];
                Kernels.matmulScalar(w, x, rows, want);
                Kernels.matmul(w, x, rows, got1, Parallel.SERIAL);
                Kernels.matmul(w, x, rows, got2, two);
                for (int r = 0; r < rows; r++) {
                    for (int j = 0; j < d; j++) close(want[r][j], got1[r][j], n, dt + " matmul " + d + "x" + n);
                    // threads change who computes a row, never how: bit-identical
                    assertArrayEquals(got1[r], got2[r], "1 vs 2 threads");
                    // a row alone (matvec) equals the same row in a batch, bit for bit
                    float[] single = new float[d];
                    Kernels.matvec(w, x[r], single, two);
                    assertArrayEquals(got1[r], single, "matvec vs matmul row " + r);
                    float[] serial = new float[d]; // one thread: two rows far apart at once (BF16), same bits
                    Kernels.matvec(w, x[r], serial, Parallel.SERIAL);
                    assertArrayEquals(got1[r], serial, "one-thread matvec vs matmul row " + r);
                    // and the single-row kernel (edges, router gates) gives the same bits as the tiles
                    for (int j = 0; j < d; j += 7) assertEquals(got1[r][j], Kernels.dot(w, (long) j * n, x[r], n), "dot vs tile");
                }
            }
        }
    }

    /**
     * Several products in one fork ({@link Kernels#matvecs}): its chunks cut across products of every dtype (a BF16
     * matrix past the fork threshold, block formats, F32, F16, odd widths), and each output has the bits the product
     * gets alone on one thread; so does a big matrix alone on two and three threads (fine chunks). Whichever read
     * pattern the pool uses (one, two or four rows at once a thread: {@link ReadPattern}), the bits are the same.
     */
    @Test
    void productsInOneForkGiveEachTheBitsItGetsAlone() {
        try (Parallel one = new Parallel(1); Parallel two = new Parallel(2); Parallel three = new Parallel(3);
             java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofShared()) {
            Tensor big = random(DType.BF16, 1100, 2048, 1);
            Tensor[] w = {random(DType.F32, 33, 70, 2), big, quantized(DType.Q4_K, 64, 512, arena), random(DType.F16, 17, 130, 3),
                    quantized(DType.Q8_0, 40, 256, arena), random(DType.BF16, 5, 7, 4)};
            float[][] x = new float[w.length][], want = new float[w.length][];
            for (int i = 0; i < w.length; i++) {
                x[i] = vec(w[i].cols(), 10 + i);
                want[i] = new float[w[i].rows()];
                Kernels.matvec(w[i], x[i], want[i], Parallel.SERIAL);
            }
            for (int[] run : new int[][]{{1, 1}, {1, 2}, {1, 4}, {2, 1}, {2, 2}, {2, 4}, {3, 1}, {3, 2}, {3, 4}}) {
                Parallel p = run[0] == 1 ? one : run[0] == 2 ? two : three;
                p.reads().pin(run[1]);
                float[][] got = new float[w.length][], seen = new float[w.length][];
                for (int i = 0; i < w.length; i++) got[i] = new float[w[i].rows()];
                java.util.concurrent.atomic.AtomicIntegerArray calls = new java.util.concurrent.atomic.AtomicIntegerArray(w.length);
                // the completion hook: once a product, with its outputs already final when it runs
                Kernels.matvecs(p, w, x, got, i -> {
                    calls.incrementAndGet(i);
                    seen[i] = got[i].clone();
                });
                for (int i = 0; i < w.length; i++) {
                    String what = w[i].dtype() + " product " + i + ", " + p.threads() + " threads, rows at once " + run[1];
                    assertArrayEquals(want[i], got[i], what);
                    assertEquals(1, calls.get(i), "done once: " + what);
                    assertArrayEquals(want[i], seen[i], "done after the last row: " + what);
                }
                float[] alone = new float[big.rows()];
                Kernels.matvec(big, x[1], alone, p);
                assertArrayEquals(want[1], alone, "a big matrix alone, " + p.threads() + " threads, rows at once " + run[1]);
            }
        }
    }

    /**
     * Several queries against one cache ({@link Kernels#dotsMany}, {@link Kernels#axpysMany}: the heads of a latent
     * attention) give each query the bits it gets alone from {@link Kernels#dots} and {@link Kernels#axpys}, at
     * offsets, with a tail of positions past the last four, and for one query as for five.
     */
    @Test
    void queriesSharingACacheGetTheBitsEachGetsAlone() {
        int len = 40, stride = 44, n = 23;
        float[] cache = vec(stride * n, 5);
        for (int g : new int[]{1, 5}) {
            float[][] a = new float[g][], s = new float[g][n], y = new float[g][len];
            int[] at = new int[g];
            for (int i = 0; i < g; i++) {
                a[i] = vec(len + 3 * i, 20 + i);
                at[i] = 3 * i;
                y[i] = vec(len, 40 + i); // axpys adds to what is there
            }
            float[][] y0 = new float[g][];
            for (int i = 0; i < g; i++) y0[i] = y[i].clone();
            Kernels.dotsMany(a, at, cache, 2, stride, len, n - 1, s);
            Kernels.axpysMany(s, cache, 2, stride, len, n - 1, y);
            for (int i = 0; i < g; i++) {
                float[] alone = new float[n];
                Kernels.dots(a[i], at[i], cache, 2, stride, len, n - 1, alone, 0);
                assertArrayEquals(alone, s[i], "scores of query " + i + " of " + g);
                Kernels.axpys(alone, cache, 2, stride, len, n - 1, y0[i], 0);
                assertArrayEquals(y0[i], y[i], "weighted sum of query " + i + " of " + g);
                assertEquals(0f, s[i][n - 1], "nothing past the n positions asked for");
            }
        }
    }

    @Test
    void firstNonFiniteFindsNaNAndInfinityAnywhereAndNothingInFiniteValues() {
        float[] x = vec(1000 + 7, 3);
        x[5] = Float.MAX_VALUE; // finite extremes are finite
        x[6] = -Float.MAX_VALUE;
        assertEquals(-1, Kernels.firstNonFinite(x));
        for (int at : new int[]{0, 17, 999, 1003, 1006}) { // in the vector part and in the tail
            for (float bad : new float[]{Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
                float[] y = x.clone();
                y[at] = bad;
                assertEquals(at, Kernels.firstNonFinite(y), bad + " at " + at);
            }
        }
        assertEquals(-1, Kernels.firstNonFinite(new float[0]));
    }

    private static Tensor quantized(DType t, int rows, int cols, java.lang.foreign.Arena arena) {
        float[] v = vec(rows * cols, rows * 31L + cols);
        MemorySegment seg = arena.allocate(t.byteSize((long) rows * cols), 64);
        org.moeserve.runtime.model.Blocks.quantize(t, v, 0, rows * cols, seg, 0);
        return new Tensor("q", t, new int[]{rows, cols}, seg);
    }

    /**
     * The vector F16 widening is exact for every finite half (normal, subnormal, signed zero): each of the 63,488
     * finite bit patterns, picked out by a one-hot input, comes back as Float.float16ToFloat gives it; and an infinite
     * or NaN weight still makes the product non-finite (a damaged checkpoint must show).
     */
    @Test
    void f16WideningIsExactForEveryFiniteHalfAndKeepsInfinities() {
        int n = 64;
        MemorySegment seg = java.lang.foreign.Arena.ofAuto().allocate((long) n * 2);
        Tensor w = new Tensor("w", DType.F16, new int[]{1, n}, seg);
        java.util.List<Short> finite = new java.util.ArrayList<>();
        for (int h = 0; h < 65536; h++) if ((h & 0x7C00) != 0x7C00) finite.add((short) h);
        float[] x = new float[n];
        for (int base = 0; base < finite.size(); base += n) {
            for (int i = 0; i < n; i++) seg.set(I16, i * 2L, finite.get(Math.min(base + i, finite.size() - 1)));
            for (int i = 0; i < n; i++) {
                java.util.Arrays.fill(x, 0f);
                x[i] = 1f;
                float want = Float.float16ToFloat(seg.get(I16, i * 2L));
                float got = Kernels.dot(w, 0, x, n);
                assertEquals(Float.floatToIntBits(want == 0 ? 0f : want), Float.floatToIntBits(got == 0 ? 0f : got),
                        "half 0x" + Integer.toHexString(seg.get(I16, i * 2L) & 0xffff));
            }
        }
        java.util.Arrays.fill(x, 1f);
        for (int i = 0; i < n; i++) seg.set(I16, i * 2L, Float.floatToFloat16(0.5f));
        seg.set(I16, 6, (short) 0x7C00); // +inf at element 3 (an odd lane)
        assertEquals(Float.POSITIVE_INFINITY, Kernels.dot(w, 0, x, n));
        seg.set(I16, 6, Float.floatToFloat16(0.5f));
        seg.set(I16, 8, (short) 0xFE00); // NaN at element 4 (an even lane)
        assertTrue(Float.isNaN(Kernels.dot(w, 0, x, n)));
    }

    @Test
    void floatArrayDotAxpyRmsnormSwigluMatchScalar() {
        for (int n : SIZES) {
            float[] a = vec(n + 5, n), b = vec(n + 9, n + 1), w = vec(n, n + 2);
            double mag = 0;
            for (int i = 0; i < n; i++) mag += Math.abs(a[i + 2] * b[i + 4]);
            close(Kernels.dotScalar(a, 2, b, 4, n), Kernels.dot(a, 2, b, 4, n), mag, "dot n=" + n);

            float[] y1 = b.clone(), y2 = b.clone();
            Kernels.axpy(0.37f, a, 1, y1, 3, n);
            Kernels.axpyScalar(0.37f, a, 1, y2, 3, n);
            for (int i = 0; i < y1.length; i++) close(y2[i], y1[i], Math.abs(b[i]) + 1, "axpy n=" + n);

            float[] o1 = new float[n + 5], o2 = new float[n + 5];
            Kernels.rmsnorm(o1, a, 5, w, n, 1e-5f);
            Kernels.rmsnormScalar(o2, a, 5, w, n, 1e-5f);
            for (int i = 0; i < o1.length; i++) close(o2[i], o1[i], 10, "rmsnorm n=" + n);

            float[] g1 = Arrays.copyOf(a, n), g2 = Arrays.copyOf(a, n);
            Kernels.swiglu(g1, b, n);
            Kernels.swigluScalar(g2, b, n);
            for (int i = 0; i < n; i++) close(g2[i], g1[i], Math.abs(a[i] * b[i]) + 1, "swiglu n=" + n);
        }
    }

    @Test
    void fourPositionTilesGiveTheBitsOfOnePositionAtATime() {
        for (int n : SIZES) {
            int stride = n + 3;
            float[] a = vec(n + 5, n), b = vec(4 * stride + 7, n + 1), got = new float[6];
            Kernels.dot4(a, 5, b, 7, stride, n, got, 2);
            for (int i = 0; i < 4; i++) {
                assertEquals(Float.floatToRawIntBits(Kernels.dot(a, 5, b, 7 + i * stride, n)), Float.floatToRawIntBits(got[2 + i]), "dot n=" + n + " position " + i);
            }
            float[] p = vec(6, n + 2), y1 = vec(n + 2, n + 3), y2 = y1.clone();
            for (int i = 0; i < 4; i++) Kernels.axpy(p[1 + i], b, 7 + i * stride, y1, 2, n);
            Kernels.axpy4(p, 1, b, 7, stride, y2, 2, n);
            for (int j = 0; j < y1.length; j++) {
                assertEquals(Float.floatToRawIntBits(y1[j]), Float.floatToRawIntBits(y2[j]), "axpy n=" + n + " element " + j);
            }
        }
    }

    @Test
    void theTransposedProductIsTheTransposeForEveryWidthAndDtype() {
        for (DType dt : new DType[]{DType.BF16, DType.F16, DType.F32}) {
            for (int rows : new int[]{1, 16, 128}) {
                for (int cols : SIZES) {
                    Tensor w = random(dt, rows, cols, rows * 1000L + cols);
                    float[] x = vec(rows, cols), out = new float[cols];
                    Arrays.fill(out, Float.NaN); // every output written, none accumulated onto what was there
                    Kernels.matvecTransposed(w, x, out);
                    for (int j = 0; j < cols; j++) {
                        double want = 0;
                        for (int i = 0; i < rows; i++) want += (double) x[i] * w.get((long) i * cols + j);
                        assertEquals(want, out[j], 1e-4 * Math.max(1, Math.abs(want)), dt + " " + rows + "x" + cols + " [" + j + "]");
                    }
                }
            }
        }
    }

    @Test
    void rmsnormHasUnitRootMeanSquareWithUnitWeights() {
        float[] x = vec(128, 5), ones = new float[128], out = new float[128];
        Arrays.fill(ones, 1f);
        Kernels.rmsnorm(out, x, 0, ones, 128, 0f);
        double ss = 0;
        for (float v : out) ss += v * v;
        assertEquals(1.0, Math.sqrt(ss / 128), 1e-5);
    }

    @Test
    void softmaxSumsToOneAndTopKMatchesSorting() {
        SplittableRandom rnd = new SplittableRandom(3);
        for (int trial = 0; trial < 200; trial++) {
            int n = 2 + rnd.nextInt(64), k = 1 + rnd.nextInt(Math.min(n, 8));
            float[] p = vec(n, trial);
            if (trial % 5 == 0) p[rnd.nextInt(n)] = p[0]; // a tie now and then
            Kernels.softmax(p, 0, n);
            double sum = 0;
            for (float v : p) sum += v;
            assertEquals(1.0, sum, 1e-5);
            int[] idx = new int[k];
            float[] val = new float[k];
            Kernels.topK(p, n, k, idx, val);
            Integer[] order = new Integer[n];
            for (int i = 0; i < n; i++) order[i] = i;
            Arrays.sort(order, (a, b) -> p[a] != p[b] ? Float.compare(p[b], p[a]) : Integer.compare(a, b));
            for (int j = 0; j < k; j++) {
                assertEquals(order[j], idx[j], "top-" + k + " rank " + j);
                assertEquals(p[order[j]], val[j]);
            }
        }
    }

    @Test
    void ropeRotatesHalvesAndKeepsNorms() {
        int hd = 32, half = 16;
        float[] x = vec(hd, 9), orig = x.clone();
        float[] cos = new float[half], sin = new float[half];
        double theta = 10000, pos = 7;
        for (int i = 0; i < half; i++) {
            double a = pos / Math.pow(theta, 2.0 * i / hd);
            cos[i] = (float) Math.cos(a);
            sin[i] = (float) Math.sin(a);
        }
        Kernels.rope(x, 0, hd, cos, sin);
        for (int i = 0; i < half; i++) {
            // HF rotate_half: x*cos + rotate_half(x)*sin, rotate_half(x) = (-x2, x1)
            assertEquals(orig[i] * cos[i] - orig[i + half] * sin[i], x[i], 1e-6);
            assertEquals(orig[i + half] * cos[i] + orig[i] * sin[i], x[i + half], 1e-6);
            double n0 = Math.hypot(orig[i], orig[i + half]), n1 = Math.hypot(x[i], x[i + half]);
            assertEquals(n0, n1, 1e-5);
        }
    }

    @Test
    void groupedQueryAttentionMatchesScalar() {
        int hd = 24, kvHeads = 2, kvDim = kvHeads * hd;
        for (int n : new int[]{1, 2, 17, 256}) {
            float[] kc = vec(n * kvDim, n), vc = vec(n * kvDim, n + 1), q = vec(4 * hd, n + 2);
            for (int head = 0; head < 4; head++) {
                int kvOff = (head / 2) * hd; // 4 query heads share 2 KV heads
                float[] got = new float[4 * hd], want = new float[4 * hd];
                Kernels.attention(q, head * hd, kc, vc, kvDim, kvOff, n, hd, 0.2f, new float[n], got, head * hd);
                Kernels.attentionScalar(q, head * hd, kc, vc, kvDim, kvOff, n, hd, 0.2f, want, head * hd);
                for (int i = 0; i < hd; i++) close(want[head * hd + i], got[head * hd + i], 4, "n=" + n + " head " + head);
            }
        }
        // one position: the output is exactly that position's value vector
        float[] kc = vec(hd, 1), vc = vec(hd, 2), q = vec(hd, 3), out = new float[hd];
        Kernels.attention(q, 0, kc, vc, hd, 0, 1, hd, 1f, new float[1], out, 0);
        assertArrayEquals(vc, out);
    }
}
