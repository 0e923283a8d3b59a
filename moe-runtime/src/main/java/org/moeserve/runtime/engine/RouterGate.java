package org.moeserve.runtime.engine;

import org.moeserve.routing.Router;
import org.moeserve.runtime.kernel.Kernels;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.ModelConfig;
import org.moeserve.runtime.model.MoeModel;
import org.moeserve.runtime.model.Tensor;

/** A {@link Router.Gate} over the checkpoint's gate tensor, computed by the engine's kernels. */
final class RouterGate implements Router.Gate {
    private final Tensor w;
    private final Parallel par;

    RouterGate(Tensor w, Parallel par) {
        this.w = w;
        this.par = par;
    }

    @Override
    public int experts() { return w.rows(); }

    @Override
    public void logits(float[][] x, int rows, float[][] out) {
        // below ~32k multiply-adds a fork costs more than it saves (one token's routing); the bits are the same either way
        Kernels.matmul(w, x, rows, out, (long) rows * w.rows() * w.cols() < (1 << 15) ? Parallel.SERIAL : par);
    }

    /** The model's routers, one per MoE layer. */
    static Router[] of(MoeModel m, Parallel par) {
        ModelConfig c = m.config();
        int[] layer = c.modelLayerOf();
        Router[] out = new Router[layer.length];
        for (int i = 0; i < layer.length; i++) {
            ModelConfig.Gating g = c.gating();
            Router.Rule rule = new Router.Rule(c.topK(), c.normTopKProb(), g.scoring() == ModelConfig.Scoring.SIGMOID,
                    g.groups(), g.topkGroup(), g.top2Sum(), m.layer(layer[i]).routerBias(), g.scale());
            out[i] = new Router(new RouterGate(m.layer(layer[i]).router(), par), rule);
        }
        return out;
    }
}
