package org.moeserve.runtime.engine;

import org.moeserve.runtime.kernel.Kernels;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.ExpertWeights;
import org.moeserve.runtime.model.Tensor;

import java.util.concurrent.atomic.AtomicIntegerArray;

/**
 * An expert's feed-forward network (and a dense layer's MLP, the same shape): down(silu(gate x) * up x), for a group
 * of rows at once, so each weight row is read once for all of them. Every executor (the engine's own, in-process
 * expert parallelism, cluster members) computes experts through this one object.
 */
public final class ExpertFfn {
    /** The SwiGLU FFN of the supported families. */
    public static final ExpertFfn SWIGLU = new ExpertFfn();

    private ExpertFfn() {}

    /** out[r] = FFN(x[r]) for r < rows; {@code par} splits each product across threads (SERIAL: this thread). */
    public void apply(ExpertWeights w, float[][] x, int rows, float[][] out, Parallel par) {
        int inter = w.gate().rows();
        float[][] g = new float[rows][inter], u = new float[rows][inter];
        Kernels.matmuls(par, rows, new Tensor[]{w.gate(), w.up()}, new float[][][]{x, x}, new float[][][]{g, u});
        for (int r = 0; r < rows; r++) Kernels.swiglu(g[r], u[r], inter);
        Kernels.matmul(w.down(), g, rows, out, par);
    }

    /**
     * out[i] = FFN_i(x[i]) for several FFNs of one input row each (a decoded token's experts and the shared expert):
     * every gate and up product in one fork, then every down product in one, each cut into fine chunks across the
     * threads ({@link Kernels#matvecs}), so no thread waits for another's whole expert; an expert's swiglu runs in the
     * first fork as soon as its gate and up are done. Each output has the bits {@link #apply} gives it.
     */
    public void applyEach(ExpertWeights[] w, float[][] x, float[][] out, Parallel par) {
        int k = w.length;
        Tensor[] gu = new Tensor[2 * k], down = new Tensor[k];
        float[][] gx = new float[2 * k][], go = new float[2 * k][], g = new float[k][];
        for (int i = 0; i < k; i++) {
            gu[2 * i] = w[i].gate();
            gu[2 * i + 1] = w[i].up();
            gx[2 * i] = gx[2 * i + 1] = x[i];
            go[2 * i] = g[i] = new float[w[i].gate().rows()];
            go[2 * i + 1] = new float[w[i].up().rows()];
            down[i] = w[i].down();
        }
        AtomicIntegerArray halves = new AtomicIntegerArray(k);
        // an expert's swiglu runs in the fork, on the thread that finishes the second of its gate and up products,
        // while the other threads read on (on the caller after the fork, a token's eight swiglus cost 66 us a layer)
        Kernels.matvecs(par, gu, gx, go, p -> {
            int i = p / 2;
            if (halves.incrementAndGet(i) == 2) Kernels.swiglu(g[i], go[2 * i + 1], g[i].length);
        });
        Kernels.matvecs(par, down, g, out);
    }
}
