package org.moeserve.bench;

import org.moeserve.runtime.kernel.Kernels;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.kernel.QuantKernels;
import org.moeserve.runtime.model.Blocks;
import org.moeserve.runtime.model.DType;
import org.moeserve.runtime.model.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Decode's matrix-vector product in each weight format, at a shape far beyond the last-level cache: a 32768 x 4096
 * matrix (Mixtral-8x7B's gate and up of two experts; 268 MB in BF16, 75 MB in Q4_K). Interleaved rep by rep in one
 * process with a STREAM triad: GB/s of weight bytes read, billions of weights per second, the share of the triad, and
 * time against BF16's. Beside Q8_0's kernel (fp32 activations), the llama.cpp way: activations quantized to Q8_0 and
 * integer products ({@link QuantKernels#dotQ8_0Int}). Medians over the reps.
 */
final class QuantThroughput {
    static final int D = 32768, N = 4096, TRIAD = 32 << 20;
    static final DType[] TYPES = {DType.BF16, DType.Q8_0, DType.Q6_K, DType.Q4_K, DType.Q4_0};

    public static void main(String[] args) {
        int reps = args.length > 0 ? Integer.parseInt(args[0]) : 9;
        try (Arena arena = Arena.ofShared()) {
            Tensor[] w = new Tensor[TYPES.length];
            for (int i = 0; i < TYPES.length; i++) w[i] = fill(arena, TYPES[i]);
            float[] x = new float[N], out = new float[D];
            SplittableRandom rnd = new SplittableRandom(1);
            for (int i = 0; i < N; i++) x[i] = (float) rnd.nextGaussian();
            byte[] xq = new byte[N];
            float[] xd = new float[N / 32];
            float[] a = new float[TRIAD], b = new float[TRIAD], c = new float[TRIAD];
            java.util.Arrays.fill(b, 1f);
            java.util.Arrays.fill(c, 2f);
            System.out.println("machine: " + Bench.machine());
            System.out.println("matrix " + D + " x " + N + "; GB/s of weight bytes; Gw/s = 1e9 weights per second");
            System.out.println("| threads | format | bits/weight | MB | ms | GB/s | Gw/s | GB/s / triad | speed vs BF16 |");
            System.out.println("|---|---|---|---|---|---|---|---|---|");
            for (int threads : new int[]{1, 2}) {
                try (Parallel par = new Parallel(threads)) {
                    double[][] t = new double[TYPES.length + 2][reps];
                    for (int r = -4; r < reps; r++) {
                        double tt = KernelBandwidth.time(() -> KernelBandwidth.triad(a, b, c, 3f, par));
                        if (r >= 0) t[0][r] = tt;
                        for (int i = 0; i < TYPES.length; i++) {
                            Tensor wi = w[i];
                            double ti = KernelBandwidth.time(() -> Kernels.matvec(wi, x, out, par));
                            if (r >= 0) t[1 + i][r] = ti;
                        }
                        Tensor q8 = w[1];
                        double ti = KernelBandwidth.time(() -> {
                            QuantKernels.quantizeQ8(x, N, xq, xd);
                            par.forRange(D, 8, (lo, hi) -> {
                                float[] lanes = new float[16];
                                long rb = q8.rowBytes();
                                for (int j = lo; j < hi; j++) out[j] = QuantKernels.dotQ8_0Int(q8.data(), j * rb, xq, xd, N, lanes);
                            });
                        });
                        if (r >= 0) t[1 + TYPES.length][r] = ti;
                    }
                    double triad = 3.0 * 4 * TRIAD / Bench.median(t[0]) / 1e9, bf = Bench.median(t[1]);
                    for (int i = 0; i <= TYPES.length; i++) {
                        DType dt = i < TYPES.length ? TYPES[i] : DType.Q8_0;
                        String name = i < TYPES.length ? dt.name() : "Q8_0, int8 activations";
                        double s = Bench.median(t[1 + i]), bytes = dt.byteSize((long) D * N);
                        System.out.printf(Locale.ROOT, "| %d | %s | %.2f | %.0f | %.1f | %.1f | %.2f | %.0f%% | %.2fx |%n", threads, name,
                                dt.bitsPerWeight(), bytes / 1e6, s * 1e3, bytes / s / 1e9, (double) D * N / s / 1e9,
                                100 * bytes / s / 1e9 / triad, bf / s);
                    }
                    System.out.printf(Locale.ROOT, "| %d | (triad) | | | | %.1f | | 100%% | |%n", threads, triad);
                }
            }
            System.out.println("(medians of " + reps + " interleaved reps; checksum " + out[7] + a[7] + ")");
        }
    }

    /** D x N Gaussian weights in type dt: one 256-row band quantized, then repeated (the kernels read every byte alike). */
    static Tensor fill(Arena arena, DType dt) {
        int band = 256;
        float[] v = new float[band * N];
        SplittableRandom rnd = new SplittableRandom(dt.ordinal());
        for (int i = 0; i < v.length; i++) v[i] = (float) rnd.nextGaussian() * 0.02f;
        MemorySegment one = arena.allocate(dt.byteSize((long) band * N), 64);
        if (dt.quantized()) Blocks.quantize(dt, v, 0, v.length, one, 0);
        else for (int i = 0; i < v.length; i++) one.set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, 2L * i, (short) (Float.floatToRawIntBits(v[i]) >>> 16));
        MemorySegment all = arena.allocate(dt.byteSize((long) D * N), 64);
        for (int r = 0; r < D; r += band) MemorySegment.copy(one, 0, all, dt.byteSize((long) r * N), one.byteSize());
        return new Tensor("W " + dt, dt, new int[]{D, N}, all);
    }
}
