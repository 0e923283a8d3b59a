package org.moeserve.runtime.kernel;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
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
 * group minimums contribute {@code dmin m sum(x over the group)}, accumulated separately lane by lane (lane g: group
 * g) from per-32 sums of x computed once per input ({@link #sums32}) and subtracted at the end.
 *
 * <p>The K formats are read as words: Q4_K and Q6_K load 4L bytes as int lanes and take the same byte (nibble) of
 * every lane together, a shift, a mask and a convert per L values instead of widening bytes to floats; their values
 * then come out in an order of their own within each 256-value super-block, and x is reordered to match once per
 * input ({@link #kernelInput}). Sums are over the reordered elements, so bits differ from an element-order kernel;
 * decode and batches still agree to the bit.
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
    /** Per-thread scratch of the dot kernels: lane sums, unpacked scales, prepared and decoded rows. Allocate one per row range. */
    public static final class Scratch {
        final float[] f = new float[Math.max(L, 16)];
        /** Q4_K's eight scales (bytes 0-7) and eight minimums (8-15), unpacked for a vector load. */
        final byte[] k = new byte[16];
        /** {@link #tile}'s lanes, four accumulators' worth. */
        final float[] tile = new float[4 * Math.max(L, 16)];
        /** The two rows of {@link #tileRows}, unpacked ({@link #q4kRow}). */
        final float[][] tileRows = {new float[0], new float[0]};

        float[] tileRow(int i, int n) {
            int need = 17 * (n / 256) + L; // minimums, dmins, scales, and room for a full vector store of the last scales
            if (tileRows[i].length < need) tileRows[i] = new float[need];
            return tileRows[i];
        }

        private final float[][] rows = {new float[0], new float[0]};

        /** Decoded-row buffer i (of two; {@link #tileRows}). */
        float[] row(int i, int n) {
            if (rows[i].length < n) rows[i] = new float[n];
            return rows[i];
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
     * Q4_K on words: per super-block, the eight 6-bit group scales and minimums unpacked by SWAR ({@link #q4kScales},
     * {@link #q4kMins}) and widened to floats in registers ({@link #groupBytes}: a scalar loop over them cost a fifth of
     * the kernel); the minimums' share {@code dmin m_g sum(x over group g)} accumulated lane by lane (group g in lane g)
     * and summed at the end; the 128 bytes of nibbles read as int lanes, 4L bytes at a time ({@link #SPAN} values), and
     * each of the eight nibbles of an int lane shifted down, masked and converted: the values come out in the order
     * {@link #kernelInput} puts x in. Lane i of a load belongs to the group pair of its 32-byte chunk, so each lane's
     * sum is scaled by that chunk's pair of scales (a rearrangement of the scale vector). Against widening bytes to
     * floats: 9.7 -> 11.6 billion weights/s on one thread (bench/analysis.md).
     */
    static float dotQ4_K(MemorySegment w, long off, float[] xp, float[] sums, int n, Scratch s) {
        FloatVector acc = FloatVector.zero(F), macc = FloatVector.zero(F8);
        for (int b = 0, nb = n / 256; b < nb; b++) {
            long p = off + 144L * b;
            FloatVector sv = q4kGroups(w, p, s.k);
            macc = groupBytes(s.k, 8, F8).mul(FloatVector.fromArray(F8, sums, 8 * b)).fma(FloatVector.broadcast(F8, half(w, p + 2)), macc);
            for (int sp = 0; sp < 256 / SPAN; sp++) {
                IntVector v = IntVector.fromMemorySegment(I, w, p + 16 + 4L * L * sp, LE);
                int xb = 256 * b + SPAN * sp;
                FloatVector lo = FloatVector.zero(F), hi = lo;
                for (int t = 0; t < 4; t++) {
                    lo = nibble(v, 8 * t).fma(FloatVector.fromArray(F, xp, xb + 2 * L * t), lo);
                    hi = nibble(v, 8 * t + 4).fma(FloatVector.fromArray(F, xp, xb + 2 * L * t + L), hi);
                }
                acc = hi.fma(sv.rearrange(Q4K_HI[sp]), lo.fma(sv.rearrange(Q4K_LO[sp]), acc));
            }
        }
        return laneSum(acc, s.f) - laneSum8(macc, s.f);
    }

    /** Values a Q4_K or Q6_K kernel takes from one int load (4L bytes, four values per int lane and nibble half). */
    static final int SPAN = 8 * L;
    private static final VectorSpecies<Float> F8 = FloatVector.SPECIES_256;
    private static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
    private static final java.lang.invoke.VarHandle LONGS = java.lang.invoke.MethodHandles.byteArrayViewVarHandle(long[].class, LE);
    /** Per span of a Q4_K super-block, the scale of each lane's group: the even (low nibble) and odd group of its chunk. */
    private static final VectorShuffle<Float>[] Q4K_LO = q4kShuffles(0), Q4K_HI = q4kShuffles(1);

    @SuppressWarnings("unchecked")
    private static VectorShuffle<Float>[] q4kShuffles(int odd) {
        if (!VECTOR) return null;
        VectorShuffle<Float>[] r = new VectorShuffle[256 / SPAN];
        for (int sp = 0; sp < r.length; sp++) {
            int span = sp;
            r[sp] = VectorShuffle.fromOp(F, i -> 2 * ((4 * L * span + 4 * i) / 32) + odd);
        }
        return r;
    }

    /** The nibble at bit {@code shift} of each int lane, as floats. */
    private static FloatVector nibble(IntVector v, int shift) {
        return (FloatVector) v.lanewise(VectorOperators.LSHR, shift).and(15).convert(VectorOperators.I2F, 0);
    }

    /**
     * Super-block p's eight group scales times d as floats in lanes 0-7; its eight minimums left as bytes in
     * {@code k[8..15]} for {@link #groupBytes}.
     */
    private static FloatVector q4kGroups(MemorySegment w, long p, byte[] k) {
        long s0 = w.get(I64, p + 4);
        int s8 = w.get(I32, p + 12);
        LONGS.set(k, 0, q4kScales(s0, s8));
        LONGS.set(k, 8, q4kMins(s0, s8));
        return groupBytes(k, 0, F).mul(half(w, p));
    }

    /** Eight unsigned bytes of k from o as floats in the first eight lanes of species sp (the rest zero). */
    private static FloatVector groupBytes(byte[] k, int o, VectorSpecies<Float> sp) {
        return (FloatVector) ByteVector.fromArray(B8, k, o).convertShape(VectorOperators.B2F, sp, 0);
    }

    /** The eight lanes of v added in lane order. */
    private static float laneSum8(FloatVector v, float[] lanes) {
        v.intoArray(lanes, 0);
        float r = 0;
        for (int i = 0; i < 8; i++) r += lanes[i];
        return r;
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


    /**
     * Q6_K on words, one pass: per super-block the sixteen group scales times d widened in registers (a scalar loop over
     * them cost a third of the kernel); per span the low bits read as int lanes (4L bytes) and the matching high bits
     * (the 32 bytes of qh, duplicated and shifted where one load covers both 32-byte halves of ql); the four low-nibble
     * and four high-nibble 6-bit values of each int lane combined in two words ({@link #q6Low}, {@link #q6High}), then one shift and
     * mask per value, converted and scaled as {@code s q - 32 s} (one rounding: the bits of {@code (q - 32) s}). Each
     * value is multiplied into the sum at once, in the order {@link #kernelInput} puts x in, which is the order of the
     * row {@link #decodeQ6_K} writes, so a batch (the decoded row's dot with each input) has decode's bits. Against
     * rebuilding the values as bytes and widening them: 5.5 -> 9 billion weights/s on one thread (bench/analysis.md).
     */
    static float dotQ6_K(MemorySegment w, long off, float[] xp, int n, Scratch s) {
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0, nb = n / 256; b < nb; b++) {
            long p = off + 210L * b;
            for (int sp = 0; sp < 256 / SPAN; sp++) {
                IntVector a = qlWord(w, p, sp), hh = qhWord(w, p, sp), clo = q6Low(a, hh), chi = q6High(a, hh);
                FloatVector sv = q6Scales(w, p, sp), s0 = sv.rearrange(Q6K_LO[sp]), s1 = sv.rearrange(Q6K_HI[sp]);
                FloatVector m0 = s0.mul(-32f), m1 = s1.mul(-32f);
                int xb = 256 * b + SPAN * sp;
                for (int t = 0; t < 4; t++) {
                    acc = six(clo, 8 * t).fma(s0, m0).fma(FloatVector.fromArray(F, xp, xb + 2 * L * t), acc);
                    acc = six(chi, 8 * t).fma(s1, m1).fma(FloatVector.fromArray(F, xp, xb + 2 * L * t + L), acc);
                }
            }
        }
        return Kernels.treeSum(acc);
    }

    private static final VectorShuffle<Float>[] Q6K_LO = q6kShuffles(0), Q6K_HI = q6kShuffles(1);
    private static final VectorShuffle<Integer> QH_LOW = VECTOR ? VectorShuffle.fromOp(Kernels.I, i -> i % 8) : null;
    private static final VectorShuffle<Integer> QH_HIGH = VECTOR ? VectorShuffle.fromOp(Kernels.I, i -> 8 + i % 8) : null;
    /** Lanes 8-15 of a 16-lane qh word serve ql's second 32 bytes: their bits 2-3 and 6-7. */
    private static final IntVector QH_SHIFT = VECTOR ? IntVector.fromArray(Kernels.I, java.util.stream.IntStream.range(0, L).map(i -> i < 8 ? 0 : 2).toArray(), 0) : null;

    /**
     * Per span, the scale vector's lane for each value lane: lane i of span sp holds elements of group
     * {@code 8h + 4 nib + (k L + i) / 4} (h the 128-value half, k the span within it); the vector holds all 16 groups
     * (16 lanes) or the half's 8 (8 lanes).
     */
    @SuppressWarnings("unchecked")
    private static VectorShuffle<Float>[] q6kShuffles(int nib) {
        if (!VECTOR) return null;
        VectorShuffle<Float>[] r = new VectorShuffle[256 / SPAN];
        int perHalf = 128 / SPAN;
        for (int sp = 0; sp < r.length; sp++) {
            int h = sp / perHalf, k = sp % perHalf;
            r[sp] = VectorShuffle.fromOp(F, i -> (L == 16 ? 8 * h : 0) + 4 * nib + (k * L + i) / 4);
        }
        return r;
    }

    /**
     * Span sp's group scales times d, widened in registers: the super-block's 16 (16 lanes) or its half's 8 (8 lanes),
     * spread over the value lanes by {@link #q6kShuffles}.
     */
    private static FloatVector q6Scales(MemorySegment w, long p, int sp) {
        long half = L == 16 || sp * SPAN < 128 ? 0 : L;
        return widen(ByteVector.fromMemorySegment(B, w, p + 192 + half, LE)).mul(half(w, p + 208));
    }

    /** Span sp's low bits of the Q6_K super-block at p: 4L bytes of ql. */
    private static IntVector qlWord(MemorySegment w, long p, int sp) {
        int h = sp * SPAN / 128, k = sp * SPAN % 128 / SPAN;
        return IntVector.fromMemorySegment(I, w, p + 64L * h + 4L * L * k, LE);
    }

    /**
     * Span sp's high bits, lane for lane with {@link #qlWord}: qh's 32 bytes of the half serve both 32-byte halves of
     * ql (bits 0-1 and 4-5 for the first, 2-3 and 6-7 for the second), so they are shifted down by 2 for the second.
     */
    private static IntVector qhWord(MemorySegment w, long p, int sp) {
        int h = sp * SPAN / 128, k = sp * SPAN % 128 / SPAN;
        return L == 16
                ? IntVector.fromMemorySegment(I, w, p + 128, LE).rearrange(h == 0 ? QH_LOW : QH_HIGH).lanewise(VectorOperators.LSHR, QH_SHIFT)
                : IntVector.fromMemorySegment(I, w, p + 128 + 32L * h, LE).lanewise(VectorOperators.LSHR, 2 * k);
    }

    /** Byte t of each lane: the 6-bit value of ql's low nibble t with its two qh bits above it. */
    private static IntVector q6Low(IntVector ql, IntVector qh) {
        return ql.and(0x0F0F0F0F).or(qh.lanewise(VectorOperators.LSHL, 4).and(0x30303030));
    }

    /** Byte t of each lane: the 6-bit value of ql's high nibble t. */
    private static IntVector q6High(IntVector ql, IntVector qh) {
        return ql.lanewise(VectorOperators.LSHR, 4).and(0x0F0F0F0F).or(qh.and(0x30303030));
    }

    /** The 6 bits at {@code shift} of each int lane, as floats. */
    private static FloatVector six(IntVector v, int shift) {
        return (FloatVector) v.lanewise(VectorOperators.LSHR, shift).and(0x3F).convert(VectorOperators.I2F, 0);
    }

    /**
     * The Q6_K row at off as fp32 in {@code row} (returned), in {@link #kernelInput}'s order: exactly the values
     * {@link #dotQ6_K} multiplies, so batches ({@link #tileRows}) decode a row once and take the plain fp32 dot with
     * each (reordered) input, and each output has decode's bits.
     */
    static float[] decodeQ6_K(MemorySegment w, long off, int n, float[] row) {
        for (int b = 0, nb = n / 256; b < nb; b++) {
            long p = off + 210L * b;
            for (int sp = 0; sp < 256 / SPAN; sp++) {
                IntVector a = qlWord(w, p, sp), hh = qhWord(w, p, sp), clo = q6Low(a, hh), chi = q6High(a, hh);
                FloatVector sv = q6Scales(w, p, sp), s0 = sv.rearrange(Q6K_LO[sp]), s1 = sv.rearrange(Q6K_HI[sp]);
                FloatVector m0 = s0.mul(-32f), m1 = s1.mul(-32f);
                int xb = 256 * b + SPAN * sp;
                for (int t = 0; t < 4; t++) {
                    six(clo, 8 * t).fma(s0, m0).intoArray(row, xb + 2 * L * t);
                    six(chi, 8 * t).fma(s1, m1).intoArray(row, xb + 2 * L * t + L);
                }
            }
        }
        return row;
    }

    /**
     * One weight row against four inputs (prefill, batches): each chunk of weights is loaded and widened once for the
     * four. Per input the operations and their order are those of the one-input kernel, so each output has the bits
     * {@link #dot} gives it alone (a token's result does not depend on its batch).
     */
    public static void dot4(DType t, MemorySegment w, long off, float[][] x, float[][] sums, int r, int n, Scratch s, float[][] out, int j) {
        switch (t) {
            case Q4_0 -> dotQ4_0x4(w, off, x[r], x[r + 1], x[r + 2], x[r + 3], n, s, out, r, j);
            default -> {
                for (int i = 0; i < 4; i++) out[r + i][j] = dot(t, w, off, x[r + i], sums == null ? null : sums[r + i], null, n, s);
            }
        }
    }

    /**
     * Whether {@link #tile} has a two-row, two-input kernel for t: Q4_K, Q8_0 and Q6_K (32 inputs of 2048 on one thread:
     * Q4_K 14.5-15 -> 20-22 billion products/s, Q8_0 14.7 -> 21.6-24, Q6_K 13-15.6 -> 27.4-27.9, against one input at
     * a time).
     */
    public static boolean hasTile(DType t) {
        return VECTOR && (t == DType.Q4_K || t == DType.Q6_K || (t == DType.Q8_0 && !INT8_ACTIVATIONS));
    }

    /**
     * Prepares two weight rows (at byte offsets off0 and off1) for {@link #tile}, once for every pair of inputs that
     * follows: Q4_K's group scales, minimums and dmins unpacked, Q6_K's rows decoded ({@link #decodeQ6_K}); nothing for
     * Q8_0, whose scales are read in the loop.
     */
    public static void tileRows(DType t, MemorySegment w, long off0, long off1, int n, Scratch s) {
        switch (t) {
            case Q8_0 -> { }
            case Q4_K -> {
                q4kRow(w, off0, n, s.tileRow(0, n), s.k);
                q4kRow(w, off1, n, s.tileRow(1, n), s.k);
            }
            case Q6_K -> {
                decodeQ6_K(w, off0, n, s.row(0, n));
                decodeQ6_K(w, off1, n, s.row(1, n));
            }
            default -> throw new IllegalArgumentException(t + " has no two-by-two kernel");
        }
    }

    /**
     * The two rows of the last {@link #tileRows} against two inputs (kernel inputs x0, x1 with their per-32 sums):
     * out[0] = row 0 . x0, out[1] = row 0 . x1, out[2] = row 1 . x0, out[3] = row 1 . x1. Each output takes exactly the
     * operations of {@link #dotQ4_K} in its order (the same bits as decode), while each int load and its nibbles serve
     * two inputs and each x load two rows: 26-28 billion products/s against 16-17 for the one-input kernel taken input by
     * input (32 inputs of 2048, one thread).
     */
    public static void tile(DType t, MemorySegment w, long off0, long off1, float[] x0, float[] x1, float[] s0, float[] s1, int n,
                            Scratch s, float[] out) {
        if (t == DType.Q6_K) { // the decoded rows' plain fp32 dots: dotQ6_K's bits
            Kernels.dot2x2(s.row(0, n), s.row(1, n), x0, x1, n, out);
            return;
        }
        float[][] g = s.tileRows;
        float[] lanes = s.tile;
        if (t == DType.Q8_0) {
            q8Tile(w, off0, off1, x0, x1, n, lanes);
            for (int o = 0; o < 4; o++) {
                float sum = 0;
                for (int i = 0; i < L; i++) sum += lanes[o * L + i];
                out[o] = sum;
            }
            return;
        }
        // the products apart from the rest: in one method with the scales' unpacking, C2 could not inline every vector
        // call (its node budget) and boxed the vectors
        q4kTile(w, off0, off1, x0, x1, g[0], g[1], Q4K_SCALES * (n / 256), n, lanes);
        for (int o = 0; o < 4; o++) {
            float sum = 0;
            for (int i = 0; i < L; i++) sum += lanes[o * L + i];
            out[o] = sum;
        }
        q4kMinimums2x2(g[0], g[1], s0, s1, n, lanes);
        for (int o = 0; o < 4; o++) out[o] -= laneSum8(lanes, 8 * o);
    }

    /** The lanes of v from o, eight of them, added in lane order (as {@link #laneSum8(FloatVector, float[])}). */
    private static float laneSum8(float[] v, int o) {
        float r = 0;
        for (int i = 0; i < 8; i++) r += v[o + i];
        return r;
    }

    /**
     * The four minimum terms of a two-by-two tile in one pass, each with dotQ4_K's operations on the minimums in
     * their order (so its bits); their lanes into {@code lanes} at 0, 8, 16, 24.
     */
    private static void q4kMinimums2x2(float[] g0, float[] g1, float[] s0, float[] s1, int n, float[] lanes) {
        FloatVector m00 = FloatVector.zero(F8), m01 = m00, m10 = m00, m11 = m00;
        int nb = n / 256;
        for (int b = 0; b < nb; b++) {
            FloatVector r0 = FloatVector.fromArray(F8, g0, 8 * b), r1 = FloatVector.fromArray(F8, g1, 8 * b);
            FloatVector y0 = FloatVector.fromArray(F8, s0, 8 * b), y1 = FloatVector.fromArray(F8, s1, 8 * b);
            FloatVector d0 = FloatVector.broadcast(F8, g0[8 * nb + b]), d1 = FloatVector.broadcast(F8, g1[8 * nb + b]);
            m00 = r0.mul(y0).fma(d0, m00);
            m01 = r0.mul(y1).fma(d0, m01);
            m10 = r1.mul(y0).fma(d1, m10);
            m11 = r1.mul(y1).fma(d1, m11);
        }
        m00.intoArray(lanes, 0);
        m01.intoArray(lanes, 8);
        m10.intoArray(lanes, 16);
        m11.intoArray(lanes, 24);
    }

    /**
     * A Q4_K row unpacked for {@link #tile} into g: the group minimums as floats (eight per super-block), each
     * super-block's dmin, then the group scales times d (eight per super-block, as {@link #q4kGroups} makes them; each
     * stored as a whole vector whose upper lanes the next super-block overwrites, the last one's into the padding).
     */
    private static void q4kRow(MemorySegment w, long off, int n, float[] g, byte[] k) {
        int nb = n / 256;
        for (int b = 0; b < nb; b++) {
            long p = off + 144L * b;
            q4kGroups(w, p, k).intoArray(g, Q4K_SCALES * nb + 8 * b);
            groupBytes(k, 8, F8).intoArray(g, 8 * b);
            g[8 * nb + b] = half(w, p + 2);
        }
    }

    /** Where a prepared row's scales start, in floats per super-block ({@link #q4kRow}). */
    private static final int Q4K_SCALES = 9;

    /**
     * Q8_0 two rows by two inputs: per block each output's chunks multiplied in order into a fresh block accumulator,
     * scaled into the row accumulator, as {@link #dotQ8_0} does; each widened chunk serves two inputs, each x load two
     * rows.
     */
    private static void q8Tile(MemorySegment w, long off0, long off1, float[] x0, float[] x1, int n, float[] lanes) {
        FloatVector a00 = FloatVector.zero(F), a01 = a00, a10 = a00, a11 = a00;
        for (int b = 0, nb = n / 32; b < nb; b++) {
            long p0 = off0 + 34L * b, p1 = off1 + 34L * b;
            FloatVector k00 = FloatVector.zero(F), k01 = k00, k10 = k00, k11 = k00;
            for (int k = 0; k < 32; k += L) {
                FloatVector w0 = widen(ByteVector.fromMemorySegment(B, w, p0 + 2 + k, LE));
                FloatVector w1 = widen(ByteVector.fromMemorySegment(B, w, p1 + 2 + k, LE));
                FloatVector y0 = FloatVector.fromArray(F, x0, 32 * b + k), y1 = FloatVector.fromArray(F, x1, 32 * b + k);
                k00 = w0.fma(y0, k00);
                k01 = w0.fma(y1, k01);
                k10 = w1.fma(y0, k10);
                k11 = w1.fma(y1, k11);
            }
            FloatVector d0 = FloatVector.broadcast(F, half(w, p0)), d1 = FloatVector.broadcast(F, half(w, p1));
            a00 = k00.fma(d0, a00);
            a01 = k01.fma(d0, a01);
            a10 = k10.fma(d1, a10);
            a11 = k11.fma(d1, a11);
        }
        a00.intoArray(lanes, 0);
        a01.intoArray(lanes, L);
        a10.intoArray(lanes, 2 * L);
        a11.intoArray(lanes, 3 * L);
    }

    /** {@link #tile}'s products: the four accumulators' lanes into {@code lanes} (row 0 x0, row 0 x1, row 1 x0, row 1 x1). */
    private static void q4kTile(MemorySegment w, long off0, long off1, float[] x0, float[] x1, float[] g0, float[] g1, int go, int n,
                                float[] lanes) {
        FloatVector a00 = FloatVector.zero(F), a01 = a00, a10 = a00, a11 = a00;
        for (int b = 0, nb = n / 256; b < nb; b++) {
            long p0 = off0 + 144L * b, p1 = off1 + 144L * b;
            FloatVector sv0 = FloatVector.fromArray(F, g0, go + 8 * b), sv1 = FloatVector.fromArray(F, g1, go + 8 * b);
            for (int sp = 0; sp < 256 / SPAN; sp++) {
                IntVector v0 = IntVector.fromMemorySegment(I, w, p0 + 16 + 4L * L * sp, LE);
                IntVector v1 = IntVector.fromMemorySegment(I, w, p1 + 16 + 4L * L * sp, LE);
                int xb = 256 * b + SPAN * sp;
                FloatVector l00 = FloatVector.zero(F), l01 = l00, l10 = l00, l11 = l00, h00 = l00, h01 = l00, h10 = l00, h11 = l00;
                for (int k = 0; k < 4; k++) {
                    int xl = xb + 2 * L * k, xh = xl + L;
                    FloatVector xl0 = FloatVector.fromArray(F, x0, xl), xl1 = FloatVector.fromArray(F, x1, xl);
                    FloatVector lo0 = nibble(v0, 8 * k), lo1 = nibble(v1, 8 * k);
                    l00 = lo0.fma(xl0, l00);
                    l01 = lo0.fma(xl1, l01);
                    l10 = lo1.fma(xl0, l10);
                    l11 = lo1.fma(xl1, l11);
                    FloatVector xh0 = FloatVector.fromArray(F, x0, xh), xh1 = FloatVector.fromArray(F, x1, xh);
                    FloatVector hi0 = nibble(v0, 8 * k + 4), hi1 = nibble(v1, 8 * k + 4);
                    h00 = hi0.fma(xh0, h00);
                    h01 = hi0.fma(xh1, h01);
                    h10 = hi1.fma(xh0, h10);
                    h11 = hi1.fma(xh1, h11);
                }
                FloatVector dl0 = sv0.rearrange(Q4K_LO[sp]), dh0 = sv0.rearrange(Q4K_HI[sp]);
                FloatVector dl1 = sv1.rearrange(Q4K_LO[sp]), dh1 = sv1.rearrange(Q4K_HI[sp]);
                a00 = h00.fma(dh0, l00.fma(dl0, a00));
                a01 = h01.fma(dh0, l01.fma(dl0, a01));
                a10 = h10.fma(dh1, l10.fma(dl1, a10));
                a11 = h11.fma(dh1, l11.fma(dl1, a11));
            }
        }
        a00.intoArray(lanes, 0);
        a01.intoArray(lanes, L);
        a10.intoArray(lanes, 2 * L);
        a11.intoArray(lanes, 3 * L);
    }

    /** Whether {@link #dot4} has a four-input kernel for t (and these settings). */
    public static boolean hasDot4(DType t) {
        // Q8_0 measured no faster with four inputs (15 against 17 G products/s), and Q4_K's word kernel four inputs at a
        // time ran at 9-10 against 14.3-14.8 one input at a time (32 inputs of 2048, one thread): both take two rows by
        // two inputs instead ({@link #tile}); a four-input Q6_K was compiled into boxed vectors
        return VECTOR && t == DType.Q4_0;
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

    /**
     * x in the order a row of t's kernel takes its values: a copy, reordered per super-block, for Q4_K and Q6_K (their
     * kernels read 4L bytes as int lanes and take byte t of every lane together), x itself for the other formats.
     * Computed once per input and matrix, like {@link #sums32}.
     */
    public static float[] kernelInput(DType t, float[] x, int n) {
        if (!VECTOR || (t != DType.Q4_K && t != DType.Q6_K)) return x;
        float[] y = new float[n];
        for (int b = 0; b < n / 256; b++) {
            for (int j = 0; j < 256; j++) y[256 * b + j] = x[256 * b + (t == DType.Q4_K ? q4kElement(j) : q6kElement(j))];
        }
        return y;
    }

    /**
     * The element of a Q4_K super-block that its kernel takes j-th: span sp (4L bytes of nibbles, {@link #SPAN} values),
     * then byte t of each int lane, low nibble (lanes in order) then high; byte {@code by} of the nibbles holds element
     * {@code 64 (by / 32) + by % 32} in its low nibble and 32 more in its high.
     */
    static int q4kElement(int j) {
        int sp = j / SPAN, t = j % SPAN / (2 * L), nib = j % (2 * L) / L, i = j % L, by = 4 * L * sp + 4 * i + t;
        return 64 * (by / 32) + 32 * nib + by % 32;
    }

    /**
     * The element of a Q6_K super-block that its kernel takes j-th: span sp, byte t of each int lane, low nibble then
     * high. ql byte l of half h holds element {@code 128h + l} (low nibble, l < 32) or {@code 128h + 32 + (l - 32)}, and
     * 64 more in its high nibble.
     */
    static int q6kElement(int j) {
        int sp = j / SPAN, t = j % SPAN / (2 * L), nib = j % (2 * L) / L, i = j % L;
        int h = sp * SPAN / 128, l = 4 * L * (sp * SPAN % 128 / SPAN) + 4 * i + t; // the ql byte within the half
        return 128 * h + 32 * (l / 32) + l % 32 + 64 * nib;
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
     * Bytes shifted right as 16-bit lanes (x86 has no byte shift; a byte LSHR is compiled as widen, shift, pack). Bits
     * that cross from the next byte are masked off by every caller.
     */
    private static ByteVector shr(ByteVector v, int n) {
        return v.reinterpretAsShorts().lanewise(VectorOperators.LSHR, n).reinterpretAsBytes();
    }

    /** The high nibble of each byte: a 16-bit shift and a mask. */
    private static ByteVector hiNibble(ByteVector v) { return shr(v, 4).and((byte) 15); }

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
