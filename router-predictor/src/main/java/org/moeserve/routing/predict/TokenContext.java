package org.moeserve.routing.predict;

/**
 * What is known about one token when MoE layer {@code layer} has finished.
 *
 * @param token        the token id (-1 if unknown)
 * @param layer        the MoE layer that just finished
 * @param path         path[l] = the token's top-k experts at MoE layer l, for l <= layer only
 * @param hidden       the hidden state (residual stream) after that layer, or null where none was recorded
 * @param previousPath the previous token's whole path in the same sequence, or null for a sequence's first token
 * @param truePath     the token's true whole path: for the oracle only, null online
 */
public record TokenContext(int token, int layer, int[][] path, float[] hidden, int[][] previousPath, int[][] truePath) {}
