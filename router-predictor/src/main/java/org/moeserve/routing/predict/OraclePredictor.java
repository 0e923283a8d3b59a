package org.moeserve.routing.predict;

/** The true path: the bound every predictor is measured against (precision and recall 1 at K = top-k). */
public final class OraclePredictor implements ExpertPredictor {
    private final int layers, experts;

    public OraclePredictor(int layers, int experts) {
        this.layers = layers;
        this.experts = experts;
    }

    @Override
    public String name() { return "oracle"; }

    @Override
    public float[][] predict(TokenContext ctx, int horizon) {
        if (ctx.truePath() == null) {
            throw new IllegalStateException("the oracle needs the true path; it only runs on recorded traces");
        }
        float[][] out = new float[ExpertPredictor.rows(layers, ctx.layer(), horizon)][experts];
        for (int j = 0; j < out.length; j++) {
            int[] truth = ctx.truePath()[ctx.layer() + 1 + j];
            for (int r = 0; r < truth.length; r++) if (truth[r] >= 0) out[j][truth[r]] = truth.length - r;
        }
        return out;
    }
}
