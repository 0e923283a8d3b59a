package org.moeserve.runtime.engine;

import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.ExpertWeights;

/**
 * Who computes a MoE layer's experts: the seam expert parallelism plugs into. The engine routes (its
 * {@link org.moeserve.routing.Router}); the executor applies each row's k experts to its input, wherever they live
 * (this thread's store, devices in this JVM, members of a cluster), grouping rows by expert with
 * {@link org.moeserve.comms.ExpertGroups} and computing with {@link ExpertFfn}; the engine combines the outputs in the
 * row's top-k order. An executor may move rows between devices but must return exactly expert {@code idx[r][j]}
 * applied to {@code x[r]}: where experts run never changes the result. Layers are MoE layers.
 */
public interface ExpertExecutor {
    /** One forward step: {@code sequences[r]} is the sequence of row r. */
    StepRun begin(long[] sequences);

    /** The MoE layers of one step, in order, then {@link #end}. */
    interface StepRun {
        /** contrib[r][j] = expert idx[r][j] of MoE layer {@code moeLayer} applied to x[r] (rows 0..rows-1). */
        void run(int moeLayer, float[][] x, int rows, int[][] idx, float[][][] contrib);

        /**
         * {@link #run}, and sharedOut[r] = the shared expert (a dense FFN every row passes through, never routed,
         * cached or offloaded) applied to x[r]; an executor may compute it alongside the routed experts (the engine's
         * own does, in the same fork), by default after them, splitting its products over {@code par}.
         */
        default void run(int moeLayer, float[][] x, int rows, int[][] idx, float[][][] contrib, ExpertWeights shared,
                         float[][] sharedOut, Parallel par) {
            run(moeLayer, x, rows, idx, contrib);
            ExpertFfn.SWIGLU.apply(shared, x, rows, sharedOut, par);
        }

        /** After the last layer (an expert-parallel executor brings its tokens home). */
        default void end() { }
    }
}
