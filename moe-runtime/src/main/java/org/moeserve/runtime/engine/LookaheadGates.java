package org.moeserve.runtime.engine;

import org.moeserve.routing.predict.LookaheadGatePredictor;
import org.moeserve.runtime.model.ModelConfig;
import org.moeserve.runtime.model.MoeModel;

/** Builds the lookahead-gate predictor from a model's own routers and pre-MoE norms (MoE layers only). */
public final class LookaheadGates {
    private LookaheadGates() {}

    /**
     * Guesses a token's whole path before it runs: every MoE layer's router applied to the token's embedding
     * (pre-gating from before the first layer; model layer numbers, dense layers null). Used to group tokens that
     * will share experts; its guesses only order work, never change it.
     */
    public static java.util.function.IntFunction<int[][]> fromToken(MoeModel m) {
        LookaheadGatePredictor gate = of(m);
        int[] moe = m.config().moeLayerIndex();
        int k = m.config().topK();
        return token -> {
            float[] x = new float[m.config().hiddenSize()];
            m.embed().row(token, x);
            int[][] byMoe = new int[moe.length][];
            float[][] scores = gate.predict(new org.moeserve.routing.predict.TokenContext(token, -1, new int[0][], x, null, null),
                    Integer.MAX_VALUE);
            int[][] out = new int[m.config().layers()][];
            for (int l = 0; l < moe.length; l++) {
                if (moe[l] >= 0) out[l] = org.moeserve.routing.predict.PredictorEvaluation.topK(scores[moe[l]], k);
            }
            return out;
        };
    }

    public static LookaheadGatePredictor of(MoeModel m) {
        ModelConfig c = m.config();
        int n = c.moeLayers();
        float[][][] router = new float[n][][];
        float[][] norm = new float[n][];
        int i = 0;
        for (int l = 0; l < c.layers(); l++) {
            if (!c.isSparse(l)) continue;
            MoeModel.Layer layer = m.layer(l);
            router[i] = new float[c.experts()][c.hiddenSize()];
            for (int e = 0; e < c.experts(); e++) layer.router().row(e, router[i][e]);
            norm[i++] = layer.postAttentionNorm().clone();
        }
        return new LookaheadGatePredictor(router, norm, c.rmsNormEps());
    }
}
