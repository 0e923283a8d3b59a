package org.moeserve.runtime.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import org.moeserve.runtime.model.DType;
import org.moeserve.runtime.model.Tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The hot math of the forward pass, as in llama2.c's run.c: one function per kind of math, each over arrays or
 * {@link MemorySegment}s, static and allocation-free. Every Vector API kernel has a scalar twin named
 * {@code ...Scalar} beside it; tests hold each pair to a stated tolerance. Weights are BF16, F16 or F32 in
 * little-endian memory (a slice of the mmap'd checkpoint); activations are fp32 heap arrays.
 *
 * <p>Determinism: every kernel reduces in an order fixed by the vector length alone, never by the batch size
 * or the thread count, so a token's result is bit-identical whether it runs alone or in a batch. Two Vector API
 * operations are avoided for this reason: {@code reduceLanes(ADD)} and {@code lanewise(EXP)} give results that
 * differ in the last bit between the interpreter's fallback and C2's intrinsic, so the same token would change
 * as the code warms up. Lanes are summed in lane order ({@link #sum}) and exp is {@link Math#exp}, which runs
 * the same stub at every tier.
 */
public final class Kernels {
    private Kernels() {}

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    static final int L = F.length();
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);

    /** Minimum multiply-adds per parallel chunk: below this a fork costs more than it saves. */
    static final int GRAIN_MACS = 1 << 15;

    // ---------------------------------------------------------------------------------------------------------
    // Dot products: one row of a weight matrix against an fp32 vector
    // ---------------------------------------------------------------------------------------------------------

    /** sum_i W[row, i] * x[i] for a row of n elements starting at element {@code rowStart} of {@code w}. */
    public static float dot(Tensor w, long rowStart, float[] x, int n) {
        return switch (w.dtype()) {
            case F32 -> dotF32(w.data(), rowStart * 4, x, n);
            case BF16 -> {
                float[] xe = new float[n / 2], xo = new float[n / 2];
                deinterleave(x, n, xe, xo);
                yield dotBf16(w.data(), rowStart * 2, xe, xo, x, n);
            }
            case F16 -> dotF16(w.data(), rowStart * 2, x, n);
        };
    }

    /** x ready for rows of w: split into even/odd halves for BF16, as it is otherwise. */
    private record Operand(float[] x, float[] xe, float[] xo) {
        static Operand of(Tensor w, float[] x, int n) {
            if (w.dtype() != DType.BF16) return new Operand(x, null, null);
            float[] xe = new float[n / 2], xo = new float[n / 2];
            deinterleave(x, n, xe, xo);
            return new Operand(x, xe, xo);
        }

        float dot(Tensor w, long rowStart, int n) {
            return switch (w.dtype()) {
                case F32 -> dotF32(w.data(), rowStart * 4, x, n);
                case BF16 -> dotBf16(w.data(), rowStart * 2, xe, xo, x, n);
                case F16 -> dotF16(w.data(), rowStart * 2, x, n);
            };
        }
    }

    public static float dotScalar(Tensor w, long rowStart, float[] x, int n) {
        float s = 0;
        for (int i = 0; i < n; i++) s += w.get(rowStart + i) * x[i];
        return s;
    }

    static float dotF32(MemorySegment w, long off, float[] x, int n) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        int i = 0;
        for (int up = n - n % (4 * L); i < up; i += 4 * L) {
            long o = off + (long) i * 4;
            a0 = FloatVector.fromMemorySegment(F, w, o, LE).fma(FloatVector.fromArray(F, x, i), a0);
            a1 = FloatVector.fromMemorySegment(F, w, o + 4L * L, LE).fma(FloatVector.fromArray(F, x, i + L), a1);
            a2 = FloatVector.fromMemorySegment(F, w, o + 8L * L, LE).fma(FloatVector.fromArray(F, x, i + 2 * L), a2);
            a3 = FloatVector.fromMemorySegment(F, w, o + 12L * L, LE).fma(FloatVector.fromArray(F, x, i + 3 * L), a3);
        }
        for (int up = n - n % L; i < up; i += L) {
            a0 = FloatVector.fromMemorySegment(F, w, off + (long) i * 4, LE).fma(FloatVector.fromArray(F, x, i), a0);
        }
        float s = sum(a0.add(a1).add(a2.add(a3)));
        for (; i < n; i++) s += w.get(F32, off + (long) i * 4) * x[i];
        return s;
    }

    /**
     * BF16 is the top half of an fp32. Read as little-endian 32-bit ints, each int holds a pair of weights:
     * {@code int << 16} is the even element and {@code int & 0xFFFF0000} the odd one, both exact fp32, with no
     * cross-lane shuffles. So the BF16 kernel multiplies by x split into its even and odd elements
     * ({@link #deinterleave}), which is done once per input vector, not once per row.
     */
    static float dotBf16(MemorySegment w, long off, float[] xe, float[] xo, float[] x, int n) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        int pairs = n / 2, j = 0;
        for (int up = pairs - pairs % (2 * L); j < up; j += 2 * L) {
            long o = off + (long) j * 4;
            IntVector v0 = IntVector.fromMemorySegment(I, w, o, LE);
            IntVector v1 = IntVector.fromMemorySegment(I, w, o + 4L * L, LE);
            a0 = v0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F, xe, j), a0);
            a1 = v0.and(0xFFFF0000).reinterpretAsFloats().fma(FloatVector.fromArray(F, xo, j), a1);
            a2 = v1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F, xe, j + L), a2);
            a3 = v1.and(0xFFFF0000).reinterpretAsFloats().fma(FloatVector.fromArray(F, xo, j + L), a3);
        }
        for (int up = pairs - pairs % L; j < up; j += L) {
            IntVector v0 = IntVector.fromMemorySegment(I, w, off + (long) j * 4, LE);
            a0 = v0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F, xe, j), a0);
            a1 = v0.and(0xFFFF0000).reinterpretAsFloats().fma(FloatVector.fromArray(F, xo, j), a1);
        }
        float s = sum(a0.add(a1).add(a2.add(a3)));
        for (; j < pairs; j++) s += bf16At(w, off, 2 * j) * xe[j] + bf16At(w, off, 2 * j + 1) * xo[j];
        if ((n & 1) == 1) s += bf16At(w, off, n - 1) * x[n - 1];
        return s;
    }

    /**
     * Two BF16 rows in one pass: two streams from memory keep more cache lines in flight and each x load serves
     * both rows. Each row accumulates exactly as {@link #dotBf16} does, so the results are bit-identical to two
     * single-row calls.
     */
    static void dotBf16x2(MemorySegment w, long offA, long offB, float[] xe, float[] xo, float[] x, int n,
                          float[] out, int j0) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        int pairs = n / 2, j = 0;
        for (int up = pairs - pairs % (2 * L); j < up; j += 2 * L) {
            FloatVector e0 = FloatVector.fromArray(F, xe, j), o0 = FloatVector.fromArray(F, xo, j);
            FloatVector e1 = FloatVector.fromArray(F, xe, j + L), o1 = FloatVector.fromArray(F, xo, j + L);
            IntVector v0 = IntVector.fromMemorySegment(I, w, offA + (long) j * 4, LE);
            IntVector v1 = IntVector.fromMemorySegment(I, w, offA + (long) j * 4 + 4L * L, LE);
            IntVector u0 = IntVector.fromMemorySegment(I, w, offB + (long) j * 4, LE);
            IntVector u1 = IntVector.fromMemorySegment(I, w, offB + (long) j * 4 + 4L * L, LE);
            a0 = v0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(e0, a0);
            a1 = v0.and(0xFFFF0000).reinterpretAsFloats().fma(o0, a1);
            a2 = v1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(e1, a2);
            a3 = v1.and(0xFFFF0000).reinterpretAsFloats().fma(o1, a3);
            b0 = u0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(e0, b0);
            b1 = u0.and(0xFFFF0000).reinterpretAsFloats().fma(o0, b1);
            b2 = u1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(e1, b2);
            b3 = u1.and(0xFFFF0000).reinterpretAsFloats().fma(o1, b3);
        }
        if (j < pairs) { // a tail: finish each row with the single-row code path for identical rounding
            out[j0] = dotBf16(w, offA, xe, xo, x, n);
            out[j0 + 1] = dotBf16(w, offB, xe, xo, x, n);
            return;
        }
        float sa = sum(a0.add(a1).add(a2.add(a3))), sb = sum(b0.add(b1).add(b2.add(b3)));
        if ((n & 1) == 1) {
            sa += bf16At(w, offA, n - 1) * x[n - 1];
            sb += bf16At(w, offB, n - 1) * x[n - 1];
        }
        out[j0] = sa;
        out[j0 + 1] = sb;
    }

    private static float bf16At(MemorySegment w, long off, int i) {
        return Float.intBitsToFloat((w.get(I16, off + (long) i * 2) & 0xffff) << 16);
    }

    /** xe[i] = x[2i], xo[i] = x[2i+1] for i < n/2: the operand layout of the BF16 kernel. */
    static void deinterleave(float[] x, int n, float[] xe, float[] xo) {
        for (int i = 0; i < n / 2; i++) {
            xe[i] = x[2 * i];
            xo[i] = x[2 * i + 1];
        }
    }

    /**
     * F16 rows: the Vector API has no half-float widening we can rely on here, so the row is widened with
     * {@link Float#float16ToFloat} (an intrinsic, VCVTPH2PS) in blocks of 4L and multiplied by vectors.
     */
    static float dotF16(MemorySegment w, long off, float[] x, int n) {
        float[] buf = new float[4 * L]; // escape analysis keeps this off the heap in the compiled loop
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        int i = 0;
        for (int up = n - n % (4 * L); i < up; i += 4 * L) {
            for (int j = 0; j < 4 * L; j++) buf[j] = Float.float16ToFloat(w.get(I16, off + (long) (i + j) * 2));
            a0 = FloatVector.fromArray(F, buf, 0).fma(FloatVector.fromArray(F, x, i), a0);
            a1 = FloatVector.fromArray(F, buf, L).fma(FloatVector.fromArray(F, x, i + L), a1);
            a2 = FloatVector.fromArray(F, buf, 2 * L).fma(FloatVector.fromArray(F, x, i + 2 * L), a2);
            a3 = FloatVector.fromArray(F, buf, 3 * L).fma(FloatVector.fromArray(F, x, i + 3 * L), a3);
        }
        float s = sum(a0.add(a1).add(a2.add(a3)));
        for (; i < n; i++) s += Float.float16ToFloat(w.get(I16, off + (long) i * 2)) * x[i];
        return s;
    }

    /** The lanes of v added in lane order: the same bits in the interpreter and in compiled code. */
    static float sum(FloatVector v) {
        float s = 0;
        for (int i = 0; i < L; i++) s += v.lane(i);
        return s;
    }

    /** sum_i a[ao+i] * b[bo+i] over fp32 arrays (attention scores). */
    public static float dot(float[] a, int ao, float[] b, int bo, int n) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        for (int up = n - n % L; i < up; i += L) {
            acc = FloatVector.fromArray(F, a, ao + i).fma(FloatVector.fromArray(F, b, bo + i), acc);
        }
        float s = sum(acc);
        for (; i < n; i++) s += a[ao + i] * b[bo + i];
        return s;
    }

    public static float dotScalar(float[] a, int ao, float[] b, int bo, int n) {
        float s = 0;
        for (int i = 0; i < n; i++) s += a[ao + i] * b[bo + i];
        return s;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Matrix products
    // ---------------------------------------------------------------------------------------------------------

    /**
     * W (d,n) @ x (n,) -> out (d,): the decode-time product, bound by the bandwidth of reading W.
     * Rows of W are split over the pool's threads.
     */
    public static void matvec(Tensor w, float[] x, float[] out, Parallel par) {
        int d = w.rows(), n = w.cols();
        Operand op = Operand.of(w, x, n);
        par.forRange(d, Math.max(1, GRAIN_MACS / n), (lo, hi) -> {
            int j = lo;
            if (w.dtype() == DType.BF16) {
                for (; j + 1 < hi; j += 2) {
                    dotBf16x2(w.data(), (long) j * n * 2, (long) (j + 1) * n * 2, op.xe(), op.xo(), x, n, out, j);
                }
            }
            for (; j < hi; j++) out[j] = op.dot(w, (long) j * n, n);
        });
    }

    public static void matvecScalar(Tensor w, float[] x, float[] out) {
        int d = w.rows(), n = w.cols();
        for (int j = 0; j < d; j++) out[j] = dotScalar(w, (long) j * n, x, n);
    }

    /**
     * W (d,n) @ x[r] (n,) -> out[r] (d,) for r in [0, rows): a small matrix-matrix product (prefill, batched
     * decode, an expert's group of tokens). Each row of W is read once from memory and then stays in L1 while
     * every input row uses it; rows of W are split over the pool's threads.
     */
    public static void matmul(Tensor w, float[][] x, int rows, float[][] out, Parallel par) {
        int d = w.rows(), n = w.cols();
        if (rows == 1) {
            matvec(w, x[0], out[0], par);
            return;
        }
        Operand[] ops = new Operand[rows];
        for (int r = 0; r < rows; r++) ops[r] = Operand.of(w, x[r], n);
        par.forRange(d, Math.max(1, GRAIN_MACS / (n * rows)), (lo, hi) -> {
            for (int j = lo; j < hi; j++) {
                long start = (long) j * n;
                for (int r = 0; r < rows; r++) out[r][j] = ops[r].dot(w, start, n);
            }
        });
    }

    public static void matmulScalar(Tensor w, float[][] x, int rows, float[][] out) {
        for (int r = 0; r < rows; r++) matvecScalar(w, x[r], out[r]);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Element-wise and normalisation
    // ---------------------------------------------------------------------------------------------------------

    /** out[o..o+n) = x[o..o+n) / sqrt(mean(x^2) + eps) * w[0..n) (HF's RMSNorm in fp32). out may be x. */
    public static void rmsnorm(float[] out, float[] x, int o, float[] w, int n, float eps) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        for (int up = n - n % L; i < up; i += L) {
            FloatVector v = FloatVector.fromArray(F, x, o + i);
            acc = v.fma(v, acc);
        }
        float ss = sum(acc);
        for (; i < n; i++) ss += x[o + i] * x[o + i];
        float inv = (float) (1.0 / Math.sqrt(ss / n + eps));
        i = 0;
        for (int up = n - n % L; i < up; i += L) {
            FloatVector.fromArray(F, x, o + i).mul(inv).mul(FloatVector.fromArray(F, w, i)).intoArray(out, o + i);
        }
        for (; i < n; i++) out[o + i] = x[o + i] * inv * w[i];
    }

    public static void rmsnormScalar(float[] out, float[] x, int o, float[] w, int n, float eps) {
        float ss = 0;
        for (int i = 0; i < n; i++) ss += x[o + i] * x[o + i];
        float inv = (float) (1.0 / Math.sqrt(ss / n + eps));
        for (int i = 0; i < n; i++) out[o + i] = x[o + i] * inv * w[i];
    }

    /** y[yo..yo+n) += a * x[xo..xo+n). */
    public static void axpy(float a, float[] x, int xo, float[] y, int yo, int n) {
        int i = 0;
        for (int up = n - n % L; i < up; i += L) {
            FloatVector.fromArray(F, x, xo + i).fma(FloatVector.broadcast(F, a), FloatVector.fromArray(F, y, yo + i)).intoArray(y, yo + i);
        }
        for (; i < n; i++) y[yo + i] += a * x[xo + i];
    }

    public static void axpyScalar(float a, float[] x, int xo, float[] y, int yo, int n) {
        for (int i = 0; i < n; i++) y[yo + i] += a * x[xo + i];
    }

    /**
     * gate[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + e^-g): SwiGLU's activation. The sigmoid is scalar
     * (Math.exp, for determinism, see the class comment); the products are vectors.
     */
    public static void swiglu(float[] gate, float[] up, int n) {
        for (int i = 0; i < n; i++) gate[i] = (float) (gate[i] / (1.0 + Math.exp(-gate[i])));
        int i = 0;
        for (int upTo = n - n % L; i < upTo; i += L) {
            FloatVector.fromArray(F, gate, i).mul(FloatVector.fromArray(F, up, i)).intoArray(gate, i);
        }
        for (; i < n; i++) gate[i] *= up[i];
    }

    public static void swigluScalar(float[] gate, float[] up, int n) {
        for (int i = 0; i < n; i++) gate[i] = (float) (gate[i] / (1.0 + Math.exp(-gate[i]))) * up[i];
    }

    /** In-place softmax over x[o..o+n), in fp32 with the max subtracted. */
    public static void softmax(float[] x, int o, int n) { org.moeserve.routing.Router.softmax(x, o, n); }

    /**
     * The k largest of p[0..n) into idx/val, largest first; ties go to the lower index (torch.topk's order on
     * equal values is unspecified, this one is fixed).
     */
    public static void topK(float[] p, int n, int k, int[] idx, float[] val) {
        org.moeserve.routing.TopK.select(p, n, k, idx, val);
    }

    /**
     * RoPE in HF's rotate-half convention on one head of {@code headDim} at x[o..): for i < headDim/2,
     * (x_i, x_{i+half}) -> (x_i cos - x_{i+half} sin, x_{i+half} cos + x_i sin) with the angles of this position.
     */
    public static void rope(float[] x, int o, int headDim, float[] cos, float[] sin) {
        int half = headDim / 2;
        for (int i = 0; i < half; i++) {
            float a = x[o + i], b = x[o + i + half];
            x[o + i] = a * cos[i] - b * sin[i];
            x[o + i + half] = b * cos[i] + a * sin[i];
        }
    }

    /**
     * RoPE on adjacent pairs over x[o..o+dim): (x_2i, x_2i+1) -> (x_2i cos - x_2i+1 sin, x_2i+1 cos + x_2i sin), the
     * convention of DeepSeek's rope part (a complex multiply per pair). Dot products of two vectors rotated this way
     * equal those of HF's de-interleaved layout, which only permutes both operands alike.
     */
    public static void ropeInterleaved(float[] x, int o, int dim, float[] cos, float[] sin) {
        for (int i = 0; i < dim / 2; i++) {
            float a = x[o + 2 * i], b = x[o + 2 * i + 1];
            x[o + 2 * i] = a * cos[i] - b * sin[i];
            x[o + 2 * i + 1] = b * cos[i] + a * sin[i];
        }
    }

    /**
     * One query head attending causally over n cached positions (grouped-query attention: several query heads
     * share one KV head, so the caller passes the KV head's offset). q at q[qo..qo+hd); the cache is
     * (positions, kvDim) row-major with this head's keys at kvOff of each row. scores is scratch of >= n.
     * out[oo..oo+hd) = sum_t softmax_t(q.k_t * scale) v_t.
     */
    public static void attention(float[] q, int qo, float[] kc, float[] vc, int kvDim, int kvOff, int n, int hd,
                                 float scale, float[] scores, float[] out, int oo) {
        for (int t = 0; t < n; t++) scores[t] = dot(q, qo, kc, t * kvDim + kvOff, hd) * scale;
        softmax(scores, 0, n);
        java.util.Arrays.fill(out, oo, oo + hd, 0f);
        for (int t = 0; t < n; t++) axpy(scores[t], vc, t * kvDim + kvOff, out, oo, hd);
    }

    public static void attentionScalar(float[] q, int qo, float[] kc, float[] vc, int kvDim, int kvOff, int n, int hd,
                                       float scale, float[] out, int oo) {
        double[] s = new double[n];
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (int t = 0; t < n; t++) {
            s[t] = dotScalar(q, qo, kc, t * kvDim + kvOff, hd) * scale;
            max = Math.max(max, s[t]);
        }
        for (int t = 0; t < n; t++) sum += (s[t] = Math.exp(s[t] - max));
        for (int i = 0; i < hd; i++) {
            double acc = 0;
            for (int t = 0; t < n; t++) acc += s[t] / sum * vc[t * kvDim + kvOff + i];
            out[oo + i] = (float) acc;
        }
    }
}
