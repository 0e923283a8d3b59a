package org.moeserve.runtime.model;

/**
 * The MoE families we load, and what differs between them. Tensor names are the Hugging Face ones.
 *
 * <pre>
 *                 expert tensors                          router             q/k norm             top-k renorm
 * Mixtral         block_sparse_moe.experts.E.w1/w3/w2    block_sparse_moe.gate  none               always
 * Qwen3-MoE       mlp.experts.E.gate_proj/up_proj/down_proj  mlp.gate        per head (head_dim)   norm_topk_prob
 * OLMoE           mlp.experts.E.gate_proj/up_proj/down_proj  mlp.gate        full width            norm_topk_prob (false)
 * Qwen2-MoE       mlp.experts.E.gate_proj/up_proj/down_proj  mlp.gate        none (q/k/v biases)   norm_topk_prob (false)
 *                 + mlp.shared_expert, scaled by sigmoid(mlp.shared_expert_gate x)
 * DeepSeek-V2/V3  mlp.experts.E.gate_proj/up_proj/down_proj  mlp.gate        none (MLA)            norm_topk_prob, x routed_scaling_factor
 *                 + mlp.shared_experts (n_shared_experts x moe_intermediate_size wide), added for every token
 * </pre>
 *
 * DeepSeek attention is multi-head latent attention ({@link ModelConfig.Mla}); its routing is grouped and, for V3,
 * sigmoid-scored with a selection bias ({@link ModelConfig.Gating}).
 */
public enum Family {
    MIXTRAL("MixtralForCausalLM", "block_sparse_moe", "w1", "w3", "w2", QkNorm.NONE),
    QWEN3_MOE("Qwen3MoeForCausalLM", "mlp", "gate_proj", "up_proj", "down_proj", QkNorm.PER_HEAD),
    OLMOE("OlmoeForCausalLM", "mlp", "gate_proj", "up_proj", "down_proj", QkNorm.FULL_WIDTH),
    QWEN2_MOE("Qwen2MoeForCausalLM", "mlp", "gate_proj", "up_proj", "down_proj", QkNorm.NONE),
    DEEPSEEK_V2("DeepseekV2ForCausalLM", "mlp", "gate_proj", "up_proj", "down_proj", QkNorm.NONE),
    DEEPSEEK_V3("DeepseekV3ForCausalLM", "mlp", "gate_proj", "up_proj", "down_proj", QkNorm.NONE);

    /** Where the q/k RMSNorm applies: not at all, over each head's head_dim, or over the whole projection. */
    public enum QkNorm { NONE, PER_HEAD, FULL_WIDTH }

    public final String architecture;
    public final String moeModule;
    public final String gateProj, upProj, downProj;
    public final QkNorm qkNorm;

    Family(String architecture, String moeModule, String gateProj, String upProj, String downProj, QkNorm qkNorm) {
        this.architecture = architecture;
        this.moeModule = moeModule;
        this.gateProj = gateProj;
        this.upProj = upProj;
        this.downProj = downProj;
        this.qkNorm = qkNorm;
    }

    /** DeepSeek-V2 and V3: multi-head latent attention, grouped routing, shared experts, leading dense layers. */
    public boolean deepseek() { return this == DEEPSEEK_V2 || this == DEEPSEEK_V3; }

    public static Family fromArchitecture(String architecture) {
        for (Family f : values()) if (f.architecture.equals(architecture)) return f;
        return null;
    }

    public static String supported() {
        StringBuilder sb = new StringBuilder();
        for (Family f : values()) sb.append(sb.isEmpty() ? "" : ", ").append(f.architecture);
        return sb.toString();
    }
}
