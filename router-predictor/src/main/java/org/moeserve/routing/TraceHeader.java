package org.moeserve.routing;

/**
 * Line 1 of a moe-trace/1 file (shared/TRACE-FORMAT.md): what model the paths are of and their shape.
 *
 * @param layers MoE layers (dense layers of the model are not counted)
 * @param source free text: how the trace was made
 */
public record TraceHeader(String model, int layers, int experts, int topK, String source) {
    public static final String FORMAT = "moe-trace/1";

    public TraceHeader {
        if (layers <= 0) throw new IllegalArgumentException("layers is " + layers + " but must be > 0");
        if (experts <= 0) throw new IllegalArgumentException("experts is " + experts + " but must be > 0");
        if (topK <= 0 || topK > experts) {
            throw new IllegalArgumentException("top_k is " + topK + " but must be in 1.." + experts + " (experts)");
        }
    }
}
