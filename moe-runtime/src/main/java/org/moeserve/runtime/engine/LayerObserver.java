package org.moeserve.runtime.engine;

/**
 * Told the hidden state (the residual stream) of every token after every layer: what the lookahead-gate and
 * learned predictors read. Called on the engine's thread after the layer's routing observers; {@code hidden} is a
 * fresh copy the observer may keep.
 */
@FunctionalInterface
public interface LayerObserver {
    void onLayerEnd(long sequenceId, int position, int layer, float[] hidden);
}
