package org.moeserve.bench.jmh;

import org.moeserve.runtime.kernel.Kernels;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.DType;
import org.moeserve.runtime.model.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/** Kernels.matvec (vector) against Kernels.matvecScalar over a 4096x4096 matrix, per dtype and thread count. */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class MatVecBenchmark {
    @Param({"BF16", "F32", "F16"})
    public DType dtype;

    @Param({"1", "2"})
    public int threads;

    Arena arena;
    Tensor w;
    float[] x = new float[4096], out = new float[4096];
    Parallel par;

    @Setup(Level.Trial)
    public void setup() {
        arena = Arena.ofShared();
        var seg = arena.allocate(4096L * 4096 * dtype.bytes(), 64);
        SplittableRandom rnd = new SplittableRandom(7);
        var f = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        var s = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        for (long i = 0; i < 4096L * 4096; i++) {
            float v = (float) rnd.nextGaussian() * 0.02f;
            switch (dtype) {
                case F32 -> seg.set(f, i * 4, v);
                case BF16 -> seg.set(s, i * 2, (short) (Float.floatToRawIntBits(v) >>> 16));
                case F16 -> seg.set(s, i * 2, Float.floatToFloat16(v));
            }
        }
        w = new Tensor("W", dtype, new int[]{4096, 4096}, seg);
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
        par = new Parallel(threads);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        par.close();
        arena.close();
    }

    @Benchmark
    public float[] vector() {
        Kernels.matvec(w, x, out, par);
        return out;
    }

    @Benchmark
    public float[] scalar() {
        Kernels.matvecScalar(w, x, out);
        return out;
    }
}
