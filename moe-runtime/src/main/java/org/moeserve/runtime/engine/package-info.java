/**
 * The forward pass and generation: {@link org.moeserve.runtime.engine.Engine} (layer loop over rows of many
 * sequences, GQA attention with a per-sequence KV cache, the MoE block: a {@link org.moeserve.routing.Router} per
 * MoE layer, an {@link org.moeserve.runtime.engine.ExpertExecutor} that runs each expert's
 * {@link org.moeserve.runtime.engine.ExpertFfn} once over its rows, the combine), what a forward returns
 * ({@link org.moeserve.runtime.engine.Routing}), and the seams the rest of the product plugs into:
 * {@link org.moeserve.runtime.engine.ExpertStore} for expert weights (the expert cache),
 * {@link org.moeserve.runtime.engine.ExpertExecutor} for where experts run (expert parallelism, the cluster) and
 * {@link org.moeserve.runtime.engine.MoeLayerListener} for whoever must act between layers (the prefetcher, an online
 * predictor). Outside {@code Engine}, layers are MoE layers.
 */
package org.moeserve.runtime.engine;
