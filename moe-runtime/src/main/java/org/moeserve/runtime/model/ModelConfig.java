package org.moeserve.runtime.model;

import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * What config.json says, normalised over the families. Validated on construction: a field that is missing or
 * out of range fails with the file, the field, its value and the rule.
 *
 * @param sparseLayers       per layer, true where the MLP is an MoE block (Qwen3-MoE may interleave dense layers,
 *                           DeepSeek leads with dense ones)
 * @param experts            routed experts per MoE layer; shared experts are not among them
 * @param headDim            per-head query/key width (MLA: qk_nope_head_dim + qk_rope_head_dim)
 * @param mla                multi-head latent attention (DeepSeek), or null for grouped-query attention
 * @param gating             how the router scores and selects (softmax top-k for all but DeepSeek)
 * @param sharedIntermediate width of the shared expert(s) every token runs (0: none); dense, never routed
 * @param sharedGate         the shared expert's output is scaled by sigmoid(shared_expert_gate x) (Qwen2-MoE)
 * @param qkvBias            q/k/v projections have biases (Qwen2-MoE)
 * @param yarn               YaRN RoPE scaling (DeepSeek's rope_scaling), or null for plain RoPE
 */
public record ModelConfig(
        Family family, String modelType, int vocabSize, int hiddenSize, int layers, int heads, int kvHeads,
        int headDim, float rmsNormEps, double ropeTheta, int maxPositions, int experts, int topK,
        int expertIntermediate, int denseIntermediate, boolean normTopKProb, boolean[] sparseLayers,
        boolean tieWordEmbeddings, int bosTokenId, int[] eosTokenIds,
        Mla mla, Gating gating, int sharedIntermediate, boolean sharedGate, boolean qkvBias, Yarn yarn) {

    /**
     * Multi-head latent attention: queries through q_proj, or the low-rank q_a_proj, q_a_layernorm, q_b_proj when
     * {@code qLoraRank > 0}; keys and values from one latent of {@code kvLoraRank} (kv_a_proj_with_mqa, then
     * kv_a_layernorm, expanded by kv_b_proj) plus one rope key of {@code qkRope} shared by all heads.
     */
    public record Mla(int qLoraRank, int kvLoraRank, int qkNope, int qkRope, int vHead) {
        public int qkHead() { return qkNope + qkRope; }
    }

    /** How router logits become scores: softmax over the experts, or an independent sigmoid each (DeepSeek-V3). */
    public enum Scoring { SOFTMAX, SIGMOID }

    /**
     * The router's selection rule beyond top-k. With {@code groups > 1} the experts fall in equal consecutive groups,
     * only the {@code topkGroup} best groups may be chosen from, a group scoring by its best expert (V2's
     * group_limited_greedy) or by the sum of its best two ({@code top2Sum}, V3's noaux_tc). {@code selectionBias}: a
     * per-expert bias (e_score_correction_bias) is added to the scores for selection only. The final weights are
     * multiplied by {@code scale} (routed_scaling_factor).
     */
    public record Gating(Scoring scoring, int groups, int topkGroup, boolean top2Sum, boolean selectionBias, float scale) {
        public static final Gating PLAIN = new Gating(Scoring.SOFTMAX, 1, 1, false, false, 1f);
    }

    /** YaRN RoPE scaling as DeepSeek configures it (rope_scaling type yarn). */
    public record Yarn(double factor, int originalMaxPositions, double betaFast, double betaSlow, double mscale,
                       double mscaleAllDim) {
        /** yarn_get_mscale: 0.1 m ln(factor) + 1 for factor > 1. */
        public double mscale(double m) { return factor <= 1 ? 1.0 : 0.1 * m * Math.log(factor) + 1.0; }
    }

    public ModelConfig {
        sparseLayers = sparseLayers.clone();
        eosTokenIds = eosTokenIds.clone();
        if (gating == null) gating = Gating.PLAIN;
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
        require(gating.groups() > 0 && experts % gating.groups() == 0, "n_group", gating.groups(),
                "> 0 and divide the routed experts (" + experts + ")");
        require(gating.topkGroup() > 0 && gating.topkGroup() <= gating.groups(), "topk_group", gating.topkGroup(),
                "in 1..n_group (" + gating.groups() + ")");
        require(topK <= gating.topkGroup() * (experts / gating.groups()), "num_experts_per_tok", topK,
                "<= the experts in topk_group groups (" + gating.topkGroup() * (experts / gating.groups()) + ")");
        require(!gating.top2Sum() || experts / gating.groups() >= 2, "n_group", gating.groups(),
                "small enough that each group holds two experts (noaux_tc ranks groups by their best two)");
        require(sharedIntermediate >= 0, "shared expert width", sharedIntermediate, ">= 0");
        if (mla != null) {
            require(mla.kvLoraRank() > 0, "kv_lora_rank", mla.kvLoraRank(), "> 0");
            require(mla.qLoraRank() >= 0, "q_lora_rank", mla.qLoraRank(), "null or > 0");
            require(mla.qkNope() > 0, "qk_nope_head_dim", mla.qkNope(), "> 0");
            require(mla.qkRope() > 0 && mla.qkRope() % 2 == 0, "qk_rope_head_dim", mla.qkRope(), "a positive even number");
            require(mla.vHead() > 0, "v_head_dim", mla.vHead(), "> 0");
            require(headDim == mla.qkHead(), "head_dim", headDim, "qk_nope_head_dim + qk_rope_head_dim (" + mla.qkHead() + ")");
        }
    }

    /** The width RoPE rotates: the whole head, or MLA's rope part. */
    public int ropeDim() { return mla == null ? headDim : mla.qkRope(); }

    /** Width of the attention output, o_proj's input: heads x head_dim, or heads x v_head_dim for MLA. */
    public int attentionOutDim() { return mla == null ? qDim() : heads * mla.vHead(); }

    /**
     * Floats one token keeps per layer in the KV cache: keys and values of every KV head, or for MLA only the
     * compressed latent and the shared rope key (decode multiplies the absorbed projections instead of expanding).
     */
    public int kvCacheFloatsPerToken() { return mla == null ? 2 * kvDim() : mla.kvLoraRank() + mla.qkRope(); }

    /** The same for a plain cache of expanded keys and values (what MLA saves against). */
    public int plainKvCacheFloatsPerToken() { return mla == null ? 2 * kvDim() : heads * (mla.qkHead() + mla.vHead()); }

    /** Softmax scale of attention: 1/sqrt(q.k width), times YaRN's mscale(mscale_all_dim) squared where set. */
    public float attentionScale() {
        double s = 1.0 / Math.sqrt(headDim);
        if (yarn != null && yarn.mscaleAllDim() != 0) {
            double m = yarn.mscale(yarn.mscaleAllDim());
            s *= m * m;
        }
        return (float) s;
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
        Yarn yarn = null;
        if (ropeScaling != null && !ropeScaling.isNull()) {
            String type = ropeScaling.path("type").asText(ropeScaling.path("rope_type").asText(""));
            if (!family.deepseek() || !type.equals("yarn")) {
                throw new CheckpointException(file + ": rope_scaling is " + ropeScaling + " but only null (plain RoPE) "
                        + "is supported" + (family.deepseek() ? ", or type yarn" : " for " + family.architecture));
            }
            yarn = new Yarn(number(ropeScaling, "factor", 1.0, file),
                    (int) number(ropeScaling, "original_max_position_embeddings", 4096, file),
                    number(ropeScaling, "beta_fast", 32, file), number(ropeScaling, "beta_slow", 1, file),
                    number(ropeScaling, "mscale", 1, file), number(ropeScaling, "mscale_all_dim", 0, file));
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
            Mla mla = null;
            Gating gating = Gating.PLAIN;
            int shared = 0;
            boolean sharedGate = false, qkvBias = false;
            boolean[] sparse = new boolean[layers];
            switch (family) {
                case MIXTRAL -> {
                    experts = req(c, "num_local_experts", file, 1, 4096);
                    inter = req(c, "intermediate_size", file, 1, 1 << 18);
                    dense = inter;
                    norm = true; // Mixtral always renormalises its top-k weights
                    Arrays.fill(sparse, true);
                }
                case QWEN3_MOE, QWEN2_MOE -> {
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
                    if (family == Family.QWEN2_MOE) {
                        qkvBias = true;
                        sharedGate = true;
                        shared = c.hasNonNull("shared_expert_intermediate_size")
                                ? req(c, "shared_expert_intermediate_size", file, 0, 1 << 18) : 0;
                    }
                }
                case DEEPSEEK_V2, DEEPSEEK_V3 -> {
                    experts = req(c, "n_routed_experts", file, 1, 4096);
                    inter = req(c, "moe_intermediate_size", file, 1, 1 << 18);
                    dense = req(c, "intermediate_size", file, 1, 1 << 18);
                    norm = c.path("norm_topk_prob").asBoolean(false);
                    int firstDense = c.hasNonNull("first_k_dense_replace") ? req(c, "first_k_dense_replace", file, 0, layers) : 0;
                    int freq = c.hasNonNull("moe_layer_freq") ? req(c, "moe_layer_freq", file, 1, layers) : 1;
                    for (int l = 0; l < layers; l++) sparse[l] = l >= firstDense && l % freq == 0;
                    shared = (c.hasNonNull("n_shared_experts") ? req(c, "n_shared_experts", file, 0, 64) : 0) * inter;
                    int qLora = c.hasNonNull("q_lora_rank") ? req(c, "q_lora_rank", file, 1, 1 << 16) : 0;
                    mla = new Mla(qLora, req(c, "kv_lora_rank", file, 1, 1 << 16), req(c, "qk_nope_head_dim", file, 1, 4096),
                            req(c, "qk_rope_head_dim", file, 2, 4096), req(c, "v_head_dim", file, 1, 4096));
                    headDim = mla.qkHead();
                    gating = gating(c, family, experts, file);
                    if (c.path("attention_bias").asBoolean(false)) {
                        throw new CheckpointException(file + ": attention_bias is true but only false is supported for "
                                + family.architecture);
                    }
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
            int kvHeads = mla != null ? heads // MLA: every head has its own keys and values, all from one latent
                    : c.hasNonNull("num_key_value_heads") ? req(c, "num_key_value_heads", file, 1, heads) : heads;
            return new ModelConfig(family, c.path("model_type").asText(""), vocab, hidden,
                    layers, heads, kvHeads, headDim, (float) eps, theta, maxPos, experts,
                    req(c, "num_experts_per_tok", file, 1, experts),
                    inter, dense, norm, sparse, c.path("tie_word_embeddings").asBoolean(false), bos, eosIds,
                    mla, gating, shared, sharedGate, qkvBias, yarn);
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(file + ": " + e.getMessage(), e);
        }
    }

    /** DeepSeek's topk_method and scoring_func as a {@link Gating}; anything else is refused by name. */
    private static Gating gating(JsonNode c, Family family, int experts, Path file) {
        String method = c.path("topk_method").asText(family == Family.DEEPSEEK_V3 ? "noaux_tc" : "greedy");
        String scoring = c.path("scoring_func").asText(family == Family.DEEPSEEK_V3 ? "sigmoid" : "softmax");
        Scoring sc = switch (scoring) {
            case "softmax" -> Scoring.SOFTMAX;
            case "sigmoid" -> Scoring.SIGMOID;
            default -> throw new CheckpointException(file + ": scoring_func is " + scoring + " but must be softmax or sigmoid");
        };
        float scale = (float) number(c, "routed_scaling_factor", 1.0, file);
        if (!(scale > 0)) throw new CheckpointException(file + ": routed_scaling_factor is " + scale + " but must be > 0");
        int groups = c.hasNonNull("n_group") ? req(c, "n_group", file, 1, experts) : 1;
        int topkGroup = c.hasNonNull("topk_group") ? req(c, "topk_group", file, 1, groups) : groups;
        return switch (method) {
            case "greedy" -> new Gating(sc, 1, 1, false, false, scale);
            case "group_limited_greedy" -> new Gating(sc, groups, topkGroup, false, false, scale);
            case "noaux_tc" -> new Gating(sc, groups, topkGroup, true, true, scale);
            default -> throw new CheckpointException(file + ": topk_method is " + method
                    + " but must be greedy, group_limited_greedy or noaux_tc");
        };
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
