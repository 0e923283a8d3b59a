package org.moeserve.runtime.model;

import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * What config.json says, normalised over the families. Validated on construction: a field that is missing or
 * out of range fails with the file, the field, its value and the rule.
 *
 * @param sparseLayers per layer, true where the MLP is an MoE block (Qwen3-MoE may interleave dense layers)
 */
public record ModelConfig(
        Family family, String modelType, int vocabSize, int hiddenSize, int layers, int heads, int kvHeads,
        int headDim, float rmsNormEps, double ropeTheta, int maxPositions, int experts, int topK,
        int expertIntermediate, int denseIntermediate, boolean normTopKProb, boolean[] sparseLayers,
        boolean tieWordEmbeddings, int bosTokenId, int[] eosTokenIds) {

    public ModelConfig {
        sparseLayers = sparseLayers.clone();
        eosTokenIds = eosTokenIds.clone();
        require(hiddenSize > 0, "hidden_size", hiddenSize, "> 0");
        require(layers > 0, "num_hidden_layers", layers, "> 0");
        require(heads > 0, "num_attention_heads", heads, "> 0");
        require(kvHeads > 0 && heads % kvHeads == 0, "num_key_value_heads", kvHeads,
                "> 0 and divide num_attention_heads (" + heads + ")");
        require(headDim > 0 && headDim % 2 == 0, "head_dim", headDim, "a positive even number (RoPE rotates halves)");
        require(experts > 0, "num_experts", experts, "> 0");
        require(topK > 0 && topK <= experts, "num_experts_per_tok", topK, "<= the number of experts (" + experts + ")");
        require(vocabSize > 0, "vocab_size", vocabSize, "> 0");
        require(maxPositions > 0, "max_position_embeddings", maxPositions, "> 0");
        require(sparseLayers.length == layers, "sparse layer map", sparseLayers.length, "== num_hidden_layers");
    }

    private static void require(boolean ok, String field, Object value, String rule) {
        if (!ok) throw new IllegalArgumentException(field + " is " + value + " but must be " + rule);
    }

    public int qDim() { return heads * headDim; }

    public int kvDim() { return kvHeads * headDim; }

    public boolean isSparse(int layer) { return sparseLayers[layer]; }

    /**
     * The MoE-layer number of each model layer, -1 for a dense layer: routing data (traces, predictors, the expert
     * cache) numbers only the MoE layers, consecutively.
     */
    public int[] moeLayerIndex() {
        int[] idx = new int[layers];
        int n = 0;
        for (int l = 0; l < layers; l++) idx[l] = sparseLayers[l] ? n++ : -1;
        return idx;
    }

    /** The model layer of each MoE layer: the inverse of {@link #moeLayerIndex}. */
    public int[] modelLayerOf() {
        int[] out = new int[moeLayers()];
        int n = 0;
        for (int l = 0; l < layers; l++) if (sparseLayers[l]) out[n++] = l;
        return out;
    }

    /** How many layers are MoE layers. */
    public int moeLayers() {
        int n = 0;
        for (boolean s : sparseLayers) if (s) n++;
        return n;
    }

    public boolean isEos(int token) {
        for (int e : eosTokenIds) if (e == token) return true;
        return false;
    }

    /** Parses config.json of a supported family; {@code file} is only for messages. */
    public static ModelConfig fromJson(JsonNode c, Path relative) {
        Path file = relative.toAbsolutePath().normalize(); // errors name the whole path
        JsonNode archs = c.get("architectures");
        String arch = archs != null && archs.isArray() && !archs.isEmpty() ? archs.get(0).asText() : null;
        Family family = arch == null ? null : Family.fromArchitecture(arch);
        if (family == null) {
            throw new CheckpointException(file + ": architectures is " + (archs == null ? "missing" : archs)
                    + "; supported architectures are " + Family.supported());
        }
        JsonNode ropeScaling = c.get("rope_scaling");
        if (ropeScaling != null && !ropeScaling.isNull()) {
            throw new CheckpointException(file + ": rope_scaling is " + ropeScaling + " but only null (plain RoPE) "
                    + "is supported");
        }
        refuseUnless(c, "sliding_window", v -> v.isNull() || !c.path("use_sliding_window").asBoolean(family != Family.QWEN3_MOE), file,
                "sliding-window attention is not supported (use a checkpoint without it, or set use_sliding_window false)");
        refuseUnless(c, "hidden_act", v -> v.asText().equals("silu"), file, "only silu (SwiGLU experts) is supported");
        try {
            int hidden = req(c, "hidden_size", file, 1, 1 << 16);
            int heads = req(c, "num_attention_heads", file, 1, 1024);
            int layers = req(c, "num_hidden_layers", file, 1, 1024);
            int headDim = c.hasNonNull("head_dim") ? req(c, "head_dim", file, 2, 4096) : hidden / heads;
            int experts, inter, dense;
            boolean norm;
            boolean[] sparse = new boolean[layers];
            switch (family) {
                case MIXTRAL -> {
                    experts = req(c, "num_local_experts", file, 1, 4096);
                    inter = req(c, "intermediate_size", file, 1, 1 << 18);
                    dense = inter;
                    norm = true; // Mixtral always renormalises its top-k weights
                    Arrays.fill(sparse, true);
                }
                case QWEN3_MOE -> {
                    experts = req(c, "num_experts", file, 1, 4096);
                    inter = req(c, "moe_intermediate_size", file, 1, 1 << 18);
                    dense = c.hasNonNull("intermediate_size") ? req(c, "intermediate_size", file, 1, 1 << 18) : inter;
                    norm = c.path("norm_topk_prob").asBoolean(false);
                    int step = c.path("decoder_sparse_step").asInt(1);
                    boolean[] denseOnly = new boolean[layers];
                    for (JsonNode l : c.path("mlp_only_layers")) {
                        if (l.asInt() >= 0 && l.asInt() < layers) denseOnly[l.asInt()] = true;
                    }
                    for (int l = 0; l < layers; l++) sparse[l] = !denseOnly[l] && step > 0 && (l + 1) % step == 0;
                }
                case OLMOE -> {
                    experts = req(c, "num_experts", file, 1, 4096);
                    inter = req(c, "intermediate_size", file, 1, 1 << 18);
                    dense = inter;
                    norm = c.path("norm_topk_prob").asBoolean(false);
                    Arrays.fill(sparse, true);
                    if (c.hasNonNull("clip_qkv")) {
                        throw new CheckpointException(file + ": clip_qkv is " + c.get("clip_qkv")
                                + " but only null is supported");
                    }
                }
                default -> throw new AssertionError(family);
            }
            JsonNode eos = c.get("eos_token_id");
            int[] eosIds;
            if (eos == null || eos.isNull()) eosIds = new int[0];
            else if (eos.isArray()) {
                eosIds = new int[eos.size()];
                for (int i = 0; i < eosIds.length; i++) eosIds[i] = eos.get(i).asInt();
            } else eosIds = new int[]{eos.asInt()};
            int vocab = req(c, "vocab_size", file, 1, 1 << 22);
            double eps = number(c, "rms_norm_eps", 1e-6, file);
            if (!(eps > 0 && eps < 1)) throw new IllegalArgumentException("rms_norm_eps is " + eps + " but must be in (0, 1)");
            double theta = number(c, "rope_theta", 10000.0, file);
            if (!(theta > 1 && theta < 1e12)) throw new IllegalArgumentException("rope_theta is " + theta + " but must be in (1, 1e12)");
            int maxPos = c.hasNonNull("max_position_embeddings") ? req(c, "max_position_embeddings", file, 1, Integer.MAX_VALUE) : 4096;
            int bos = c.hasNonNull("bos_token_id") ? req(c, "bos_token_id", file, 0, vocab - 1) : -1;
            for (int e : eosIds) {
                if (e < 0 || e >= vocab) throw new IllegalArgumentException("eos_token_id " + e + " is outside the vocabulary 0.." + (vocab - 1));
            }
            int kvHeads = c.hasNonNull("num_key_value_heads") ? req(c, "num_key_value_heads", file, 1, heads) : heads;
            return new ModelConfig(family, c.path("model_type").asText(""), vocab, hidden,
                    layers, heads, kvHeads, headDim, (float) eps, theta, maxPos, experts,
                    req(c, "num_experts_per_tok", file, 1, experts),
                    inter, dense, norm, sparse, c.path("tie_word_embeddings").asBoolean(false), bos, eosIds);
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(file + ": " + e.getMessage(), e);
        }
    }

    /** An integer field in [min, max]: one line naming the file, the field, its value and the range. */
    private static int req(JsonNode c, String field, Path file, int min, int max) {
        JsonNode v = c.get(field);
        if (v == null || !v.isIntegralNumber() || !v.canConvertToInt() || v.asInt() < min || v.asInt() > max) {
            throw new CheckpointException(file + ": " + field + " is " + (v == null ? "missing" : v)
                    + " but must be an integer in " + min + ".." + max);
        }
        return v.asInt();
    }

    private static double number(JsonNode c, String field, double dflt, Path file) {
        JsonNode v = c.get(field);
        if (v == null || v.isNull()) return dflt;
        if (!v.isNumber()) throw new CheckpointException(file + ": " + field + " is " + v + " but must be a number");
        return v.asDouble();
    }

    /** A field whose value the engine cannot honour: one line saying so, unless {@code ok}. */
    private static void refuseUnless(JsonNode c, String field, java.util.function.Predicate<JsonNode> ok, Path file, String why) {
        JsonNode v = c.get(field);
        if (v != null && !v.isNull() && !ok.test(v)) throw new CheckpointException(file + ": " + field + " is " + v + "; " + why);
    }
}
