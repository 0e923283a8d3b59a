package org.moeserve.runtime.engine;

import org.moeserve.runtime.kernel.Kernels;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.ExpertWeights;

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
        Kernels.matmul(w.gate(), x, rows, g, par);
        Kernels.matmul(w.up(), x, rows, u, par);
        for (int r = 0; r < rows; r++) Kernels.swiglu(g[r], u[r], inter);
        Kernels.matmul(w.down(), g, rows, out, par);
    }
}
