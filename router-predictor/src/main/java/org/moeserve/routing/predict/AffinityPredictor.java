package org.moeserve.routing.predict;

/**
 * ExFlow's inter-layer affinity as a predictor: P(expert j at layer l+1 | expert i at layer l), estimated from
 * traces, propagated layer by layer from the token's experts at the layer that just finished:
 * v_l = uniform over the token's top-k at l; v_{m+1} = v_m P_m. The scores at distance d are v_{l+d}.
 */
public final class AffinityPredictor implements ExpertPredictor {
    private final double[][][] p; // [l][i][j] = P(j at l+1 | i at l)
    private final int experts;

    /** @param transitions counts[l][i][j] between consecutive layers (TraceStatistics.transitions(1)) */
    public AffinityPredictor(long[][][] transitions) {
        int layers = transitions.length + 1;
        experts = transitions.length == 0 ? 0 : transitions[0].length;
        p = new double[layers - 1][experts][experts];
        for (int l = 0; l < layers - 1; l++) {
            for (int i = 0; i < experts; i++) {
                long sum = 0;
                for (long v : transitions[l][i]) sum += v;
                for (int j = 0; j < experts; j++) p[l][i][j] = sum == 0 ? 1.0 / experts : (double) transitions[l][i][j] / sum;
            }
        }
    }

    @Override
    public String name() { return "affinity"; }

    @Override
    public float[][] predict(TokenContext ctx, int horizon) {
        int l = ctx.layer();
        float[][] out = new float[ExpertPredictor.rows(p.length + 1, l, horizon)][experts];
        double[] v = new double[experts];
        int known = 0;
        for (int e : ctx.path()[l]) if (e >= 0) { v[e] += 1; known++; }
        for (int e = 0; e < experts; e++) v[e] = known == 0 ? 1.0 / experts : v[e] / known;
        for (int j = 0; j < out.length; j++) {
            double[][] m = p[l + j];
            double[] next = new double[experts];
            for (int i = 0; i < experts; i++) {
                if (v[i] == 0) continue;
                for (int k = 0; k < experts; k++) next[k] += v[i] * m[i][k];
            }
            v = next;
            for (int e = 0; e < experts; e++) out[j][e] = (float) v[e];
        }
        return out;
    }
}
