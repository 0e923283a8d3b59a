package org.moeserve.runtime.engine;

import org.moeserve.routing.TraceRecord;

import java.util.List;

/**
 * Records the routing of a run as a moe-trace/1 record: experts[t][moeLayer][k] and weights[t][moeLayer][k], read
 * from the {@link Routing} the forward returns. Dense layers (Qwen3-MoE's mlp_only_layers) have no routing and are
 * not counted: MoE layer numbers are consecutive over the sparse layers.
 */
public final class RoutingTracer {
    private RoutingTracer() {}

    /** Prefills {@code tokens} as a fresh sequence and returns its routing. */
    public static TraceRecord trace(Engine engine, String id, String domain, int[] tokens) {
        Routing rt = engine.forward(List.of(new Engine.Step(engine.newSequence(), tokens))).routing();
        int layers = rt.moeLayers();
        int[][][] experts = new int[tokens.length][layers][];
        float[][][] weights = new float[tokens.length][layers][];
        for (int t = 0; t < tokens.length; t++) {
            for (int m = 0; m < layers; m++) {
                experts[t][m] = rt.experts(m, t);
                weights[t][m] = rt.weights(m, t);
            }
        }
        return new TraceRecord(id, domain, "prefill", tokens, experts, weights);
    }
}
