package org.moeserve.runtime.model;

/**
 * The MoE families we load, and what differs between them. Tensor names are the Hugging Face ones.
 *
 * <pre>
 *                 expert tensors                          router             q/k norm             top-k renorm
 * Mixtral         block_sparse_moe.experts.E.w1/w3/w2    block_sparse_moe.gate  none               always
 * Qwen3-MoE       mlp.experts.E.gate_proj/up_proj/down_proj  mlp.gate        per head (head_dim)   norm_topk_prob
 * OLMoE           mlp.experts.E.gate_proj/up_proj/down_proj  mlp.gate        full width            norm_topk_prob (false)
 * </pre>
 */
public enum Family {
    MIXTRAL("MixtralForCausalLM", "block_sparse_moe", "w1", "w3", "w2", QkNorm.NONE),
    QWEN3_MOE("Qwen3MoeForCausalLM", "mlp", "gate_proj", "up_proj", "down_proj", QkNorm.PER_HEAD),
    OLMOE("OlmoeForCausalLM", "mlp", "gate_proj", "up_proj", "down_proj", QkNorm.FULL_WIDTH);

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
