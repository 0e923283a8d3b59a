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
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntConsumer;

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

    /**
     * The smallest piece decode's forks hand out ({@link #matvecs}), in multiply-adds (512 KB of BF16), unless a
     * sixteenth of a thread's share is smaller. Pieces are guided: each is half of what is left over the threads, so a
     * thread reads long runs first (a stream restarts at every piece) and short ones at the end (the caller waits for
     * the last piece a worker took: a 139 MB fork, a V2-Lite token's experts, cut in 32 equal pieces left it waiting a
     * quarter of a millisecond). Against 32+ equal pieces, in one process, V2-Lite-shaped decode on two threads read
     * 5% more in the stretches when each thread gets a core's bandwidth and 1% more otherwise.
     */
    static final long CHUNK_MACS = 1L << 18;

    /**
     * Decode's products below this many multiply-adds run on the calling thread: waking a parked worker and waiting
     * for its last chunk cost 60-80 us a fork on this project's 2-vCPU VM, where one thread reads a 64x2048 BF16
     * router in 14 us and a 576x2048 projection in 62 us (against 71 and 139 us forked).
     */
    static final long FORK_MACS = 1L << 21;

    // ---------------------------------------------------------------------------------------------------------
    // Dot products: one row of a weight matrix against an fp32 vector
    // ---------------------------------------------------------------------------------------------------------

    /** sum_i W[row, i] * x[i] for a row of n elements starting at element {@code rowStart} of {@code w}. */
    public static float dot(Tensor w, long rowStart, float[] x, int n) {
        return switch (w.dtype()) {
            case F32 -> dotF32(w.data(), rowStart * 4, x, n);
            default -> Operand.of(w, x, n).dot(w, rowStart, n);
        };
    }

    /**
     * x ready for rows of w: split into even/odd halves for BF16 and F16, as it is for F32; for a block format, x in
     * the order its kernel takes values ({@link QuantKernels#kernelInput}: reordered for Q4_K and Q6_K) and the
     * per-32 sums Q4_K's minimums need ({@code xe}).
     */
    private record Operand(float[] x, float[] xe, float[] xo, byte[] q) {
        static Operand of(Tensor w, float[] x, int n) {
            return switch (w.dtype()) {
                case Q8_0 -> {
                    if (!QuantKernels.INT8_ACTIVATIONS) yield new Operand(x, null, null, null);
                    byte[] q = new byte[n];
                    float[] d = new float[n / 32];
                    QuantKernels.quantizeQ8(x, n, q, d);
                    yield new Operand(x, d, null, q);
                }
                case F32, Q4_0, Q5_0 -> new Operand(x, null, null, null);
                case Q6_K -> new Operand(QuantKernels.kernelInput(DType.Q6_K, x, n), null, null, null);
                case Q4_K -> new Operand(QuantKernels.kernelInput(DType.Q4_K, x, n), QuantKernels.sums32(x, n), null, null);
                case BF16, F16 -> {
                    float[] xe = new float[n / 2], xo = new float[n / 2];
                    deinterleave(x, n, xe, xo);
                    yield new Operand(x, xe, xo, null);
                }
            };
        }

        float dot(Tensor w, long rowStart, int n) {
            return switch (w.dtype()) {
                case F32 -> dotF32(w.data(), rowStart * 4, x, n);
                case BF16 -> dotBf16(w.data(), rowStart * 2, xe, xo, x, n);
                case F16 -> dotF16(w.data(), rowStart * 2, xe, xo, x, n);
                default -> QuantKernels.dot(w.dtype(), w.data(), w.dtype().byteSize(rowStart), x, xe, q, n, new QuantKernels.Scratch());
            };
        }
    }

    public static float dotScalar(Tensor w, long rowStart, float[] x, int n) {
        if (w.dtype().quantized()) {
            float[] row = new float[n];
            org.moeserve.runtime.model.Blocks.dequantize(w.dtype(), w.data(), w.dtype().byteSize(rowStart), n, row, 0);
            float s = 0;
            for (int i = 0; i < n; i++) s += row[i] * x[i];
            return s;
        }
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
     *
     * <p>The summation order of every BF16 output, whichever kernel computes it: one vector accumulator, and for each
     * chunk of L pairs in order, {@code acc = we*xe + acc} then {@code acc = wo*xo + acc}; then the lanes in lane
     * order and the leftover pairs and element ({@link #finishBf16}). The single-row kernel (decode) and the
     * four-by-four tile (prefill, batches, expert groups) both follow it, so an output's bits do not depend on which
     * of them computed it, on the batch, or on the threads.
     *
     * <p>Decode on one thread reads two rows at once, half a range apart ({@link #rowsBf16}): two sequential streams far
     * apart raise one thread's read bandwidth 12-16% over a single row, where adjacent rows interleaved lose a third
     * (13-18 GB/s against 19-21 on this machine's 2048- and 2816-wide rows). On two threads each thread reads four rows
     * a quarter of its piece apart ({@link #dotBf16Quad}; {@link ReadPattern} has the figures and may pick one or two
     * rows on another host). One FMA chain per 64 bytes keeps up with any of them: a second chain per row measured
     * no faster, so the single chain, and with it every output's bits, stays.
     */
    static float dotBf16(MemorySegment w, long off, float[] xe, float[] xo, float[] x, int n) {
        return dotBf16(w, off, xe, xo, x, n, new float[L]);
    }

    /** {@link #dotBf16} with the caller's scratch for the lane sum ({@code lanes}, at least L long). */
    private static float dotBf16(MemorySegment w, long off, float[] xe, float[] xo, float[] x, int n, float[] lanes) {
        FloatVector acc = FloatVector.zero(F);
        int pairs = n / 2, j = 0;
        for (int up = pairs - pairs % L; j < up; j += L) {
            IntVector v = IntVector.fromMemorySegment(I, w, off + (long) j * 4, LE);
            acc = v.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F, xe, j), acc);
            acc = v.and(0xFFFF0000).reinterpretAsFloats().fma(FloatVector.fromArray(F, xo, j), acc);
        }
        acc.intoArray(lanes, 0);
        return finishBf16(laneSum(lanes, 0), w, off, xe, xo, x, n);
    }

    /** lanes[o..o+L) added in lane order: {@link #sum} of the vector stored there, the same bits. */
    private static float laneSum(float[] lanes, int o) {
        float s = 0;
        for (int i = 0; i < L; i++) s += lanes[o + i];
        return s;
    }

    /**
     * Rows lo..hi-1 of a BF16 matrix against one input, each row by {@link #dotBf16}: decode's kernel. One call per
     * range with one lane scratch, so the row kernel is inlined into this loop and allocates nothing per row.
     */
    static void rowsBf16(MemorySegment w, long rowBytes, int lo, int hi, Operand op, int n, float[] out, int streams) {
        float[] lanes = new float[4 * L];
        int r = lo;
        if (streams >= 4) {
            int q = (hi - lo) / 4;
            for (int i = 0; i < q; i++) {
                int a = lo + i, b = a + q, c = b + q, d = c + q;
                dotBf16Quad(w, a * rowBytes, b * rowBytes, c * rowBytes, d * rowBytes, op.xe(), op.xo(), op.x(), n, lanes, out, a, b, c, d);
            }
            r = lo + 4 * q;
        } else if (streams == 2) {
            int half = (hi - lo) / 2;
            for (int i = 0; i < half; i++) {
                dotBf16Pair(w, (lo + i) * rowBytes, (lo + half + i) * rowBytes, op.xe(), op.xo(), op.x(), n, lanes, out, lo + i, lo + half + i);
            }
            r = lo + 2 * half;
        }
        for (; r < hi; r++) out[r] = dotBf16(w, r * rowBytes, op.xe(), op.xo(), op.x(), n, lanes);
    }

    /**
     * Two rows half a range apart, each in {@link #dotBf16}'s order (so each output has the single-row kernel's bits):
     * two sequential memory streams at once. A single stream leaves one thread short of the memory's bandwidth; two far
     * apart raise what one thread reads by 12-16% (measured: 22.5 -> 25.2 GB/s on 1408-wide rows), while two adjacent
     * rows, which the hardware prefetcher takes for one stride pattern, lose a third.
     */
    private static void dotBf16Pair(MemorySegment w, long offA, long offB, float[] xe, float[] xo, float[] x, int n, float[] lanes,
                                    float[] out, int ia, int ib) {
        FloatVector a = FloatVector.zero(F), b = a;
        int pairs = n / 2, j = 0;
        for (int up = pairs - pairs % L; j < up; j += L) {
            IntVector v = IntVector.fromMemorySegment(I, w, offA + (long) j * 4, LE);
            IntVector u = IntVector.fromMemorySegment(I, w, offB + (long) j * 4, LE);
            FloatVector e = FloatVector.fromArray(F, xe, j), o = FloatVector.fromArray(F, xo, j);
            a = v.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(e, a);
            b = u.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(e, b);
            a = v.and(0xFFFF0000).reinterpretAsFloats().fma(o, a);
            b = u.and(0xFFFF0000).reinterpretAsFloats().fma(o, b);
        }
        a.intoArray(lanes, 0);
        b.intoArray(lanes, L);
        out[ia] = finishBf16(laneSum(lanes, 0), w, offA, xe, xo, x, n);
        out[ib] = finishBf16(laneSum(lanes, L), w, offB, xe, xo, x, n);
    }

    /**
     * Four rows a quarter of a range apart, each in {@link #dotBf16}'s order: four sequential memory streams a thread
     * ({@link ReadPattern}).
     */
    private static void dotBf16Quad(MemorySegment w, long oa, long ob, long oc, long od, float[] xe, float[] xo, float[] x, int n,
                                    float[] lanes, float[] out, int ia, int ib, int ic, int id) {
        FloatVector a = FloatVector.zero(F), b = a, c = a, d = a;
        int pairs = n / 2, j = 0;
        for (int up = pairs - pairs % L; j < up; j += L) {
            long o = (long) j * 4;
            IntVector va = IntVector.fromMemorySegment(I, w, oa + o, LE);
            IntVector vb = IntVector.fromMemorySegment(I, w, ob + o, LE);
            IntVector vc = IntVector.fromMemorySegment(I, w, oc + o, LE);
            IntVector vd = IntVector.fromMemorySegment(I, w, od + o, LE);
            FloatVector e = FloatVector.fromArray(F, xe, j), q = FloatVector.fromArray(F, xo, j);
            a = va.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(e, a);
            b = vb.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(e, b);
            c = vc.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(e, c);
            d = vd.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(e, d);
            a = va.and(0xFFFF0000).reinterpretAsFloats().fma(q, a);
            b = vb.and(0xFFFF0000).reinterpretAsFloats().fma(q, b);
            c = vc.and(0xFFFF0000).reinterpretAsFloats().fma(q, c);
            d = vd.and(0xFFFF0000).reinterpretAsFloats().fma(q, d);
        }
        a.intoArray(lanes, 0);
        b.intoArray(lanes, L);
        c.intoArray(lanes, 2 * L);
        d.intoArray(lanes, 3 * L);
        out[ia] = finishBf16(laneSum(lanes, 0), w, oa, xe, xo, x, n);
        out[ib] = finishBf16(laneSum(lanes, L), w, ob, xe, xo, x, n);
        out[ic] = finishBf16(laneSum(lanes, 2 * L), w, oc, xe, xo, x, n);
        out[id] = finishBf16(laneSum(lanes, 3 * L), w, od, xe, xo, x, n);
    }

    /**
     * The lane sum {@code s} of an accumulator (in lane order), then the pairs past the last whole chunk, then an odd
     * last element. It takes the sum, not the vector: a vector passed to a call C2 does not inline is boxed, and
     * C2 then keeps the whole accumulation loop on boxed vectors (measured: 7 GFLOP/s instead of 60).
     */
    private static float finishBf16(float s, MemorySegment w, long off, float[] xe, float[] xo, float[] x, int n) {
        int pairs = n / 2;
        for (int j = pairs - pairs % L; j < pairs; j++) s += bf16At(w, off, 2 * j) * xe[j] + bf16At(w, off, 2 * j + 1) * xo[j];
        if ((n & 1) == 1) s += bf16At(w, off, n - 1) * x[n - 1];
        return s;
    }

    /**
     * A register tile: four BF16 rows (weights) against two inputs, eight outputs. Each weight vector is loaded and
     * widened once for both inputs and each input vector once for the four rows. Small on purpose: C2 compiles a
     * larger tile (4x4 measured) into code that is fast in some runs and keeps the vectors boxed in others (7-70
     * GFLOP/s from one run to the next); this one stays intrinsified. Same summation order per output as
     * {@link #dotBf16}.
     */
    static void tileBf16x4x2(MemorySegment w, long off, long rowBytes, Operand x0, Operand x1, int n, float[] out0,
                             float[] out1, int j0) {
        float[] e0 = x0.xe(), q0 = x0.xo(), e1 = x1.xe(), q1 = x1.xo();
        FloatVector a0 = FloatVector.zero(F), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
        long ob = off + rowBytes, oc = ob + rowBytes, od = oc + rowBytes;
        int pairs = n / 2;
        for (int j = 0, up = pairs - pairs % L; j < up; j += L) {
            long o = (long) j * 4;
            IntVector va = IntVector.fromMemorySegment(I, w, off + o, LE), vb = IntVector.fromMemorySegment(I, w, ob + o, LE);
            IntVector vc = IntVector.fromMemorySegment(I, w, oc + o, LE), vd = IntVector.fromMemorySegment(I, w, od + o, LE);
            FloatVector ae = va.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), ao = va.and(0xFFFF0000).reinterpretAsFloats();
            FloatVector be = vb.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), bo = vb.and(0xFFFF0000).reinterpretAsFloats();
            FloatVector ce = vc.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), co = vc.and(0xFFFF0000).reinterpretAsFloats();
            FloatVector de = vd.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), dq = vd.and(0xFFFF0000).reinterpretAsFloats();
            FloatVector e = FloatVector.fromArray(F, e0, j), q = FloatVector.fromArray(F, q0, j);
            a0 = ao.fma(q, ae.fma(e, a0));
            b0 = bo.fma(q, be.fma(e, b0));
            c0 = co.fma(q, ce.fma(e, c0));
            d0 = dq.fma(q, de.fma(e, d0));
            e = FloatVector.fromArray(F, e1, j);
            q = FloatVector.fromArray(F, q1, j);
            a1 = ao.fma(q, ae.fma(e, a1));
            b1 = bo.fma(q, be.fma(e, b1));
            c1 = co.fma(q, ce.fma(e, c1));
            d1 = dq.fma(q, de.fma(e, d1));
        }
        float[] lanes = new float[8 * L];
        a0.intoArray(lanes, 0);
        b0.intoArray(lanes, L);
        c0.intoArray(lanes, 2 * L);
        d0.intoArray(lanes, 3 * L);
        a1.intoArray(lanes, 4 * L);
        b1.intoArray(lanes, 5 * L);
        c1.intoArray(lanes, 6 * L);
        d1.intoArray(lanes, 7 * L);
        for (int k = 0; k < 4; k++) {
            out0[j0 + k] = finishBf16(laneSum(lanes, k * L), w, off + k * rowBytes, e0, q0, x0.x(), n);
            out1[j0 + k] = finishBf16(laneSum(lanes, (4 + k) * L), w, off + k * rowBytes, e1, q1, x1.x(), n);
        }
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

    private static final float F16_SCALE = 0x1p112f;

    /**
     * F16 rows, read like BF16 as 32-bit pairs and widened in vector registers: a half's exponent and mantissa shifted
     * into an fp32's place ({@code (h & 0x7fff) << 13}) are the half's value times 2^-112, exactly, normal or
     * subnormal, so one multiply by 2^112 gives the fp32 value; the sign bit is moved alongside. Infinities and NaNs
     * (exponent all ones) would come out finite, so those lanes are rebuilt with an all-ones fp32 exponent: a damaged
     * checkpoint still shows as a non-finite logit. The summation order is BF16's ({@link #dotBf16}).
     */
    static float dotF16(MemorySegment w, long off, float[] xe, float[] xo, float[] x, int n) {
        FloatVector acc = FloatVector.zero(F);
        int pairs = n / 2, j = 0;
        for (int up = pairs - pairs % L; j < up; j += L) {
            IntVector v = IntVector.fromMemorySegment(I, w, off + (long) j * 4, LE);
            acc = f16Even(v).fma(FloatVector.fromArray(F, xe, j), acc);
            acc = f16Odd(v).fma(FloatVector.fromArray(F, xo, j), acc);
        }
        float[] lanes = new float[L];
        acc.intoArray(lanes, 0);
        float s = laneSum(lanes, 0);
        for (; j < pairs; j++) s += f16At(w, off, 2 * j) * xe[j] + f16At(w, off, 2 * j + 1) * xo[j];
        if ((n & 1) == 1) s += f16At(w, off, n - 1) * x[n - 1];
        return s;
    }

    /** The low half of each int as fp32 (see {@link #dotF16}). */
    private static FloatVector f16Even(IntVector v) {
        IntVector bits = v.lanewise(VectorOperators.LSHL, 13).and(0x0FFFE000)
                .or(v.lanewise(VectorOperators.LSHL, 16).and(0x80000000));
        return widenF16(bits, v.and(0x7C00).compare(VectorOperators.EQ, 0x7C00));
    }

    /** The high half of each int as fp32. */
    private static FloatVector f16Odd(IntVector v) {
        IntVector bits = v.lanewise(VectorOperators.LSHR, 3).and(0x0FFFE000).or(v.and(0x80000000));
        return widenF16(bits, v.and(0x7C000000).compare(VectorOperators.EQ, 0x7C000000));
    }

    private static FloatVector widenF16(IntVector bits, jdk.incubator.vector.VectorMask<Integer> special) {
        FloatVector f = bits.reinterpretAsFloats().mul(F16_SCALE);
        if (!special.anyTrue()) return f;
        // infinity or NaN: all-ones exponent, the mantissa kept (bits 13..22), the sign kept
        return f.blend(bits.or(0x7F800000).reinterpretAsFloats(), special.cast(F));
    }

    private static float f16At(MemorySegment w, long off, int i) { return Float.float16ToFloat(w.get(I16, off + (long) i * 2)); }

    private static final jdk.incubator.vector.VectorShuffle<Float> HALF = shuffleXor(L / 2), QUARTER = shuffleXor(L / 4),
            EIGHTH = shuffleXor(Math.max(1, L / 8)), SIXTEENTH = shuffleXor(Math.max(1, L / 16));

    private static jdk.incubator.vector.VectorShuffle<Float> shuffleXor(int d) {
        return jdk.incubator.vector.VectorShuffle.fromOp(F, i -> i ^ d);
    }

    /**
     * The lanes of v added as a fixed tree (lane i with lane i^(L/2), then i^(L/4), ...; lane 0 of the result): the
     * same bits in the interpreter and in compiled code, since the order is ours, not reduceLanes' (which may differ
     * between the two), and a quarter of the instructions of a lane-by-lane sum: attention's dot products over a
     * 512-token context spent more in lane sums than in multiply-adds (decode at that context: 80% of the read
     * roofline with lane-order sums, 86% with the tree, the 2.4 GB Mixtral shape on one thread).
     */
    static float treeSum(FloatVector v) {
        v = v.add(v.rearrange(HALF));
        if (L >= 4) v = v.add(v.rearrange(QUARTER));
        if (L >= 8) v = v.add(v.rearrange(EIGHTH));
        if (L >= 16) v = v.add(v.rearrange(SIXTEENTH));
        return v.lane(0);
    }

    /** The lanes of v added in lane order: the same bits in the interpreter and in compiled code. */
    static float sum(FloatVector v) {
        float s = 0;
        for (int i = 0; i < L; i++) s += v.lane(i);
        return s;
    }

    /**
     * Rows a0, a1 against inputs x0, x1 (fp32, from index 0, n long): out = {a0.x0, a0.x1, a1.x0, a1.x1}, each with
     * {@link #dot}'s operations in its order (the same bits), each load serving two products (decoded Q6_K rows, {@link QuantKernels#tile}).
     */
    static void dot2x2(float[] a0, float[] a1, float[] x0, float[] x1, int n, float[] out) {
        FloatVector c00 = FloatVector.zero(F), c01 = c00, c10 = c00, c11 = c00;
        int i = 0;
        for (int up = n - n % L; i < up; i += L) {
            FloatVector v0 = FloatVector.fromArray(F, a0, i), v1 = FloatVector.fromArray(F, a1, i);
            FloatVector y0 = FloatVector.fromArray(F, x0, i), y1 = FloatVector.fromArray(F, x1, i);
            c00 = v0.fma(y0, c00);
            c01 = v0.fma(y1, c01);
            c10 = v1.fma(y0, c10);
            c11 = v1.fma(y1, c11);
        }
        float s00 = treeSum(c00), s01 = treeSum(c01), s10 = treeSum(c10), s11 = treeSum(c11);
        for (; i < n; i++) {
            s00 += a0[i] * x0[i];
            s01 += a0[i] * x1[i];
            s10 += a1[i] * x0[i];
            s11 += a1[i] * x1[i];
        }
        out[0] = s00;
        out[1] = s01;
        out[2] = s10;
        out[3] = s11;
    }

    /** sum_i a[ao+i] * b[bo+i] over fp32 arrays (attention scores). */
    public static float dot(float[] a, int ao, float[] b, int bo, int n) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        for (int up = n - n % L; i < up; i += L) {
            acc = FloatVector.fromArray(F, a, ao + i).fma(FloatVector.fromArray(F, b, bo + i), acc);
        }
        float s = treeSum(acc);
        for (; i < n; i++) s += a[ao + i] * b[bo + i];
        return s;
    }

    /**
     * Four {@link #dot}s of one vector against four vectors {@code bStride} apart (four cached positions):
     * out[oo+i] = dot(a, ao, b, bo + i*bStride, n), each in dot's order, so the same bits. One accumulator per dot is
     * one dependent FMA chain; four at once hide its latency (attention over a long context was latency-bound).
     */
    static void dot4(float[] a, int ao, float[] b, int bo, int bStride, int n, float[] out, int oo) {
        FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0;
        int b1 = bo + bStride, b2 = b1 + bStride, b3 = b2 + bStride, i = 0;
        for (int up = n - n % L; i < up; i += L) {
            FloatVector x = FloatVector.fromArray(F, a, ao + i);
            s0 = x.fma(FloatVector.fromArray(F, b, bo + i), s0);
            s1 = x.fma(FloatVector.fromArray(F, b, b1 + i), s1);
            s2 = x.fma(FloatVector.fromArray(F, b, b2 + i), s2);
            s3 = x.fma(FloatVector.fromArray(F, b, b3 + i), s3);
        }
        float r0 = treeSum(s0), r1 = treeSum(s1), r2 = treeSum(s2), r3 = treeSum(s3);
        for (int j = i; j < n; j++) {
            float x = a[ao + j];
            r0 += x * b[bo + j];
            r1 += x * b[b1 + j];
            r2 += x * b[b2 + j];
            r3 += x * b[b3 + j];
        }
        out[oo] = r0;
        out[oo + 1] = r1;
        out[oo + 2] = r2;
        out[oo + 3] = r3;
    }

    /**
     * Four {@link #axpy}s in a row into one y: y += p[po+i] * x[xo + i*xStride ..] for i = 0..3 in that order, each
     * element's FMAs in the order four axpy calls would make them (the same bits), with y loaded and stored once.
     */
    static void axpy4(float[] p, int po, float[] x, int xo, int xStride, float[] y, int yo, int n) {
        FloatVector p0 = FloatVector.broadcast(F, p[po]), p1 = FloatVector.broadcast(F, p[po + 1]);
        FloatVector p2 = FloatVector.broadcast(F, p[po + 2]), p3 = FloatVector.broadcast(F, p[po + 3]);
        int x1 = xo + xStride, x2 = x1 + xStride, x3 = x2 + xStride, i = 0;
        for (int up = n - n % L; i < up; i += L) {
            FloatVector acc = FloatVector.fromArray(F, y, yo + i);
            acc = FloatVector.fromArray(F, x, xo + i).fma(p0, acc);
            acc = FloatVector.fromArray(F, x, x1 + i).fma(p1, acc);
            acc = FloatVector.fromArray(F, x, x2 + i).fma(p2, acc);
            acc = FloatVector.fromArray(F, x, x3 + i).fma(p3, acc);
            acc.intoArray(y, yo + i);
        }
        for (; i < n; i++) {
            float v = y[yo + i];
            v += p[po] * x[xo + i];
            v += p[po + 1] * x[x1 + i];
            v += p[po + 2] * x[x2 + i];
            v += p[po + 3] * x[x3 + i];
            y[yo + i] = v;
        }
    }

    /**
     * Scores against n cached positions {@code stride} apart: out[oo+t] = dot(a, ao, b, bo + t*stride, len), four
     * positions a pass ({@link #dot4}) and the rest one at a time, every output with {@link #dot}'s bits.
     */
    public static void dots(float[] a, int ao, float[] b, int bo, int stride, int len, int n, float[] out, int oo) {
        int t = 0;
        for (; t + 4 <= n; t += 4) dot4(a, ao, b, bo + t * stride, stride, len, out, oo + t);
        for (; t < n; t++) out[oo + t] = dot(a, ao, b, bo + t * stride, len);
    }

    /**
     * The weighted sum over n cached positions {@code stride} apart: y += p[t] * x[xo + t*stride ..] for t in order,
     * four positions a pass ({@link #axpy4}), the same bits as n {@link #axpy} calls.
     */
    public static void axpys(float[] p, float[] x, int xo, int stride, int len, int n, float[] y, int yo) {
        int t = 0;
        for (; t + 4 <= n; t += 4) axpy4(p, t, x, xo + t * stride, stride, y, yo, len);
        for (; t < n; t++) axpy(p[t], x, xo + t * stride, y, yo, len);
    }

    /**
     * {@link #dots} for several queries against the same cached positions: out[i][t] = dot(a[i], ao[i], b, bo +
     * t*stride, len), each output with {@link #dots}' bits. Four positions are read once for all the queries (they
     * stay in L1) instead of once a query: a decoded token's attention heads share one latent cache (MLA), which read
     * per head is read 16 times a layer. Measured for 8 heads of rank 512 (scores and weighted sum, one thread): the
     * same at 256 positions, 1.3-1.4x faster at 1,024-4,096, 3.5x at 16,384 (a cache past the last-level cache).
     */
    public static void dotsMany(float[][] a, int[] ao, float[] b, int bo, int stride, int len, int n, float[][] out) {
        int t = 0;
        for (; t + 4 <= n; t += 4) {
            int i = 0;
            for (; i + 2 <= a.length; i += 2) dot2x4(a[i], ao[i], a[i + 1], ao[i + 1], b, bo + t * stride, stride, len, out[i], out[i + 1], t);
            for (; i < a.length; i++) dot4(a[i], ao[i], b, bo + t * stride, stride, len, out[i], t);
        }
        for (; t < n; t++) {
            for (int i = 0; i < a.length; i++) out[i][t] = dot(a[i], ao[i], b, bo + t * stride, len);
        }
    }

    /**
     * {@link #axpys} for several weightings of the same cached positions: y[i] += p[i][t] * x[xo + t*stride ..] for t
     * in order, each y[i] with {@link #axpys}' bits, four positions read once for all of them.
     */
    public static void axpysMany(float[][] p, float[] x, int xo, int stride, int len, int n, float[][] y) {
        int t = 0;
        for (; t + 4 <= n; t += 4) {
            int i = 0;
            for (; i + 2 <= p.length; i += 2) axpy2x4(p[i], p[i + 1], t, x, xo + t * stride, stride, y[i], y[i + 1], len);
            for (; i < p.length; i++) axpy4(p[i], t, x, xo + t * stride, stride, y[i], 0, len);
        }
        for (; t < n; t++) {
            for (int i = 0; i < p.length; i++) axpy(p[i][t], x, xo + t * stride, y[i], 0, len);
        }
    }

    /**
     * {@link #dot4} for two queries at once (eight outputs): each cached vector is loaded once for both, and every
     * output keeps dot4's order, so the same bits.
     */
    private static void dot2x4(float[] a, int ao, float[] c, int co, float[] b, int bo, int bStride, int n, float[] out,
                               float[] outC, int oo) {
        FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0, u0 = s0, u1 = s0, u2 = s0, u3 = s0;
        int b1 = bo + bStride, b2 = b1 + bStride, b3 = b2 + bStride, i = 0;
        for (int up = n - n % L; i < up; i += L) {
            FloatVector x = FloatVector.fromArray(F, a, ao + i), z = FloatVector.fromArray(F, c, co + i);
            FloatVector v0 = FloatVector.fromArray(F, b, bo + i), v1 = FloatVector.fromArray(F, b, b1 + i);
            FloatVector v2 = FloatVector.fromArray(F, b, b2 + i), v3 = FloatVector.fromArray(F, b, b3 + i);
            s0 = x.fma(v0, s0);
            s1 = x.fma(v1, s1);
            s2 = x.fma(v2, s2);
            s3 = x.fma(v3, s3);
            u0 = z.fma(v0, u0);
            u1 = z.fma(v1, u1);
            u2 = z.fma(v2, u2);
            u3 = z.fma(v3, u3);
        }
        float r0 = treeSum(s0), r1 = treeSum(s1), r2 = treeSum(s2), r3 = treeSum(s3);
        float q0 = treeSum(u0), q1 = treeSum(u1), q2 = treeSum(u2), q3 = treeSum(u3);
        for (int j = i; j < n; j++) {
            float x = a[ao + j], z = c[co + j];
            r0 += x * b[bo + j];
            r1 += x * b[b1 + j];
            r2 += x * b[b2 + j];
            r3 += x * b[b3 + j];
            q0 += z * b[bo + j];
            q1 += z * b[b1 + j];
            q2 += z * b[b2 + j];
            q3 += z * b[b3 + j];
        }
        out[oo] = r0;
        out[oo + 1] = r1;
        out[oo + 2] = r2;
        out[oo + 3] = r3;
        outC[oo] = q0;
        outC[oo + 1] = q1;
        outC[oo + 2] = q2;
        outC[oo + 3] = q3;
    }

    /**
     * {@link #axpy4} into two outputs at once (y and z, weights p and q at po..po+3), each cached vector loaded once
     * for both, each element's FMAs in axpy4's order: the same bits.
     */
    private static void axpy2x4(float[] p, float[] q, int po, float[] x, int xo, int xStride, float[] y, float[] z, int n) {
        FloatVector p0 = FloatVector.broadcast(F, p[po]), p1 = FloatVector.broadcast(F, p[po + 1]);
        FloatVector p2 = FloatVector.broadcast(F, p[po + 2]), p3 = FloatVector.broadcast(F, p[po + 3]);
        FloatVector q0 = FloatVector.broadcast(F, q[po]), q1 = FloatVector.broadcast(F, q[po + 1]);
        FloatVector q2 = FloatVector.broadcast(F, q[po + 2]), q3 = FloatVector.broadcast(F, q[po + 3]);
        int x1 = xo + xStride, x2 = x1 + xStride, x3 = x2 + xStride, i = 0;
        for (int up = n - n % L; i < up; i += L) {
            FloatVector v0 = FloatVector.fromArray(F, x, xo + i), v1 = FloatVector.fromArray(F, x, x1 + i);
            FloatVector v2 = FloatVector.fromArray(F, x, x2 + i), v3 = FloatVector.fromArray(F, x, x3 + i);
            FloatVector acc = FloatVector.fromArray(F, y, i);
            acc = v0.fma(p0, acc);
            acc = v1.fma(p1, acc);
            acc = v2.fma(p2, acc);
            acc = v3.fma(p3, acc);
            acc.intoArray(y, i);
            FloatVector bcc = FloatVector.fromArray(F, z, i);
            bcc = v0.fma(q0, bcc);
            bcc = v1.fma(q1, bcc);
            bcc = v2.fma(q2, bcc);
            bcc = v3.fma(q3, bcc);
            bcc.intoArray(z, i);
        }
        for (; i < n; i++) {
            float v = y[i];
            v += p[po] * x[xo + i];
            v += p[po + 1] * x[x1 + i];
            v += p[po + 2] * x[x2 + i];
            v += p[po + 3] * x[x3 + i];
            y[i] = v;
            float w = z[i];
            w += q[po] * x[xo + i];
            w += q[po + 1] * x[x1 + i];
            w += q[po + 2] * x[x2 + i];
            w += q[po + 3] * x[x3 + i];
            z[i] = w;
        }
    }

    /**
     * The index of the first NaN or infinity in x, or -1: a vector pass (x * 0 is 0 for a finite x and NaN otherwise,
     * so one NaN turns the running sum NaN), then a scalar search only where it found one. Decode checks every
     * logit of every token this way (102,400 for DeepSeek's vocabulary).
     */
    public static int firstNonFinite(float[] x) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        for (int up = x.length - x.length % L; i < up; i += L) acc = acc.add(FloatVector.fromArray(F, x, i).mul(0f));
        boolean any = acc.test(VectorOperators.IS_NAN).anyTrue();
        for (; i < x.length; i++) any |= !Float.isFinite(x[i]);
        if (!any) return -1;
        for (int j = 0; j < x.length; j++) if (!Float.isFinite(x[j])) return j;
        return -1;
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
        if (par.threads() > 1 && (long) d * n >= FORK_MACS) {
            matvecs(par, new Tensor[]{w}, new float[][]{x}, new float[][]{out});
            return;
        }
        rows(w, Operand.of(w, x, n), 0, d, out, par.reads().streams());
    }

    /** Rows lo..hi-1 of W against one prepared input, each by the row kernel of W's dtype (decode's products). */
    private static void rows(Tensor w, Operand op, int lo, int hi, float[] out, int streams) {
        int n = w.cols();
        if (w.dtype() == DType.BF16) rowsBf16(w.data(), (long) n * 2, lo, hi, op, n, out, streams);
        else if (w.dtype().quantized()) rowsQuant(w, lo, hi, op, n, out);
        else for (int j = lo; j < hi; j++) out[j] = op.dot(w, (long) j * n, n);
    }

    /**
     * Several independent matrix-vector products (out[i] = W[i] x[i]) in one fork: the rows of all of them, laid end
     * to end, are handed out in guided pieces ({@link #CHUNK_MACS}), a piece may span products, and each row is computed by
     * the kernel {@link #matvec} uses, so every output has matvec's bits. A fork costs its wake-ups and its last
     * chunk's wait whatever its size (tens of microseconds on this project's 2-vCPU VM), so decode forks once for
     * products that share an input or are otherwise ready together (q, k and v; an FFN's gate and up; the experts of
     * a token) instead of once per matrix. One thread: each product in turn, as matvec does.
     */
    public static void matvecs(Parallel par, Tensor[] w, float[][] x, float[][] out) {
        matvecs(par, w, x, out, null);
    }

    /**
     * {@link #matvecs}, calling {@code done.accept(i)} once product i's outputs are all written, on whichever thread
     * wrote its last rows, while the fork's other pieces go on: work that needs a whole product (an FFN's swiglu)
     * runs inside the fork, spread over the threads, instead of on the caller after it. The last writer learns it is
     * last from a count it adds to after its rows, so it sees every row's value.
     */
    public static void matvecs(Parallel par, Tensor[] w, float[][] x, float[][] out, IntConsumer done) {
        int k = w.length;
        long macs = 0;
        for (Tensor t : w) macs += (long) t.rows() * t.cols();
        if (par.threads() == 1 || macs < FORK_MACS) {
            for (int i = 0; i < k; i++) {
                matvec(w[i], x[i], out[i], par);
                if (done != null) done.accept(i);
            }
            return;
        }
        Operand[] ops = new Operand[k];
        long[] start = new long[k + 1];
        for (int i = 0; i < k; i++) {
            // products of one input and one layout (an FFN's gate and up, a token's experts) share its preparation
            boolean same = i > 0 && x[i] == x[i - 1] && w[i].dtype() == w[i - 1].dtype() && w[i].cols() == w[i - 1].cols();
            ops[i] = same ? ops[i - 1] : Operand.of(w[i], x[i], w[i].cols());
            start[i + 1] = start[i] + (long) w[i].rows() * w[i].cols();
        }
        long total = start[k];
        int threads = par.threads();
        long least = Math.max(GRAIN_MACS, Math.min(CHUNK_MACS, total / (threads * 16L)));
        int streams = par.reads().streams();
        AtomicLong next = new AtomicLong();
        AtomicIntegerArray written = done == null ? null : new AtomicIntegerArray(k);
        // guided self-scheduling: each thread takes half of what is left over the threads, at least `least`
        par.forEach(threads, t -> {
            for (long a; (a = next.get()) < total; ) {
                long b = Math.min(total, a + Math.max(least, (total - a) / (2L * threads)));
                if (next.compareAndSet(a, b)) span(w, ops, start, out, a, b, streams, written, done);
            }
        });
    }

    /**
     * The rows of products w whose first multiply-add (start[i] + r * cols) falls in [a, b) of their concatenation;
     * with {@code written}, counts them per product and calls {@code done} for a product whose last rows these were.
     */
    private static void span(Tensor[] w, Operand[] ops, long[] start, float[][] out, long a, long b, int streams,
                             AtomicIntegerArray written, IntConsumer done) {
        for (int i = 0; i < w.length; i++) {
            if (start[i + 1] <= a || start[i] >= b) continue;
            long cols = w[i].cols();
            int lo = (int) Math.min(w[i].rows(), Math.max(0, ceilDiv(a - start[i], cols)));
            int hi = (int) Math.min(w[i].rows(), Math.max(0, ceilDiv(b - start[i], cols)));
            if (lo < hi) {
                rows(w[i], ops[i], lo, hi, out[i], streams);
                if (written != null && written.addAndGet(i, hi - lo) == w[i].rows()) done.accept(i);
            }
        }
    }

    /** out[i] = W[i] x[i] for rows inputs each: {@link #matvecs} for one row, else one {@link #matmul} per product. */
    public static void matmuls(Parallel par, int rows, Tensor[] w, float[][][] x, float[][][] out) {
        if (rows == 1) {
            float[][] x1 = new float[w.length][], o1 = new float[w.length][];
            for (int i = 0; i < w.length; i++) {
                x1[i] = x[i][0];
                o1[i] = out[i][0];
            }
            matvecs(par, w, x1, o1);
            return;
        }
        for (int i = 0; i < w.length; i++) matmul(w[i], x[i], rows, out[i], par);
    }

    private static long ceilDiv(long a, long b) { return Math.floorDiv(a + b - 1, b); }

    /** Rows lo..hi-1 of a quantized matrix against one input (one lane scratch per range). */
    private static void rowsQuant(Tensor w, int lo, int hi, Operand op, int n, float[] out) {
        QuantKernels.Scratch lanes = new QuantKernels.Scratch();
        long rowBytes = w.rowBytes();
        for (int r = lo; r < hi; r++) out[r] = QuantKernels.dot(w.dtype(), w.data(), r * rowBytes, op.x(), op.xe(), op.q(), n, lanes);
    }

    /**
     * W^T x: out[j] = sum_i x[i] * W[i, j] for W (d,n), x (d,), out (n,), on this thread. Each row of W is read once,
     * in order, and added into the outputs scaled by its x (an axpy per row), so the outputs accumulate in row order
     * whatever the thread count. MLA's absorbed key product (W_k^T q_nope) reads kv_b_proj's own rows through it
     * instead of a transposed fp32 copy, whose 128-wide rows cost more in lane sums than in bytes (13-15 GB/s against
     * 27 for the other weights). BF16 and F16 rows widen in registers, evens and odds apart ({@link #deinterleave}'s
     * split, on the outputs here); F32 rows are read as they are; block formats are decoded a row at a time.
     */
    public static void matvecTransposed(Tensor w, float[] x, float[] out) {
        int d = w.rows(), n = w.cols();
        if (w.dtype() == DType.BF16 || w.dtype() == DType.F16) {
            transposedHalves(w, x, out, w.dtype() == DType.F16);
            return;
        }
        java.util.Arrays.fill(out, 0, n, 0f);
        if (w.dtype() == DType.F32) {
            MemorySegment seg = w.data();
            int up = n - n % L;
            for (int i = 0; i < d; i++) {
                FloatVector a = FloatVector.broadcast(F, x[i]);
                long off = (long) i * n * 4;
                for (int j = 0; j < up; j += L) {
                    FloatVector.fromMemorySegment(F, seg, off + (long) j * 4, LE).fma(a, FloatVector.fromArray(F, out, j)).intoArray(out, j);
                }
                for (int j = up; j < n; j++) out[j] += x[i] * seg.get(F32, off + (long) j * 4);
            }
            return;
        }
        float[] row = new float[n];
        for (int i = 0; i < d; i++) {
            w.row(i, row);
            axpy(x[i], row, 0, out, 0, n);
        }
    }

    private static void transposedHalves(Tensor w, float[] x, float[] out, boolean f16) {
        int d = w.rows(), n = w.cols(), pairs = n / 2, up = pairs - pairs % L;
        float[] oe = new float[pairs], oo = new float[pairs];
        MemorySegment seg = w.data();
        long rowBytes = (long) n * 2;
        for (int i = 0; i < d; i++) {
            FloatVector a = FloatVector.broadcast(F, x[i]);
            long off = i * rowBytes;
            for (int j = 0; j < up; j += L) {
                IntVector v = IntVector.fromMemorySegment(I, seg, off + (long) j * 4, LE);
                FloatVector e = f16 ? f16Even(v) : v.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                FloatVector o = f16 ? f16Odd(v) : v.and(0xFFFF0000).reinterpretAsFloats();
                e.fma(a, FloatVector.fromArray(F, oe, j)).intoArray(oe, j);
                o.fma(a, FloatVector.fromArray(F, oo, j)).intoArray(oo, j);
            }
            for (int j = up; j < pairs; j++) {
                oe[j] += x[i] * w.get(i * (long) n + 2 * j);
                oo[j] += x[i] * w.get(i * (long) n + 2 * j + 1);
            }
        }
        for (int j = 0; j < pairs; j++) {
            out[2 * j] = oe[j];
            out[2 * j + 1] = oo[j];
        }
        if ((n & 1) == 1) {
            float s = 0;
            for (int i = 0; i < d; i++) s += x[i] * w.get(i * (long) n + n - 1);
            out[n - 1] = s;
        }
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
        if (w.dtype().quantized()) {
            // two rows by two inputs (QuantKernels.tile) or four inputs per row (dot4), each output's bits as decode gives them
            float[][] xs = new float[rows][], sums = new float[rows][];
            for (int r = 0; r < rows; r++) {
                xs[r] = ops[r].x();
                sums[r] = ops[r].xe();
            }
            boolean four = QuantKernels.hasDot4(w.dtype()), tile = QuantKernels.hasTile(w.dtype());
            par.forRange(d, Math.max(1, GRAIN_MACS / (n * rows)), (lo, hi) -> {
                QuantKernels.Scratch lanes = new QuantKernels.Scratch();
                long rowBytes = w.rowBytes();
                int j = lo;
                if (tile) { // two rows by two inputs (the bits of one row against one input), the odd input one at a time
                    float[] o4 = new float[4];
                    for (; j + 2 <= hi; j += 2) {
                        long o0 = j * rowBytes, o1 = o0 + rowBytes;
                        QuantKernels.tileRows(w.dtype(), w.data(), o0, o1, n, lanes);
                        int r = 0;
                        for (; r + 2 <= rows; r += 2) {
                            QuantKernels.tile(w.dtype(), w.data(), o0, o1, xs[r], xs[r + 1], sums[r], sums[r + 1], n, lanes, o4);
                            out[r][j] = o4[0];
                            out[r + 1][j] = o4[1];
                            out[r][j + 1] = o4[2];
                            out[r + 1][j + 1] = o4[3];
                        }
                        for (; r < rows; r++) {
                            out[r][j] = QuantKernels.dot(w.dtype(), w.data(), o0, xs[r], sums[r], null, n, lanes);
                            out[r][j + 1] = QuantKernels.dot(w.dtype(), w.data(), o1, xs[r], sums[r], null, n, lanes);
                        }
                    }
                }
                for (; j < hi; j++) {
                    int r = 0;
                    if (four) for (; r + 4 <= rows; r += 4) QuantKernels.dot4(w.dtype(), w.data(), j * rowBytes, xs, sums, r, n, lanes, out, j);
                    for (; r < rows; r++) out[r][j] = QuantKernels.dot(w.dtype(), w.data(), j * rowBytes, xs[r], sums[r], ops[r].q(), n, lanes);
                }
            });
            return;
        }
        if (w.dtype() != DType.BF16) {
            par.forRange(d, Math.max(1, GRAIN_MACS / (n * rows)), (lo, hi) -> {
                for (int j = lo; j < hi; j++) {
                    long start = (long) j * n;
                    for (int r = 0; r < rows; r++) out[r][j] = ops[r].dot(w, start, n);
                }
            });
            return;
        }
        // BF16: 4x2 register tiles. Inputs in blocks that stay in L2 (about 512 KB of them), the weights streamed
        // once per block; within a block four weight rows at a time against every pair of inputs of the block.
        long rowBytes = (long) n * 2;
        int limit = Math.max(4, ((1 << 19) / (8 * n)) & ~3), block = rows <= limit ? rows : limit;
        for (int r0 = 0; r0 < rows; r0 += block) {
            int from = r0, to = Math.min(rows, r0 + block);
            par.forRange((d + 3) / 4, Math.max(1, GRAIN_MACS / (4 * n * (to - from))), (lo, hi) -> {
                for (int t = lo; t < hi; t++) {
                    int j = 4 * t;
                    if (j + 4 > d) {
                        for (; j < d; j++) for (int r = from; r < to; r++) out[r][j] = ops[r].dot(w, (long) j * n, n);
                        continue;
                    }
                    long off = j * rowBytes;
                    int r = from;
                    for (; r + 2 <= to; r += 2) tileBf16x4x2(w.data(), off, rowBytes, ops[r], ops[r + 1], n, out[r], out[r + 1], j);
                    for (; r < to; r++) for (int k = 0; k < 4; k++) out[r][j + k] = ops[r].dot(w, (long) (j + k) * n, n);
                }
            });
        }
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
        dots(q, qo, kc, kvOff, kvDim, hd, n, scores, 0);
        for (int t = 0; t < n; t++) scores[t] *= scale;
        softmax(scores, 0, n);
        java.util.Arrays.fill(out, oo, oo + hd, 0f);
        axpys(scores, vc, kvOff, kvDim, hd, n, out, oo);
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
