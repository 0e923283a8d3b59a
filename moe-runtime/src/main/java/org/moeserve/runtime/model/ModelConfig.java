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
    public static ModelConfig fromJson(JsonNode c, Path file) {
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
        try {
            int hidden = req(c, "hidden_size", file);
            int heads = req(c, "num_attention_heads", file);
            int layers = req(c, "num_hidden_layers", file);
            int headDim = c.hasNonNull("head_dim") ? c.get("head_dim").asInt() : hidden / heads;
            int experts, inter, dense;
            boolean norm;
            boolean[] sparse = new boolean[layers];
            switch (family) {
                case MIXTRAL -> {
                    experts = req(c, "num_local_experts", file);
                    inter = req(c, "intermediate_size", file);
                    dense = inter;
                    norm = true; // Mixtral always renormalises its top-k weights
                    Arrays.fill(sparse, true);
                }
                case QWEN3_MOE -> {
                    experts = req(c, "num_experts", file);
                    inter = req(c, "moe_intermediate_size", file);
                    dense = c.path("intermediate_size").asInt(inter);
                    norm = c.path("norm_topk_prob").asBoolean(false);
                    int step = c.path("decoder_sparse_step").asInt(1);
                    boolean[] denseOnly = new boolean[layers];
                    for (JsonNode l : c.path("mlp_only_layers")) {
                        if (l.asInt() >= 0 && l.asInt() < layers) denseOnly[l.asInt()] = true;
                    }
                    for (int l = 0; l < layers; l++) sparse[l] = !denseOnly[l] && step > 0 && (l + 1) % step == 0;
                }
                case OLMOE -> {
                    experts = req(c, "num_experts", file);
                    inter = req(c, "intermediate_size", file);
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
            return new ModelConfig(family, c.path("model_type").asText(""), req(c, "vocab_size", file), hidden,
                    layers, heads, c.path("num_key_value_heads").asInt(heads), headDim,
                    (float) c.path("rms_norm_eps").asDouble(1e-6), c.path("rope_theta").asDouble(10000.0),
                    c.path("max_position_embeddings").asInt(4096), experts, req(c, "num_experts_per_tok", file),
                    inter, dense, norm, sparse, c.path("tie_word_embeddings").asBoolean(false),
                    c.path("bos_token_id").asInt(-1), eosIds);
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(file + ": " + e.getMessage(), e);
        }
    }

    private static int req(JsonNode c, String field, Path file) {
        JsonNode v = c.get(field);
        if (v == null || !v.canConvertToInt()) {
            throw new CheckpointException(file + ": " + field + " is " + (v == null ? "missing" : v)
                    + " but must be an integer");
        }
        return v.asInt();
    }
}
