package org.moeserve.routing.predict;

import org.moeserve.routing.Router;

/**
 * Training-free pre-gating (Pre-gated MoE, HOBBIT, ProMoE): the router of layer l+d applied to the hidden state
 * after layer l, normalised with layer l+d's own pre-MoE RMSNorm, as if the layers between did not change it.
 * The residual stream changes little from layer to layer, so this is often right at d = 1 and degrades with d.
 */
public final class LookaheadGatePredictor implements ExpertPredictor {
    private final Router[] router; // per MoE layer: the model's own routers
    private final float[][] norm;  // [layer][hidden]
    private final float eps;

    /**
     * @param router per MoE layer, the router the model routes with
     * @param norm   per MoE layer, the RMSNorm weights applied before its router
     */
    public LookaheadGatePredictor(Router[] router, float[][] norm, float eps) {
        if (router.length != norm.length) {
            throw new IllegalArgumentException(router.length + " routers but " + norm.length + " norms; one each per layer");
        }
        this.router = router;
        this.norm = norm;
        this.eps = eps;
    }

    /** From fp32 router weights W[layer][expert][hidden]. */
    public LookaheadGatePredictor(float[][][] weights, float[][] norm, float eps) {
        this(java.util.Arrays.stream(weights).map(w -> new Router(Router.dense(w), 1, false)).toArray(Router[]::new), norm, eps);
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
            out[j] = router[m].logits(x); // logits: softmax keeps the ranking
        }
        return out;
    }
}
