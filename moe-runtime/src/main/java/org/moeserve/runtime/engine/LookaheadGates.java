package org.moeserve.runtime.engine;

import org.moeserve.routing.predict.LookaheadGatePredictor;
import org.moeserve.runtime.model.ModelConfig;
import org.moeserve.runtime.model.MoeModel;

/** Builds the lookahead-gate predictor from a model's own routers and pre-MoE norms (MoE layers only). */
public final class LookaheadGates {
    private LookaheadGates() {}

    public static LookaheadGatePredictor of(MoeModel m) {
        ModelConfig c = m.config();
        int n = 0;
        for (int l = 0; l < c.layers(); l++) if (c.isSparse(l)) n++;
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
