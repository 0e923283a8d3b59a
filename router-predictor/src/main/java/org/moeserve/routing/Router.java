package org.moeserve.routing;

/**
 * A MoE layer's router, the one implementation the engine routes with and the lookahead-gate predictor guesses
 * with: gate logits (x W^T, one per expert), scores (softmax in fp32 with the max subtracted, or a sigmoid each),
 * the top k (largest first, ties to the lower index, see {@link TopK}), and, where the family asks for it
 * ({@code norm_topk_prob}; Mixtral always), the k weights renormalised to sum to one. DeepSeek adds to this
 * ({@link Rule}): selection limited to the best groups of experts, a per-expert bias that moves selection but not
 * the weights, and a scaling factor on the weights. Where the gate's weights live and how its product runs is the
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

    /**
     * How scores become a decision, as Hugging Face computes it for each family.
     *
     * @param sigmoid   scores are sigmoid(logit) each (DeepSeek-V3) rather than a softmax over the experts
     * @param groups    experts fall in this many equal consecutive groups; only the {@code topkGroup} best groups
     *                  are chosen from (the others' selection scores set to 0, as HF masks them). 1: no grouping
     * @param top2Sum   a group scores by the sum of its best two selection scores (V3's noaux_tc), else its best
     * @param bias      added to the scores for selection only (e_score_correction_bias), or null
     * @param scale     the final weights' factor (routed_scaling_factor), after any renormalisation
     */
    public record Rule(int topK, boolean renormalise, boolean sigmoid, int groups, int topkGroup, boolean top2Sum,
                       float[] bias, float scale) {
        /** Softmax, top-k, optional renormalisation: Mixtral, Qwen-MoE, OLMoE. */
        public static Rule softmax(int topK, boolean renormalise) {
            return new Rule(topK, renormalise, false, 1, 1, false, null, 1f);
        }

        boolean plain() { return !sigmoid && groups == 1 && bias == null && scale == 1f; }
    }

    private final Gate gate;
    private final Rule rule;

    public Router(Gate gate, int topK, boolean renormalise) { this(gate, Rule.softmax(topK, renormalise)); }

    public Router(Gate gate, Rule rule) {
        int n = gate.experts();
        if (rule.topK() < 1 || rule.topK() > n) {
            throw new IllegalArgumentException("top-k is " + rule.topK() + " but the router has " + n + " experts");
        }
        if (rule.groups() < 1 || n % rule.groups() != 0 || rule.topkGroup() < 1 || rule.topkGroup() > rule.groups()
                || rule.topK() > rule.topkGroup() * (n / rule.groups())) {
            throw new IllegalArgumentException("groups " + rule.groups() + " (top " + rule.topkGroup() + ") do not fit "
                    + n + " experts with top-k " + rule.topK());
        }
        if (rule.bias() != null && rule.bias().length != n) {
            throw new IllegalArgumentException("the selection bias has " + rule.bias().length + " values for " + n + " experts");
        }
        this.gate = gate;
        this.rule = rule;
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

    public int topK() { return rule.topK(); }

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
        int[][] idx = new int[rows][rule.topK()];
        float[][] w = new float[rows][rule.topK()];
        for (int r = 0; r < rows; r++) select(probs[r], idx[r], w[r]);
        return new Decision(idx, w);
    }

    /** Scores of {@code logits} (in place), its top k into idx/w by the {@link Rule}: renormalised, scaled. */
    public void select(float[] logits, int[] idx, float[] w) {
        int n = logits.length, topK = rule.topK();
        if (rule.sigmoid()) {
            for (int i = 0; i < n; i++) logits[i] = (float) (1.0 / (1.0 + Math.exp(-logits[i])));
        } else {
            softmax(logits, 0, n);
        }
        if (rule.plain()) {
            TopK.select(logits, n, topK, idx, w);
        } else {
            float[] choice = logits.clone();
            if (rule.bias() != null) for (int i = 0; i < n; i++) choice[i] += rule.bias()[i];
            if (rule.groups() > 1) maskGroups(choice);
            TopK.select(choice, n, topK, idx, w);
            for (int j = 0; j < topK; j++) w[j] = logits[idx[j]];
        }
        if (rule.renormalise()) {
            float sum = 0;
            for (int j = 0; j < topK; j++) sum += w[j];
            for (int j = 0; j < topK; j++) w[j] /= sum;
        }
        if (rule.scale() != 1f) for (int j = 0; j < topK; j++) w[j] *= rule.scale();
    }

    /** Keeps the topkGroup best groups' selection scores; the others' become 0 (HF's masked_fill). */
    private void maskGroups(float[] choice) {
        int g = rule.groups(), per = choice.length / g;
        float[] groupScore = new float[g];
        for (int k = 0; k < g; k++) {
            float best = Float.NEGATIVE_INFINITY, second = Float.NEGATIVE_INFINITY;
            for (int i = k * per; i < (k + 1) * per; i++) {
                float v = choice[i];
                if (v > best) {
                    second = best;
                    best = v;
                } else if (v > second) second = v;
            }
            groupScore[k] = rule.top2Sum() ? best + second : best;
        }
        int[] keep = new int[rule.topkGroup()];
        TopK.select(groupScore, g, keep.length, keep, new float[keep.length]);
        boolean[] kept = new boolean[g];
        for (int k : keep) kept[k] = true;
        for (int k = 0; k < g; k++) if (!kept[k]) java.util.Arrays.fill(choice, k * per, (k + 1) * per, 0f);
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
