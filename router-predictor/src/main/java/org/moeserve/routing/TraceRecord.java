package org.moeserve.routing;

/**
 * One sequence of a moe-trace/1 file: every token's expert path.
 *
 * @param experts experts[t][l] = top-k expert ids of token t at MoE layer l, highest weight first; -1 = unknown.
 *                Shape (tokens, layers, top_k).
 * @param weights same shape, the routing weights applied; null if not recorded; NaN = unknown cell
 * @param tokens  token ids, or an empty array when unknown
 * @param phase   prefill, decode or mixed
 */
public record TraceRecord(String id, String domain, String phase, int[] tokens, int[][][] experts, float[][][] weights) {
    public TraceRecord {
        if (!phase.equals("prefill") && !phase.equals("decode") && !phase.equals("mixed")) {
            throw new IllegalArgumentException("phase is " + phase + " but must be prefill, decode or mixed");
        }
        if (tokens.length != 0 && tokens.length != experts.length) {
            throw new IllegalArgumentException("sequence " + id + ": " + tokens.length + " tokens but "
                    + experts.length + " expert paths; tokens must be empty or one per path");
        }
        if (weights != null && weights.length != experts.length) {
            throw new IllegalArgumentException("sequence " + id + ": " + weights.length + " weight rows but "
                    + experts.length + " expert paths");
        }
    }

    public int length() { return experts.length; }
}
