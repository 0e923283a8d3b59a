package org.moeserve.routing.predict;

/**
 * One token of a recorded run, for training and offline evaluation.
 *
 * @param path         path[l] = top-k experts at MoE layer l (the truth)
 * @param hidden       hidden[l] = the hidden state after MoE layer l, or null when the model did not run
 * @param previousPath the previous token's path in the same sequence, or null
 */
public record TokenSample(String domain, int token, int[][] path, float[][] hidden, int[][] previousPath) {
    public TokenContext context(int layer) {
        int[][] known = java.util.Arrays.copyOf(path, layer + 1);
        return new TokenContext(token, layer, known, hidden == null ? null : hidden[layer], previousPath, path);
    }
}
