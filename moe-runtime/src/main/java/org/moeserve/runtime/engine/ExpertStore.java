package org.moeserve.runtime.engine;

import org.moeserve.runtime.model.ExpertWeights;

/**
 * Where the MoE block gets expert weights: the seam the expert cache plugs into. The block calls
 * {@link #acquire} for every expert a step routes to, computes, then {@link #release}s it; between the two the
 * weights must stay valid (a cache pins them). An implementation may block in acquire (a miss that stalls on a
 * transfer) but must return the weights of exactly that logical expert: where experts live changes when work
 * happens, never the result. Layers are MoE layers.
 */
public interface ExpertStore {
    ExpertWeights acquire(int moeLayer, int expert);

    default void release(int moeLayer, int expert) {}

    /** Whether {@link #acquire} always returns at once (every expert resident): then a step may acquire all first. */
    default boolean neverWaits() { return false; }

    /** The experts a layer's step is about to acquire, all known before the first (a cache keeps them resident). */
    default void reserve(int moeLayer, int[] experts) {}
}
