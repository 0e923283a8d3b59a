package org.moeserve.runtime.engine;

import org.moeserve.routing.predict.TokenSample;
import org.moeserve.runtime.model.ModelConfig;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * Runs the model over token sequences (a prefill each) and records, per token, its expert path and the hidden
 * state after every MoE layer: the samples predictors are trained and evaluated on. Layer numbers are MoE
 * layers (dense layers skipped), as in moe-trace/1.
 */
public final class PathRecorder {
    /** A sequence to run: its domain and tokens. */
    public record Input(String domain, int[] tokens) {}

    private final Engine engine;
    private final int[] moeIndex;
    private final int moeLayers;

    public PathRecorder(Engine engine) {
        this.engine = engine;
        ModelConfig c = engine.config();
        moeIndex = c.moeLayerIndex();
        moeLayers = c.moeLayers();
    }

    public int moeLayers() { return moeLayers; }

    /** @param withHidden record hidden states too (memory: tokens x layers x hidden floats) */
    public List<TokenSample> record(List<Input> inputs, boolean withHidden, IntConsumer progress) {
        List<TokenSample> out = new ArrayList<>();
        int done = 0;
        for (Input in : inputs) {
            int n = in.tokens().length;
            int[][][] paths = new int[n][moeLayers][];
            float[][][] hidden = withHidden ? new float[n][moeLayers][] : null;
            Sequence seq = engine.newSequence();
            RoutingObserver ro = (sid, pos, layer, ex, w) -> {
                if (sid == seq.id()) paths[pos][moeIndex[layer]] = ex;
            };
            LayerObserver lo = (sid, pos, layer, h) -> {
                if (sid == seq.id() && moeIndex[layer] >= 0) hidden[pos][moeIndex[layer]] = h;
            };
            engine.addObserver(ro);
            if (withHidden) engine.addLayerObserver(lo);
            try {
                engine.forward(List.of(new Engine.Step(seq, in.tokens())));
            } finally {
                engine.removeObserver(ro);
                engine.removeLayerObserver(lo);
            }
            for (int t = 0; t < n; t++) {
                out.add(new TokenSample(in.domain(), in.tokens()[t], paths[t], withHidden ? hidden[t] : null,
                        t == 0 ? null : paths[t - 1]));
            }
            progress.accept(++done);
        }
        return out;
    }
}
