package org.moeserve.routing;

/**
 * Line 1 of a moe-trace/1 file (shared/TRACE-FORMAT.md): what model the paths are of and their shape.
 *
 * @param layers MoE layers (dense layers of the model are not counted)
 * @param source free text: how the trace was made
 */
public record TraceHeader(String model, int layers, int experts, int topK, String source) {
    public static final String FORMAT = "moe-trace/1";

    /**
     * Bounds beyond any model served or planned (DeepSeek-V3: 58 MoE layers, 256 experts, top-8), so a corrupt or
     * hostile header cannot make a reader or the statistics allocate gigabytes (transition matrices are experts^2).
     */
    public static final int MAX_LAYERS = 1024, MAX_EXPERTS = 4096, MAX_TOP_K = 64;

    public TraceHeader {
        if (layers <= 0 || layers > MAX_LAYERS) {
            throw new IllegalArgumentException("layers is " + layers + " but must be in 1.." + MAX_LAYERS);
        }
        if (experts <= 0 || experts > MAX_EXPERTS) {
            throw new IllegalArgumentException("experts is " + experts + " but must be in 1.." + MAX_EXPERTS);
        }
        if (topK <= 0 || topK > experts || topK > MAX_TOP_K) {
            throw new IllegalArgumentException("top_k is " + topK + " but must be in 1.." + Math.min(experts, MAX_TOP_K) + " (experts)");
        }
    }
}
