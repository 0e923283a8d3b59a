package org.moeserve.runtime.engine;

import org.moeserve.routing.TraceRecord;
import org.moeserve.runtime.model.ModelConfig;

import java.util.List;

/**
 * Records the routing of a run as a moe-trace/1 record: a {@link RoutingObserver} that fills
 * experts[t][moeLayer][k] and weights[t][moeLayer][k]. Dense layers (Qwen3-MoE's mlp_only_layers) have no
 * routing and are not counted: MoE layer numbers are consecutive over the sparse layers.
 */
public final class RoutingTracer {
    private final int[] moeIndex; // model layer -> MoE layer, -1 if dense
    private final int moeLayers;

    public RoutingTracer(ModelConfig config) {
        this.moeIndex = config.moeLayerIndex();
        this.moeLayers = config.moeLayers();
    }

    public int moeLayers() { return moeLayers; }

    /** Prefills {@code tokens} as a fresh sequence and returns its routing. */
    public TraceRecord trace(Engine engine, String id, String domain, int[] tokens) {
        int[][][] experts = new int[tokens.length][moeLayers][];
        float[][][] weights = new float[tokens.length][moeLayers][];
        Sequence seq = engine.newSequence();
        RoutingObserver obs = (sid, pos, layer, ex, w) -> {
            if (sid != seq.id()) return;
            experts[pos][moeIndex[layer]] = ex;
            weights[pos][moeIndex[layer]] = w;
        };
        engine.addObserver(obs);
        try {
            engine.forward(List.of(new Engine.Step(seq, tokens)));
        } finally {
            engine.removeObserver(obs);
        }
        return new TraceRecord(id, domain, "prefill", tokens, experts, weights);
    }
}
