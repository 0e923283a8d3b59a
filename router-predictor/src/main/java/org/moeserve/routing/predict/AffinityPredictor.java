package org.moeserve.routing.predict;

/**
 * ExFlow's inter-layer affinity as a predictor: P(expert j at layer l+1 | expert i at layer l), estimated from
 * traces, propagated layer by layer from the token's experts at the layer that just finished:
 * v_l = uniform over the token's top-k at l; v_{m+1} = v_m P_m. The scores at distance d are v_{l+d}.
 */
public final class AffinityPredictor implements ExpertPredictor {
    private final double[][][] p; // [l][i][j] = P(j at l+1 | i at l)
    private final int experts;
    /** [d-1][l][i][j] = P(j at l+d | i at l): products of p, made once per distance on first use. */
    private final java.util.Map<Integer, double[][][]> reach = new java.util.concurrent.ConcurrentHashMap<>();

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

    /** P(j at l+d | i at l) for every l with l + d inside the model: the d-step transition matrices. */
    private double[][][] reach(int d) {
        return reach.computeIfAbsent(d, x -> {
            if (d == 1) return p;
            double[][][] prev = reach(d - 1), out = new double[p.length - d + 1][][];
            for (int l = 0; l < out.length; l++) {
                out[l] = new double[experts][experts];
                for (int i = 0; i < experts; i++) {
                    for (int m = 0; m < experts; m++) {
                        double a = prev[l][i][m];
                        if (a == 0) continue;
                        double[] row = p[l + d - 1][m], o = out[l][i];
                        for (int k = 0; k < experts; k++) o[k] += a * row[k];
                    }
                }
            }
            return out;
        });
    }

    @Override
    public float[][] predict(TokenContext ctx, int horizon) {
        int l = ctx.layer();
        float[][] out = new float[ExpertPredictor.rows(p.length + 1, l, horizon)][experts];
        int[] known = ctx.path()[l];
        int n = 0;
        for (int e : known) if (e >= 0) n++;
        for (int j = 0; j < out.length; j++) {
            // v_{l+d} = v_l P^(d): v_l is uniform over the token's k experts, so only k rows of the d-step matrix count
            double[][] m = reach(j + 1)[l];
            float[] o = out[j];
            if (n == 0) {
                java.util.Arrays.fill(o, 1f / experts);
                continue;
            }
            double[] acc = new double[experts];
            for (int e : known) {
                if (e < 0) continue;
                double[] row = m[e];
                for (int k = 0; k < experts; k++) acc[k] += row[k];
            }
            for (int k = 0; k < experts; k++) o[k] = (float) (acc[k] / n);
        }
        return out;
    }
}
