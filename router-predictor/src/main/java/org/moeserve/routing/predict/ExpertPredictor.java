package org.moeserve.routing.predict;

/**
 * Guesses the experts a token will use at the next layers, from what is known when a layer finishes. The
 * predicted set at a distance is the top K of the scores (K = top-k to match the router, more to prefetch more):
 * its precision is bytes the cache moves for nothing, its recall the stalls it avoids.
 */
public interface ExpertPredictor {
    /** The name users pass: popularity, affinity, lookahead-gate, learned, oracle. */
    String name();

    /**
     * Scores of every expert at MoE layers layer+1 .. layer+horizon (higher = more likely).
     *
     * @return scores[j][e] for MoE layer {@code ctx.layer() + 1 + j}; fewer rows where the model ends first
     */
    float[][] predict(TokenContext ctx, int horizon);

    /** True if {@link TokenContext#hidden()} must be present (the model must run to produce it). */
    default boolean needsHidden() { return false; }

    /** Rows of a result: min(horizon, layers after this one). */
    static int rows(int layers, int layer, int horizon) { return Math.max(0, Math.min(horizon, layers - 1 - layer)); }
}
