package org.moeserve.routing;

/**
 * A MoE layer's router, the one implementation the engine routes with and the lookahead-gate predictor guesses
 * with: gate logits (x W^T, one per expert), softmax in fp32 with the max subtracted, the top k (largest first, ties
 * to the lower index, see {@link TopK}), and, where the family asks for it ({@code norm_topk_prob}; Mixtral always),
 * the k weights renormalised to sum to one. Where the gate's weights live and how its product runs is the
 * {@link Gate}'s business (the engine's reads the mmap'd checkpoint through its kernels).
 */
public final class Router {
    /** The gate's linear map: logits[r][e] = x[r] . W[e]. */
    public interface Gate {
        int experts();

        /** out[r][0..experts) = the logits of rows 0..rows-1 of x. */
        void logits(float[][] x, int rows, float[][] out);
    }

    /** A layer's decision for its rows: experts[r] highest weight first, and the weights the layer applies. */
    public record Decision(int[][] experts, float[][] weights) {}

    private final Gate gate;
    private final int topK;
    private final boolean renormalise;

    public Router(Gate gate, int topK, boolean renormalise) {
        if (topK < 1 || topK > gate.experts()) {
            throw new IllegalArgumentException("top-k is " + topK + " but the router has " + gate.experts() + " experts");
        }
        this.gate = gate;
        this.topK = topK;
        this.renormalise = renormalise;
    }

    /** A gate over fp32 rows W[expert][hidden] (tests, and predictors fitted without a model). */
    public static Gate dense(float[][] w) {
        return new Gate() {
            @Override
            public int experts() { return w.length; }

            @Override
            public void logits(float[][] x, int rows, float[][] out) {
                for (int r = 0; r < rows; r++) for (int e = 0; e < w.length; e++) out[r][e] = VectorMath.dot(w[e], 0, x[r], x[r].length);
            }
        };
    }

    public int experts() { return gate.experts(); }

    public int topK() { return topK; }

    /** The gate's logits for one row: scores whose ranking is the router's. */
    public float[] logits(float[] x) {
        float[][] out = new float[1][gate.experts()];
        gate.logits(new float[][]{x}, 1, out);
        return out[0];
    }

    /** Routes rows 0..rows-1 of x. */
    public Decision route(float[][] x, int rows) {
        int e = gate.experts();
        float[][] probs = new float[rows][e];
        gate.logits(x, rows, probs);
        int[][] idx = new int[rows][topK];
        float[][] w = new float[rows][topK];
        for (int r = 0; r < rows; r++) select(probs[r], idx[r], w[r]);
        return new Decision(idx, w);
    }

    /** Softmax of {@code logits} (in place), its top k into idx/w, renormalised if the family asks. */
    public void select(float[] logits, int[] idx, float[] w) {
        softmax(logits, 0, logits.length);
        TopK.select(logits, logits.length, topK, idx, w);
        if (renormalise) {
            float sum = 0;
            for (int j = 0; j < topK; j++) sum += w[j];
            for (int j = 0; j < topK; j++) w[j] /= sum;
        }
    }

    /** In-place softmax over x[o..o+n), in fp32 with the max subtracted. */
    public static void softmax(float[] x, int o, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, x[o + i]);
        float sum = 0;
        for (int i = 0; i < n; i++) {
            float e = (float) Math.exp(x[o + i] - max);
            x[o + i] = e;
            sum += e;
        }
        float inv = 1f / sum;
        for (int i = 0; i < n; i++) x[o + i] *= inv;
    }
}
