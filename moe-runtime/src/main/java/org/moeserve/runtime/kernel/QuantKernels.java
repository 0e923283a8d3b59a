package org.moeserve.runtime.kernel;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;
import org.moeserve.runtime.model.Blocks;
import org.moeserve.runtime.model.DType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Dot products of one quantized weight row (llama.cpp's block layouts, {@link Blocks}) with an fp32 input.
 *
 * <p>Activations stay fp32: each block's integers are widened in registers (bytes to floats, {@code B2F}) and
 * multiplied into a per-block vector accumulator, which is scaled once per block (one FMA by the block's scale). That
 * is the choice llama.cpp does not make: it quantizes the activations to Q8 blocks and multiplies integers with
 * VNNI/maddubs instructions. The Vector API has no widening integer dot product (no {@code vpdpbusd}, no
 * {@code pmaddubsw}): int8 products go through widened 16-bit lanes, no fewer instructions per weight than the float
 * path, and the rounding of the activations costs accuracy. Both are measured ({@code moe bench quant}: Q8_0 13.6
 * against 11.5 billion weights/s on one thread; bench/analysis.md has the accuracy); {@link #dotQ8_0Int} is the int8
 * path, used only for that comparison and behind {@code MOE_ACTIVATIONS=q8}.
 *
 * <p>Summation order, fixed by the vector length alone (so decode and batches agree to the bit, as in
 * {@link Kernels}): blocks in order; within a block, vector chunks in order into a fresh block accumulator; the
 * block accumulator times its scale added into the row accumulator; lanes summed in lane order at the end. Q4_K's
 * group minimums contribute {@code dmin m sum(x over the group)}, accumulated separately in group order from
 * per-32 sums of x computed once per input ({@link #sums32}) and subtracted at the end.
 *
 * <p>Q5_0 (only used where a row is not 256 wide, so never in a large model) decodes each block with the scalar
 * reference and then multiplies it as fp32. So does every format when the vector length is below 8 floats.
 */
public final class QuantKernels {
    private QuantKernels() {}

    private static final VectorSpecies<Float> F = Kernels.F;
    private static final int L = Kernels.L;
    private static final boolean VECTOR = L == 8 || L == 16;
    private static final VectorSpecies<Byte> B = VECTOR ? VectorSpecies.of(byte.class, VectorShape.forBitSize(L * 8)) : null;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(LE);
    /** Per-thread scratch of the dot kernels: lane sums and group scales, unpacked values. Allocate one per row range. */
    public static final class Scratch {
        final float[] f = new float[Math.max(L, 16)];
        final byte[] q = new byte[256];
        private float[] row = new float[0];

        float[] row(int n) {
            if (row.length < n) row = new float[n];
            return row;
        }
    }

    /** Per-32 sums of x (for Q4_K's minimums), computed once per input vector. */
    public static float[] sums32(float[] x, int n) {
        float[] s = new float[n / 32];
        for (int g = 0; g < s.length; g++) {
            float a = 0;
            for (int j = 0; j < 32; j++) a += x[32 * g + j];
            s[g] = a;
        }
        return s;
    }

    /** Row at byte {@code off} of w (type t, n elements) against x; {@code sums} from {@link #sums32} for Q4_K. */
    public static float dot(DType t, MemorySegment w, long off, float[] x, float[] sums, byte[] xq, int n, Scratch s) {
        if (!VECTOR || t == DType.Q5_0) return dotDecoded(t, w, off, x, n);
        if (xq != null && t == DType.Q8_0) return dotQ8_0Int(w, off, xq, sums, n, s.f);
        return switch (t) {
            case Q8_0 -> dotQ8_0(w, off, x, n, s.f);
            case Q4_0 -> dotQ4_0(w, off, x, n, s.f);
            case Q4_K -> dotQ4_K(w, off, x, sums, n, s);
            case Q6_K -> dotQ6_K(w, off, x, n, s);
            default -> throw new IllegalArgumentException(t + " is not a block format");
        };
    }

    private static float half(MemorySegment w, long off) { return Float.float16ToFloat(w.get(I16, off)); }

    private static FloatVector widen(ByteVector v) { return (FloatVector) v.convertShape(VectorOperators.B2F, F, 0); }

    /** The lanes of acc added in lane order (through {@code lanes}, at least L long). */
    private static float laneSum(FloatVector acc, float[] lanes) {
        acc.intoArray(lanes, 0);
        float s = 0;
        for (int i = 0; i < L; i++) s += lanes[i];
        return s;
    }

    static float dotQ8_0(MemorySegment w, long off, float[] x, int n, float[] lanes) {
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0, nb = n / 32; b < nb; b++) {
            long p = off + 34L * b;
            FloatVector blk;
            if (L == 16) { // the block's two chunks written out (the loop's operations, same bits): C2 kept the two-trip loop
                blk = widen(ByteVector.fromMemorySegment(B, w, p + 18, LE)).fma(FloatVector.fromArray(F, x, 32 * b + 16),
                        widen(ByteVector.fromMemorySegment(B, w, p + 2, LE)).fma(FloatVector.fromArray(F, x, 32 * b), FloatVector.zero(F)));
            } else {
                blk = FloatVector.zero(F);
                for (int k = 0; k < 32; k += L) {
                    blk = widen(ByteVector.fromMemorySegment(B, w, p + 2 + k, LE)).fma(FloatVector.fromArray(F, x, 32 * b + k), blk);
                }
            }
            acc = blk.fma(FloatVector.broadcast(F, half(w, p)), acc);
        }
        return laneSum(acc, lanes);
    }

    static float dotQ4_0(MemorySegment w, long off, float[] x, int n, float[] lanes) {
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0, nb = n / 32; b < nb; b++) {
            long p = off + 18L * b;
            FloatVector blk = FloatVector.zero(F);
            for (int k = 0; k < 16; k += L) {
                ByteVector v = ByteVector.fromMemorySegment(B, w, p + 2 + k, LE);
                blk = widen(v.and((byte) 15).sub((byte) 8)).fma(FloatVector.fromArray(F, x, 32 * b + k), blk);
                blk = widen(hiNibble(v).sub((byte) 8)).fma(FloatVector.fromArray(F, x, 32 * b + 16 + k), blk);
            }
            acc = blk.fma(FloatVector.broadcast(F, half(w, p)), acc);
        }
        return laneSum(acc, lanes);
    }

    /**
     * Q4_K: per super-block, the eight 6-bit group scales and minimums unpacked from their 12 bytes by SWAR
     * ({@link #q4kScales}, {@link #q4kMins}); the minimums' share {@code dmin sum_g m_g sum(x over group g)} added to
     * {@code mins}; then the 128 bytes of nibbles, each 32-byte chunk giving two groups, each group's accumulator
     * scaled by d times its scale.
     */
    static float dotQ4_K(MemorySegment w, long off, float[] x, float[] sums, int n, Scratch s) {
        FloatVector acc = FloatVector.zero(F);
        float mins = 0;
        for (int b = 0, nb = n / 256; b < nb; b++) {
            long p = off + 144L * b, s0 = w.get(I64, p + 4);
            int s8 = w.get(I32, p + 12);
            float d = half(w, p);
            long sc = q4kScales(s0, s8);
            mins += half(w, p + 2) * minDot(q4kMins(s0, s8), sums, 8 * b);
            for (int c = 0; c < 4; c++) {
                long qs = p + 16 + 32 * c;
                int xb = 256 * b + 64 * c;
                FloatVector lo, hi;
                if (L == 16) { // written out, as in dotQ8_0
                    ByteVector v0 = ByteVector.fromMemorySegment(B, w, qs, LE), v1 = ByteVector.fromMemorySegment(B, w, qs + 16, LE);
                    lo = widen(v1.and((byte) 15)).fma(FloatVector.fromArray(F, x, xb + 16), widen(v0.and((byte) 15)).fma(FloatVector.fromArray(F, x, xb), FloatVector.zero(F)));
                    hi = widen(hiNibble(v1)).fma(FloatVector.fromArray(F, x, xb + 48), widen(hiNibble(v0)).fma(FloatVector.fromArray(F, x, xb + 32), FloatVector.zero(F)));
                } else {
                    lo = FloatVector.zero(F);
                    hi = lo;
                    for (int k = 0; k < 32; k += L) {
                        ByteVector v = ByteVector.fromMemorySegment(B, w, qs + k, LE);
                        lo = widen(v.and((byte) 15)).fma(FloatVector.fromArray(F, x, xb + k), lo);
                        hi = widen(hiNibble(v)).fma(FloatVector.fromArray(F, x, xb + 32 + k), hi);
                    }
                }
                acc = hi.fma(FloatVector.broadcast(F, d * (int) ((sc >>> (16 * c + 8)) & 0xFF)),
                        lo.fma(FloatVector.broadcast(F, d * (int) ((sc >>> (16 * c)) & 0xFF)), acc));
            }
        }
        return laneSum(acc, s.f) - mins;
    }

    /**
     * Q4_K's eight 6-bit group scales, one per byte of the result, from its 12 packed bytes (s0: bytes 0-7, s8: bytes
     * 8-11): groups 0-3 are the low 6 bits of bytes 0-3; groups 4-7 the low nibble of bytes 8-11 with the top two bits
     * of bytes 0-3 above it. SWAR on the two words instead of 16 byte extractions.
     */
    static long q4kScales(long s0, int s8) {
        long lo = s0 & 0x3F3F3F3FL, hi = (s8 & 0x0F0F0F0FL) | ((s0 >>> 6) & 0x03030303L) << 4;
        return lo | hi << 32;
    }

    /** The eight 6-bit minimums, one per byte: bytes 4-7's low 6 bits; the high nibbles of 8-11 with bytes 4-7's top bits. */
    static long q4kMins(long s0, int s8) {
        long lo = (s0 >>> 32) & 0x3F3F3F3FL, hi = ((s8 >>> 4) & 0x0F0F0F0FL) | ((s0 >>> 38) & 0x03030303L) << 4;
        return lo | hi << 32;
    }

    /** sum over the 8 groups of min_g * sums[o + g], in group order. */
    private static float minDot(long mins, float[] sums, int o) {
        float m = 0;
        for (int g = 0; g < 8; g++) m += (int) ((mins >>> (8 * g)) & 0xFF) * sums[o + g];
        return m;
    }

    /**
     * Q6_K in two steps per super-block: {@link #unpackQ6} rebuilds the 256 signed 6-bit values as bytes in
     * {@code s.q} (a separate method: building them and widening them in one, with no store between, was compiled
     * into boxed vectors, 1-2.6 Gw/s, and again on 2026-12-01 at 0.8-1.5), then each chunk is widened and multiplied by
     * d times its group's scale exactly as {@link #decodeQ6_K} makes the row, and multiplied into the sum at once in
     * the row's order: the bits of the decoded row's dot (what batches take), without storing the row (4.1 -> 5.7
     * Gw/s on one thread, 8.0 -> 11.5 on two; bench/analysis.md).
     */
    static float dotQ6_K(MemorySegment w, long off, float[] x, int n, Scratch s) {
        float[] sc = s.f;
        byte[] q = s.q;
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0, nb = n / 256; b < nb; b++) {
            q6Block(w, off + 210L * b, s);
            int xb = 256 * b;
            // decodeQ6_K's values in its order, each multiplied into the sum at once rather than stored as a row
            for (int g = 0; g < 16; g++) {
                FloatVector scale = FloatVector.broadcast(F, sc[g]);
                for (int k = 0; k < 16; k += L) {
                    acc = widen(ByteVector.fromArray(B, q, 16 * g + k)).mul(scale).fma(FloatVector.fromArray(F, x, xb + 16 * g + k), acc);
                }
            }
        }
        return Kernels.treeSum(acc);
    }

    /** Super-block p of a Q6_K row: d times each group's scale into {@code s.f}, the values minus 32 into {@code s.q}. */
    private static void q6Block(MemorySegment w, long p, Scratch s) {
        float d = half(w, p + 208);
        for (int g = 0; g < 16; g++) s.f[g] = d * w.get(ValueLayout.JAVA_BYTE, p + 192 + g);
        unpackQ6(w, p, s.q);
    }

    /**
     * The Q6_K row at off as fp32 in {@code s.row} (returned): per super-block the 256 values rebuilt as bytes
     * ({@link #unpackQ6}), each group of 16 widened and multiplied by d times its scale. Decode then takes one fp32
     * dot with the input; prefill and batches decode the row once and take that same dot with every input, so each
     * output has the same bits either way and the decoding is paid once per row, not once per input.
     */
    static float[] decodeQ6_K(MemorySegment w, long off, int n, Scratch s) {
        float[] sc = s.f, row = s.row(n);
        byte[] q = s.q;
        for (int b = 0, nb = n / 256; b < nb; b++) {
            q6Block(w, off + 210L * b, s);
            int xb = 256 * b;
            for (int g = 0; g < 16; g++) {
                FloatVector scale = FloatVector.broadcast(F, sc[g]);
                for (int k = 0; k < 16; k += L) widen(ByteVector.fromArray(B, q, 16 * g + k)).mul(scale).intoArray(row, xb + 16 * g + k);
            }
        }
        return row;
    }

    /** Whether rows of t are decoded to fp32 once and then multiplied ({@link #decodeQ6_K}): batches reuse the decoded row. */
    public static boolean decodesRows(DType t) { return VECTOR && t == DType.Q6_K; }

    /** Row at off decoded to fp32 (see {@link #decodesRows}), in the scratch's row buffer. */
    public static float[] decodeRow(DType t, MemorySegment w, long off, int n, Scratch s) {
        if (t != DType.Q6_K) throw new IllegalArgumentException(t + " is multiplied without decoding its rows");
        return decodeQ6_K(w, off, n, s);
    }

    /** The 256 values of the Q6_K super-block at p, minus 32, as bytes in q (element order). */
    private static void unpackQ6(MemorySegment w, long p, byte[] q) {
        for (int h = 0; h < 2; h++) {
            for (int l = 0; l < 32; l += L) {
                long ql = p + 64 * h + l;
                int o = 128 * h + l;
                ByteVector a = ByteVector.fromMemorySegment(B, w, ql, LE);
                ByteVector c = ByteVector.fromMemorySegment(B, w, ql + 32, LE);
                ByteVector hb = ByteVector.fromMemorySegment(B, w, p + 128 + 32 * h + l, LE);
                a.and((byte) 15).or(shl(hb, 4).and((byte) 0x30)).sub((byte) 32).intoArray(q, o);
                c.and((byte) 15).or(shl(hb, 2).and((byte) 0x30)).sub((byte) 32).intoArray(q, o + 32);
                a.lanewise(VectorOperators.LSHR, 4).or(hb.and((byte) 0x30)).sub((byte) 32).intoArray(q, o + 64);
                c.lanewise(VectorOperators.LSHR, 4).or(hb.lanewise(VectorOperators.LSHR, 2).and((byte) 0x30)).sub((byte) 32).intoArray(q, o + 96);
            }
        }
    }

    /**
     * One weight row against four inputs (prefill, batches): each chunk of weights is loaded and widened once for the
     * four. Per input the operations and their order are those of the one-input kernel, so each output has the bits
     * {@link #dot} gives it alone (a token's result does not depend on its batch).
     */
    public static void dot4(DType t, MemorySegment w, long off, float[][] x, float[][] sums, int r, int n, Scratch s, float[][] out, int j) {
        switch (t) {
            case Q4_0 -> dotQ4_0x4(w, off, x[r], x[r + 1], x[r + 2], x[r + 3], n, s, out, r, j);
            case Q4_K -> dotQ4_Kx4(w, off, x[r], x[r + 1], x[r + 2], x[r + 3], sums[r], sums[r + 1], sums[r + 2], sums[r + 3], n, s, out, r, j);
            default -> {
                for (int i = 0; i < 4; i++) out[r + i][j] = dot(t, w, off, x[r + i], sums == null ? null : sums[r + i], null, n, s);
            }
        }
    }

    /** Whether {@link #dot4} has a four-input kernel for t (and these settings). */
    public static boolean hasDot4(DType t) {
        // Q8_0 measured no faster with four inputs (15 against 17 G products/s: its single-input loop is already bound by
        // loads and FMAs); a four-input Q6_K was compiled into boxed vectors
        return VECTOR && (t == DType.Q4_0 || t == DType.Q4_K);
    }

    private static void store4(FloatVector a0, FloatVector a1, FloatVector a2, FloatVector a3, float sub0, float sub1, float sub2,
                               float sub3, Scratch s, float[][] out, int r, int j) {
        out[r][j] = laneSum(a0, s.f) - sub0;
        out[r + 1][j] = laneSum(a1, s.f) - sub1;
        out[r + 2][j] = laneSum(a2, s.f) - sub2;
        out[r + 3][j] = laneSum(a3, s.f) - sub3;
    }

    static void dotQ4_0x4(MemorySegment w, long off, float[] x0, float[] x1, float[] x2, float[] x3, int n, Scratch s, float[][] out, int r, int j) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (int b = 0, nb = n / 32; b < nb; b++) {
            long p = off + 18L * b;
            FloatVector k0 = FloatVector.zero(F), k1 = k0, k2 = k0, k3 = k0;
            for (int k = 0; k < 16; k += L) {
                ByteVector v = ByteVector.fromMemorySegment(B, w, p + 2 + k, LE);
                FloatVector lo = widen(v.and((byte) 15).sub((byte) 8)), hi = widen(hiNibble(v).sub((byte) 8));
                int xi = 32 * b + k;
                k0 = hi.fma(FloatVector.fromArray(F, x0, xi + 16), lo.fma(FloatVector.fromArray(F, x0, xi), k0));
                k1 = hi.fma(FloatVector.fromArray(F, x1, xi + 16), lo.fma(FloatVector.fromArray(F, x1, xi), k1));
                k2 = hi.fma(FloatVector.fromArray(F, x2, xi + 16), lo.fma(FloatVector.fromArray(F, x2, xi), k2));
                k3 = hi.fma(FloatVector.fromArray(F, x3, xi + 16), lo.fma(FloatVector.fromArray(F, x3, xi), k3));
            }
            FloatVector d = FloatVector.broadcast(F, half(w, p));
            a0 = k0.fma(d, a0);
            a1 = k1.fma(d, a1);
            a2 = k2.fma(d, a2);
            a3 = k3.fma(d, a3);
        }
        store4(a0, a1, a2, a3, 0, 0, 0, 0, s, out, r, j);
    }

    static void dotQ4_Kx4(MemorySegment w, long off, float[] x0, float[] x1, float[] x2, float[] x3, float[] s0, float[] s1,
                          float[] s2, float[] s3, int n, Scratch s, float[][] out, int r, int j) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        float m0 = 0, m1 = 0, m2 = 0, m3 = 0;
        for (int b = 0, nb = n / 256; b < nb; b++) {
            long p = off + 144L * b, w0 = w.get(I64, p + 4);
            int w8 = w.get(I32, p + 12);
            float d = half(w, p);
            long sc = q4kScales(w0, w8);
            long mn = q4kMins(w0, w8);
            float dmin = half(w, p + 2);
            m0 += dmin * minDot(mn, s0, 8 * b);
            m1 += dmin * minDot(mn, s1, 8 * b);
            m2 += dmin * minDot(mn, s2, 8 * b);
            m3 += dmin * minDot(mn, s3, 8 * b);
            for (int c = 0; c < 4; c++) {
                long qs = p + 16 + 32 * c;
                int xb = 256 * b + 64 * c;
                FloatVector l0 = FloatVector.zero(F), l1 = l0, l2 = l0, l3 = l0, h0 = l0, h1 = l0, h2 = l0, h3 = l0;
                for (int k = 0; k < 32; k += L) {
                    ByteVector v = ByteVector.fromMemorySegment(B, w, qs + k, LE);
                    FloatVector lo = widen(v.and((byte) 15)), hi = widen(hiNibble(v));
                    int xl = xb + k, xh = xb + 32 + k;
                    l0 = lo.fma(FloatVector.fromArray(F, x0, xl), l0);
                    h0 = hi.fma(FloatVector.fromArray(F, x0, xh), h0);
                    l1 = lo.fma(FloatVector.fromArray(F, x1, xl), l1);
                    h1 = hi.fma(FloatVector.fromArray(F, x1, xh), h1);
                    l2 = lo.fma(FloatVector.fromArray(F, x2, xl), l2);
                    h2 = hi.fma(FloatVector.fromArray(F, x2, xh), h2);
                    l3 = lo.fma(FloatVector.fromArray(F, x3, xl), l3);
                    h3 = hi.fma(FloatVector.fromArray(F, x3, xh), h3);
                }
                FloatVector dl = FloatVector.broadcast(F, d * (int) ((sc >>> (16 * c)) & 0xFF));
                FloatVector dh = FloatVector.broadcast(F, d * (int) ((sc >>> (16 * c + 8)) & 0xFF));
                a0 = h0.fma(dh, l0.fma(dl, a0));
                a1 = h1.fma(dh, l1.fma(dl, a1));
                a2 = h2.fma(dh, l2.fma(dl, a2));
                a3 = h3.fma(dh, l3.fma(dl, a3));
            }
        }
        store4(a0, a1, a2, a3, m0, m1, m2, m3, s, out, r, j);
    }

    /**
     * The road not taken, kept for the benchmark ({@code moe bench quant}): Q8_0 weights against activations quantized
     * to Q8_0 blocks as llama.cpp does ({@link #quantizeQ8}), int8 x int8 widened to 16-bit products (exact: at most
     * 127^2), pairs of products widened to 32-bit sums per block, the block's int sum scaled by both scales.
     */
    public static float dotQ8_0Int(MemorySegment w, long off, byte[] xq, float[] xd, int n, float[] lanes) {
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0, nb = n / 32; b < nb; b++) {
            long p = off + 34L * b;
            IntVector sum = IntVector.zero(I);
            for (int k = 0; k < 32; k += 2 * L) {
                ShortVector wv = (ShortVector) ByteVector.fromMemorySegment(B2, w, p + 2 + k, LE).convertShape(VectorOperators.B2S, S, 0);
                ShortVector xv = (ShortVector) ByteVector.fromArray(B2, xq, 32 * b + k).convertShape(VectorOperators.B2S, S, 0);
                ShortVector pr = wv.mul(xv);
                sum = sum.add(pr.convertShape(VectorOperators.S2I, I, 0)).add(pr.convertShape(VectorOperators.S2I, I, 1));
            }
            acc = ((FloatVector) sum.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, half(w, p) * xd[b]), acc);
        }
        return laneSum(acc, lanes);
    }

    /**
     * Activations quantized to Q8_0 for Q8_0 weights, as llama.cpp does ({@code MOE_ACTIVATIONS=q8} or
     * {@code -Dmoe.activations=q8}); fp32 otherwise. For comparing with llama.cpp, not for accuracy.
     */
    public static final boolean INT8_ACTIVATIONS = "q8".equals(System.getProperty("moe.activations", System.getenv("MOE_ACTIVATIONS")));

    /**
     * x as Q8_0 blocks (int8 values into q, one scale per 32 into d) exactly as llama.cpp's quantize_row_q8_0: scale
     * amax/127, values round(x / scale) (halves away from zero), the scale stored (and used) as fp16.
     */
    public static void quantizeQ8(float[] x, int n, byte[] q, float[] d) {
        for (int b = 0; b < n / 32; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[32 * b + j]));
            float s = amax / 127, inv = s != 0 ? 1 / s : 0;
            d[b] = Float.float16ToFloat(Float.floatToFloat16(s));
            for (int j = 0; j < 32; j++) {
                float v = x[32 * b + j] * inv;
                q[32 * b + j] = (byte) (v < 0 ? -Math.floor(-v + 0.5f) : Math.floor(v + 0.5f));
            }
        }
    }

    private static final VectorSpecies<Integer> I = Kernels.I;
    private static final VectorSpecies<Short> S = VECTOR ? VectorSpecies.of(short.class, F.vectorShape()) : null;
    private static final VectorSpecies<Byte> B2 = VECTOR ? VectorSpecies.of(byte.class, VectorShape.forBitSize(L * 16)) : null;

    /**
     * Bytes shifted left as 16-bit lanes (x86 has no byte shift; C2 leaves a byte LSHL to the Java fallback, boxed).
     * Bits that cross into the next byte are masked off by every caller.
     */
    private static ByteVector shl(ByteVector v, int n) {
        return v.reinterpretAsShorts().lanewise(VectorOperators.LSHL, n).reinterpretAsBytes();
    }

    /** The same for right shifts (a byte LSHR is compiled as widen, shift, pack). */
    private static ByteVector shr(ByteVector v, int n) {
        return v.reinterpretAsShorts().lanewise(VectorOperators.LSHR, n).reinterpretAsBytes();
    }

    /** The high nibble of each byte: a 16-bit shift and a mask. */
    private static ByteVector hiNibble(ByteVector v) { return shr(v, 4).and((byte) 15); }

    private static int scale(MemorySegment w, long sc, int i) { return w.get(ValueLayout.JAVA_BYTE, sc + i); }

    /** Any block format: each block decoded by the scalar reference, then multiplied as fp32 in the same order. */
    static float dotDecoded(DType t, MemorySegment w, long off, float[] x, int n) {
        int be = t.blockElems();
        float[] y = new float[be];
        float s = 0;
        for (int b = 0; b < n / be; b++) {
            Blocks.dequantize(t, w, off + (long) b * t.blockBytes(), be, y, 0);
            s += Kernels.dot(y, 0, x, b * be, be);
        }
        return s;
    }
}
