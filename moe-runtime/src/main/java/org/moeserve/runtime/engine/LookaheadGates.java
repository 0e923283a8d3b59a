package org.moeserve.runtime.engine;

import org.moeserve.routing.Router;
import org.moeserve.routing.TopK;
import org.moeserve.routing.predict.LookaheadGatePredictor;
import org.moeserve.routing.predict.TokenContext;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.ModelConfig;
import org.moeserve.runtime.model.MoeModel;

/** Builds the lookahead-gate predictor from a model's own routers and pre-MoE norms (MoE layers only). */
public final class LookaheadGates {
    private LookaheadGates() {}

    /**
     * Guesses a token's whole path before it runs: every MoE layer's router applied to the token's embedding
     * (pre-gating from before the first layer; MoE layer numbers). Used to group tokens that will share experts;
     * its guesses only order work, never change it.
     */
    public static java.util.function.IntFunction<int[][]> fromToken(MoeModel m) {
        LookaheadGatePredictor gate = of(m);
        int k = m.config().topK();
        return token -> {
            float[] x = new float[m.config().hiddenSize()];
            m.embed().row(token, x);
            float[][] scores = gate.predict(new TokenContext(token, -1, new int[0][], x, null, null), Integer.MAX_VALUE);
            int[][] out = new int[scores.length][];
            for (int l = 0; l < scores.length; l++) out[l] = TopK.of(scores[l], k);
            return out;
        };
    }

    /** The model's routers (the engine's Router class and gate, on the calling thread) after each layer's norm. */
    public static LookaheadGatePredictor of(MoeModel m) {
        ModelConfig c = m.config();
        Router[] routers = RouterGate.of(m, Parallel.SERIAL);
        int[] layer = c.modelLayerOf();
        float[][] norm = new float[layer.length][];
        for (int i = 0; i < layer.length; i++) norm[i] = m.layer(layer[i]).postAttentionNorm().clone();
        return new LookaheadGatePredictor(routers, norm, c.rmsNormEps());
    }
}
