package org.moeserve.runtime.engine;

import org.moeserve.routing.predict.TokenSample;

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

    public PathRecorder(Engine engine) { this.engine = engine; }

    public int moeLayers() { return engine.config().moeLayers(); }

    /** @param withHidden record hidden states too (memory: tokens x layers x hidden floats) */
    public List<TokenSample> record(List<Input> inputs, boolean withHidden, IntConsumer progress) {
        List<TokenSample> out = new ArrayList<>();
        int done = 0, layers = moeLayers();
        for (Input in : inputs) {
            Routing rt = engine.forward(List.of(new Engine.Step(engine.newSequence(), in.tokens())), false, withHidden).routing();
            for (int t = 0; t < rt.rows(); t++) {
                float[][] hidden = null;
                if (withHidden) {
                    hidden = new float[layers][];
                    for (int m = 0; m < layers; m++) hidden[m] = rt.hidden(m, t);
                }
                out.add(new TokenSample(in.domain(), in.tokens()[t], rt.path(t), hidden, t == 0 ? null : rt.path(t - 1)));
            }
            progress.accept(++done);
        }
        return out;
    }
}
