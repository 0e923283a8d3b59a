package org.moeserve.runtime.engine;

/**
 * Told the routing decision of every token at every MoE layer, as the layer routes it (the tracer, the
 * predictor and the cache listen here). Called on the engine's thread, in token order within a layer; the
 * arrays belong to the observer (they are not reused) and hold the top-k experts, highest weight first, and
 * the weights the layer applies.
 */
@FunctionalInterface
public interface RoutingObserver {
    void onRouting(long sequenceId, int position, int layer, int[] experts, float[] weights);
}
