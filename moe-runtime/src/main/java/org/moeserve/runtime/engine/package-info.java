/**
 * The forward pass and generation: {@link org.moeserve.runtime.engine.Engine} (layer loop over rows of many
 * sequences, GQA attention with a per-sequence KV cache, the MoE block), the two seams the rest of the product
 * plugs into ({@link org.moeserve.runtime.engine.ExpertStore} for expert weights,
 * {@link org.moeserve.runtime.engine.RoutingObserver} for routing decisions), sampling and the generator.
 */
package org.moeserve.runtime.engine;
