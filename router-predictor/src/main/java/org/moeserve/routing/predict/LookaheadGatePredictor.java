package org.moeserve.routing.predict;

/**
 * Training-free pre-gating (Pre-gated MoE, HOBBIT, ProMoE): the router of layer l+d applied to the hidden state
 * after layer l, normalised with layer l+d's own pre-MoE RMSNorm, as if the layers between did not change it.
 * The residual stream changes little from layer to layer, so this is often right at d = 1 and degrades with d.
 */
public final class LookaheadGatePredictor implements ExpertPredictor {
    private final float[][][] router; // [layer][expert][hidden]
    private final float[][] norm;     // [layer][hidden]
    private final float eps;

    /**
     * @param router per MoE layer, the router weights W (experts, hidden) as fp32
     * @param norm   per MoE layer, the RMSNorm weights applied before its router
     */
    public LookaheadGatePredictor(float[][][] router, float[][] norm, float eps) {
        if (router.length != norm.length) {
            throw new IllegalArgumentException(router.length + " routers but " + norm.length + " norms; one each per layer");
        }
        this.router = router;
        this.norm = norm;
        this.eps = eps;
    }

    @Override
    public String name() { return "lookahead-gate"; }

    @Override
    public boolean needsHidden() { return true; }

    @Override
    public float[][] predict(TokenContext ctx, int horizon) {
        float[] h = ctx.hidden();
        if (h == null) throw new IllegalStateException("lookahead-gate needs hidden states; run it with the model");
        int n = h.length;
        double ss = 0;
        for (float v : h) ss += v * v;
        float inv = (float) (1.0 / Math.sqrt(ss / n + eps));
        float[][] out = new float[ExpertPredictor.rows(router.length, ctx.layer(), horizon)][];
        float[] x = new float[n];
        for (int j = 0; j < out.length; j++) {
            int m = ctx.layer() + 1 + j;
            for (int i = 0; i < n; i++) x[i] = h[i] * inv * norm[m][i];
            float[][] w = router[m];
            out[j] = new float[w.length];
            for (int e = 0; e < w.length; e++) out[j][e] = VectorMath.dot(w[e], 0, x, n); // logits: softmax keeps the ranking
        }
        return out;
    }
}
