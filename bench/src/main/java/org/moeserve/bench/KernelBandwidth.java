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
 * last-level cache. GB/s = bytes of W / time (x is 16 KB and stays in cache). Medians over the reps.
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
            System.out.println("| threads | triad GB/s | BF16 matvec GB/s | BF16 / triad | F32 matvec GB/s | F32 / triad |");
            System.out.println("|---|---|---|---|---|---|");
            for (int threads : new int[]{1, 2}) {
                try (Parallel par = new Parallel(threads)) {
                    double[] tTriad = new double[reps], tBf = new double[reps], tF = new double[reps];
                    for (int r = -3; r < reps; r++) { // 3 warm-up reps, not recorded
                        double t1 = time(() -> triad(a, b, c, 3f, par));
                        double t2 = time(() -> Kernels.matvec(bf16, x, out, par));
                        double t3 = time(() -> Kernels.matvec(f32, x, out, par));
                        if (r >= 0) { tTriad[r] = t1; tBf[r] = t2; tF[r] = t3; }
                    }
                    double triad = 3.0 * 4 * TRIAD / Bench.median(tTriad) / 1e9;
                    double gBf = (double) D * N * 2 / Bench.median(tBf) / 1e9;
                    double gF = (double) D * N * 4 / Bench.median(tF) / 1e9;
                    System.out.printf(Locale.ROOT, "| %d | %.1f | %.1f | %.0f%% | %.1f | %.0f%% |%n", threads, triad,
                            gBf, 100 * gBf / triad, gF, 100 * gF / triad);
                }
            }
            System.out.println("(medians of " + reps + " interleaved reps; checksum " + out[7] + a[7] + ")");
        }
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
