package org.moeserve.routing.predict;

/** The prior: each layer's most-used experts (per-layer load), whatever the token. MoE-Infinity's baseline. */
public final class PopularityPredictor implements ExpertPredictor {
    private final float[][] share; // [layer][expert] fraction of selections

    public PopularityPredictor(long[][] load) {
        share = new float[load.length][];
        for (int l = 0; l < load.length; l++) {
            long sum = 0;
            for (long v : load[l]) sum += v;
            share[l] = new float[load[l].length];
            for (int e = 0; e < load[l].length; e++) share[l][e] = sum == 0 ? 0 : (float) load[l][e] / sum;
        }
    }

    @Override
    public String name() { return "popularity"; }

    @Override
    public float[][] predict(TokenContext ctx, int horizon) {
        float[][] out = new float[ExpertPredictor.rows(share.length, ctx.layer(), horizon)][];
        for (int j = 0; j < out.length; j++) out[j] = share[ctx.layer() + 1 + j].clone();
        return out;
    }
}
