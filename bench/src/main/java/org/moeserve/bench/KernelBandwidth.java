package org.moeserve.bench;

import org.moeserve.runtime.kernel.Kernels;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.DType;
import org.moeserve.runtime.model.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Decode is bound by reading weights, so a matrix-vector product is judged by the bandwidth it reaches as a
 * fraction of what the memory gives. In one process, interleaved rep by rep: a STREAM-style triad
 * (a = b + s*c over three 128 MB arrays, 3 x 4 bytes moved per element, write-allocate not counted, as STREAM)
 * and Kernels.matvec over a 4096x4096 weight matrix in BF16 (32 MB) and F32 (64 MB), both larger than the
 * last-level cache. GB/s = bytes of W / time (x is 16 KB and stays in cache). Beside them the compute roofline:
 * the peak of fused multiply-adds (eight independent vector accumulators per thread, in registers, nothing loaded)
 * and {@code Kernels.matmul} of the BF16 matrix against 32 inputs (the prefill kernel: 4x2 register tiles) as
 * GFLOP/s and its share of that peak. Medians over the reps.
 */
final class KernelBandwidth {
    static final int D = 4096, N = 4096, TRIAD = 32 << 20;

    public static void main(String[] args) {
        int reps = args.length > 0 ? Integer.parseInt(args[0]) : 15;
        try (Arena arena = Arena.ofShared()) {
            Tensor bf16 = fill(arena, DType.BF16), f32 = fill(arena, DType.F32);
            float[] x = new float[N], out = new float[D];
            SplittableRandom rnd = new SplittableRandom(1);
            for (int i = 0; i < N; i++) x[i] = (float) rnd.nextGaussian();
            float[] a = new float[TRIAD], b = new float[TRIAD], c = new float[TRIAD];
            java.util.Arrays.fill(b, 1f);
            java.util.Arrays.fill(c, 2f);
            System.out.println("machine: " + Bench.machine());
            float[][] xs = new float[32][N], outs = new float[32][D];
            for (float[] row : xs) for (int i = 0; i < N; i++) row[i] = (float) rnd.nextGaussian();
            System.out.println("| threads | triad GB/s | BF16 matvec GB/s | BF16 / triad | F32 matvec GB/s | F32 / triad "
                    + "| FMA peak GFLOP/s | BF16 matmul x32 GFLOP/s | matmul / peak |");
            System.out.println("|---|---|---|---|---|---|---|---|---|");
            for (int threads : new int[]{1, 2}) {
                try (Parallel par = new Parallel(threads)) {
                    double[] tTriad = new double[reps], tBf = new double[reps], tF = new double[reps];
                    double[] tPeak = new double[reps], tMm = new double[reps];
                    for (int r = -8; r < reps; r++) { // 8 warm-up reps, not recorded (C2 compiles the kernels in them)
                        double t1 = time(() -> triad(a, b, c, 3f, par));
                        double t2 = time(() -> Kernels.matvec(bf16, x, out, par));
                        double t3 = time(() -> Kernels.matvec(f32, x, out, par));
                        double t4 = time(() -> fmaPeak(par));
                        double t5 = time(() -> Kernels.matmul(bf16, xs, xs.length, outs, par));
                        if (r >= 0) { tTriad[r] = t1; tBf[r] = t2; tF[r] = t3; tPeak[r] = t4; tMm[r] = t5; }
                    }
                    double triad = 3.0 * 4 * TRIAD / Bench.median(tTriad) / 1e9;
                    double gBf = (double) D * N * 2 / Bench.median(tBf) / 1e9;
                    double gF = (double) D * N * 4 / Bench.median(tF) / 1e9;
                    double peak = 2.0 * PEAK_LANES * PEAK_ITERS * threads / Bench.median(tPeak) / 1e9;
                    double mm = 2.0 * D * N * xs.length / Bench.median(tMm) / 1e9;
                    System.out.printf(Locale.ROOT, "| %d | %.1f | %.1f | %.0f%% | %.1f | %.0f%% | %.1f | %.1f | %.0f%% |%n", threads, triad,
                            gBf, 100 * gBf / triad, gF, 100 * gF / triad, peak, mm, 100 * mm / peak);
                }
            }
            System.out.println("(medians of " + reps + " interleaved reps; checksum " + out[7] + a[7] + ")");
        }
    }

    static final jdk.incubator.vector.VectorSpecies<Float> S = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED;
    static final int PEAK_ITERS = 1 << 22, PEAK_CALLS = 64, PEAK_LANES = 12 * S.length(); // flops per iteration: 2 x 12 accumulators x lanes
    static volatile float sink;

    /** Every thread: twelve independent FMA chains in registers (more than latency x throughput), nothing loaded. */
    static void fmaPeak(Parallel par) {
        par.forRange(par.threads(), 1, (lo, hi) -> {
            float[] seed = new float[S.length()];
            java.util.Arrays.fill(seed, 1f);
            float s = 0;
            for (int t = lo; t < hi; t++) for (int k = 0; k < PEAK_CALLS; k++) s += fmaChains(seed, PEAK_ITERS / PEAK_CALLS);
            sink = s;
        });
    }

    /** A separate method, called many times, so C2 compiles it whole rather than as an on-stack replacement. */
    static float fmaChains(float[] seed, int iters) {
        var m = jdk.incubator.vector.FloatVector.broadcast(S, 0.999f);
        var c = jdk.incubator.vector.FloatVector.broadcast(S, 1e-3f);
        var a0 = jdk.incubator.vector.FloatVector.fromArray(S, seed, 0);
        var a1 = a0.add(c);
        var a2 = a1.add(c);
        var a3 = a2.add(c);
        var a4 = a3.add(c);
        var a5 = a4.add(c);
        var a6 = a5.add(c);
        var a7 = a6.add(c);
        var a8 = a7.add(c);
        var a9 = a8.add(c);
        var a10 = a9.add(c);
        var a11 = a10.add(c);
        for (int i = 0; i < iters; i++) {
            a0 = a0.fma(m, c);
            a1 = a1.fma(m, c);
            a2 = a2.fma(m, c);
            a3 = a3.fma(m, c);
            a4 = a4.fma(m, c);
            a5 = a5.fma(m, c);
            a6 = a6.fma(m, c);
            a7 = a7.fma(m, c);
            a8 = a8.fma(m, c);
            a9 = a9.fma(m, c);
            a10 = a10.fma(m, c);
            a11 = a11.fma(m, c);
        }
        float[] lanes = new float[S.length()];
        a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7).add(a8).add(a9).add(a10).add(a11).intoArray(lanes, 0);
        return lanes[0];
    }

    static double time(Runnable r) {
        long t0 = System.nanoTime();
        r.run();
        return (System.nanoTime() - t0) / 1e9;
    }

    static void triad(float[] a, float[] b, float[] c, float s, Parallel par) {
        par.forRange(a.length, 1 << 16, (lo, hi) -> {
            for (int i = lo; i < hi; i++) a[i] = b[i] + s * c[i];
        });
    }

    static Tensor fill(Arena arena, DType dt) {
        MemorySegment seg = arena.allocate((long) D * N * dt.bytes(), 64);
        SplittableRandom rnd = new SplittableRandom(dt.ordinal());
        ValueLayout.OfFloat f = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        ValueLayout.OfShort s = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        for (long i = 0; i < (long) D * N; i++) {
            float v = (float) rnd.nextGaussian() * 0.02f;
            if (dt == DType.F32) seg.set(f, i * 4, v);
            else seg.set(s, i * 2, (short) (Float.floatToRawIntBits(v) >>> 16));
        }
        return new Tensor("W", dt, new int[]{D, N}, seg);
    }
}
