package org.moeserve.runtime.engine;

/**
 * Told, on the engine's thread, when a MoE layer has run for every row of a forward (routing decided, experts
 * computed, the residual added): what live consumers need before the forward ends (the prefetcher, an online
 * predictor). Everything else reads the {@link Routing} the forward returns. Dense layers are not reported.
 */
@FunctionalInterface
public interface MoeLayerListener {
    /** {@code routing} holds MoE layers 0..moeLayer (hidden states too if {@link #needsHidden}). */
    void onMoeLayer(Routing routing, int moeLayer);

    /** True if the hidden state after each MoE layer must be kept for this listener. */
    default boolean needsHidden() { return false; }
}
