package org.moeserve.runtime.engine;

import org.moeserve.routing.Router;
import org.moeserve.routing.predict.TokenContext;

/**
 * What one {@link Engine#forward} routed: per row (a token of a step, rows in step order, then token order) its
 * sequence, position and token, and per MoE layer its experts (highest weight first) and weights, with the hidden
 * state after each MoE layer when asked. Layers are MoE layers (dense layers skipped), as in traces, the cache and
 * plans. Filled as the layers run: a {@link MoeLayerListener} called after MoE layer m sees layers 0..m.
 */
public final class Routing {
    private final long[] sequence;
    private final int[] position, token, stepEnd;
    private final int[][][] experts;   // [moeLayer][row] -> top-k
    private final float[][][] weights; // [moeLayer][row] -> weights
    private final float[][][] hidden;  // [moeLayer][row] -> hidden state after the layer, or null
    private final int[][][] before;    // [row] -> the previous token's path when it ran in an earlier forward

    Routing(long[] sequence, int[] position, int[] token, int[] stepEnd, int[][][] before, int moeLayers, boolean keepHidden) {
        this.sequence = sequence;
        this.position = position;
        this.token = token;
        this.stepEnd = stepEnd;
        this.before = before;
        int rows = sequence.length;
        experts = new int[moeLayers][rows][];
        weights = new float[moeLayers][rows][];
        hidden = keepHidden ? new float[moeLayers][rows][] : null;
    }

    void set(int moeLayer, Router.Decision d) {
        for (int r = 0; r < sequence.length; r++) {
            experts[moeLayer][r] = d.experts()[r];
            weights[moeLayer][r] = d.weights()[r];
        }
    }

    void setHidden(int moeLayer, int row, float[] h) { hidden[moeLayer][row] = h; }

    public int rows() { return sequence.length; }

    public int moeLayers() { return experts.length; }

    public long sequence(int row) { return sequence[row]; }

    public int position(int row) { return position[row]; }

    public int token(int row) { return token[row]; }

    /** Steps in this forward. */
    public int steps() { return stepEnd.length; }

    /** The row of step {@code step}'s last token. */
    public int lastRow(int step) { return stepEnd[step] - 1; }

    public boolean hasHidden() { return hidden != null; }

    /** The row's top-k experts at a MoE layer (null if the layer has not run yet); the array is shared, do not change it. */
    public int[] experts(int moeLayer, int row) { return experts[moeLayer][row]; }

    public float[] weights(int moeLayer, int row) { return weights[moeLayer][row]; }

    /** The hidden state after a MoE layer (null unless kept). */
    public float[] hidden(int moeLayer, int row) { return hidden == null ? null : hidden[moeLayer][row]; }

    /** The row's path: path[m] = its experts at MoE layer m, null where not routed yet. */
    public int[][] path(int row) {
        int[][] p = new int[experts.length][];
        for (int m = 0; m < p.length; m++) p[m] = experts[m][row];
        return p;
    }

    /** The path of the token before this row in its sequence (as far as it is known), or null for a sequence's first. */
    public int[][] previousPath(int row) {
        if (row > 0 && sequence[row - 1] == sequence[row] && position[row - 1] == position[row] - 1) return path(row - 1);
        return before[row];
    }

    /** What is known of the row's token once MoE layer {@code moeLayer} has run (no oracle: the true path is null). */
    public TokenContext context(int row, int moeLayer) {
        int[][] known = new int[moeLayer + 1][];
        for (int m = 0; m <= moeLayer; m++) known[m] = experts[m][row];
        return new TokenContext(token[row], moeLayer, known, hidden(moeLayer, row), previousPath(row), null);
    }
}
