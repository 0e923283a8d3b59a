package org.moeserve.runtime.model;

import java.nio.file.Path;

/**
 * The weights of a loaded MoE checkpoint, shape-checked against its config. 2-D weights stay slices of the
 * memory-mapped files; the 1-D norm weights (a few KB) are copied to fp32 arrays because every token reads
 * them. Experts are reached through {@link #expert(int, int)}, which is what the all-resident expert store
 * serves; the engine itself only ever asks its {@code ExpertStore}.
 */
public final class MoeModel implements AutoCloseable {

    /**
     * One decoder layer. {@code qNorm}/{@code kNorm} are null unless the family normalises q/k; {@code bq/bk/bv}
     * unless it has q/k/v biases. With multi-head latent attention {@code mla} holds the attention's weights and
     * {@code wq} is q_proj (null with a q LoRA), {@code wk}/{@code wv} null. {@code shared} is the shared expert
     * (dense: always resident, never routed), {@code sharedGate} its sigmoid gate (Qwen2-MoE), {@code routerBias}
     * DeepSeek-V3's selection bias.
     */
    public record Layer(float[] inputNorm, float[] postAttentionNorm, Tensor wq, Tensor wk, Tensor wv, Tensor wo,
                        float[] qNorm, float[] kNorm, float[] bq, float[] bk, float[] bv, MlaWeights mla,
                        Tensor router, float[] routerBias, ExpertWeights[] experts, ExpertWeights dense,
                        ExpertWeights shared, Tensor sharedGate) {
        public boolean sparse() { return experts != null; }
    }

    /**
     * Multi-head latent attention's weights. {@code kUp[h]} is head h's key up-projection (qk_nope_head_dim x
     * kv_lora_rank) and {@code vUp[h]} its value up-projection (v_head_dim x kv_lora_rank), both slices of kv_b_proj:
     * q_nope . (W_k c) = (W_k^T q_nope) . c, so decode scores queries against the cached latent c directly (W_k^T
     * q_nope by {@code Kernels.matvecTransposed}, no transposed copy), and the output is W_v (sum_t p_t c_t).
     */
    public record MlaWeights(Tensor qA, float[] qANorm, Tensor qB, Tensor kvA, float[] kvANorm, Tensor kvB,
                             Tensor[] kUp, Tensor[] vUp) {}

    private final Checkpoint checkpoint;
    private final ModelConfig config;
    private final DType dtype;
    private final Tensor embed;
    private final Tensor lmHead;
    private final float[] finalNorm;
    private final Layer[] layers;
    private final int[] modelLayerOf; // MoE layer -> model layer

    private MoeModel(Checkpoint checkpoint, DType dtype, Tensor embed, Tensor lmHead, float[] finalNorm, Layer[] layers) {
        this.checkpoint = checkpoint;
        this.config = checkpoint.config();
        this.dtype = dtype;
        this.embed = embed;
        this.lmHead = lmHead;
        this.finalNorm = finalNorm;
        this.layers = layers;
        this.modelLayerOf = config.modelLayerOf();
    }

    public static MoeModel load(Path dir) {
        Checkpoint ck = Checkpoint.open(dir);
        try {
            return build(ck);
        } catch (RuntimeException e) {
            ck.close();
            throw e;
        }
    }

    private static MoeModel build(Checkpoint ck) {
        ModelConfig c = ck.config();
        Family f = c.family();
        int h = c.hiddenSize(), v = c.vocabSize();
        Tensor embed = ck.tensor("model.embed_tokens.weight", null, v, h);
        DType dt = embed.dtype();
        Tensor lmHead = c.tieWordEmbeddings() && !ck.has("lm_head.weight")
                ? embed : ck.tensor("lm_head.weight", dt, v, h);
        float[] finalNorm = ck.tensor("model.norm.weight", dt, h).toFloatArray();
        Layer[] layers = new Layer[c.layers()];
        for (int l = 0; l < layers.length; l++) {
            String p = "model.layers." + l + ".";
            String a = p + "self_attn.";
            float[] qn = null, kn = null;
            switch (f.qkNorm) {
                case PER_HEAD -> {
                    qn = ck.tensor(a + "q_norm.weight", dt, c.headDim()).toFloatArray();
                    kn = ck.tensor(a + "k_norm.weight", dt, c.headDim()).toFloatArray();
                }
                case FULL_WIDTH -> {
                    qn = ck.tensor(a + "q_norm.weight", dt, c.qDim()).toFloatArray();
                    kn = ck.tensor(a + "k_norm.weight", dt, c.kvDim()).toFloatArray();
                }
                case NONE -> { }
            }
            Tensor router = null, sharedGate = null, wq = null, wk = null, wv = null;
            float[] routerBias = null, bq = null, bk = null, bv = null;
            ExpertWeights[] experts = null;
            ExpertWeights dense = null, shared = null;
            MlaWeights mla = null;
            if (c.mla() != null) {
                mla = mla(ck, c, a, dt);
                if (c.mla().qLoraRank() == 0) wq = ck.tensor(a + "q_proj.weight", dt, c.qDim(), h);
            } else {
                wq = ck.tensor(a + "q_proj.weight", dt, c.qDim(), h);
                wk = ck.tensor(a + "k_proj.weight", dt, c.kvDim(), h);
                wv = ck.tensor(a + "v_proj.weight", dt, c.kvDim(), h);
                if (c.qkvBias()) {
                    bq = ck.tensor(a + "q_proj.bias", dt, c.qDim()).toFloatArray();
                    bk = ck.tensor(a + "k_proj.bias", dt, c.kvDim()).toFloatArray();
                    bv = ck.tensor(a + "v_proj.bias", dt, c.kvDim()).toFloatArray();
                }
            }
            if (c.isSparse(l)) {
                String m = p + f.moeModule + ".";
                router = ck.tensor(m + "gate.weight", dt, c.experts(), h);
                if (c.gating().selectionBias()) {
                    routerBias = ck.tensor(m + "gate.e_score_correction_bias", null, c.experts()).toFloatArray();
                }
                if (c.sharedIntermediate() > 0) {
                    String s = m + (f.deepseek() ? "shared_experts." : "shared_expert.");
                    int si = c.sharedIntermediate();
                    shared = new ExpertWeights(ck.tensor(s + "gate_proj.weight", dt, si, h),
                            ck.tensor(s + "up_proj.weight", dt, si, h), ck.tensor(s + "down_proj.weight", dt, h, si));
                    if (c.sharedGate()) sharedGate = ck.tensor(m + "shared_expert_gate.weight", dt, 1, h);
                }
                experts = new ExpertWeights[c.experts()];
                int i = c.expertIntermediate();
                for (int e = 0; e < experts.length; e++) {
                    String x = m + "experts." + e + ".";
                    experts[e] = new ExpertWeights(ck.tensor(x + f.gateProj + ".weight", dt, i, h),
                            ck.tensor(x + f.upProj + ".weight", dt, i, h),
                            ck.tensor(x + f.downProj + ".weight", dt, h, i));
                }
            } else {
                String m = p + "mlp.";
                int i = c.denseIntermediate();
                dense = new ExpertWeights(ck.tensor(m + "gate_proj.weight", dt, i, h),
                        ck.tensor(m + "up_proj.weight", dt, i, h), ck.tensor(m + "down_proj.weight", dt, h, i));
            }
            layers[l] = new Layer(ck.tensor(p + "input_layernorm.weight", dt, h).toFloatArray(),
                    ck.tensor(p + "post_attention_layernorm.weight", dt, h).toFloatArray(),
                    wq, wk, wv, ck.tensor(a + "o_proj.weight", dt, h, c.attentionOutDim()),
                    qn, kn, bq, bk, bv, mla, router, routerBias, experts, dense, shared, sharedGate);
        }
        return new MoeModel(ck, dt, embed, lmHead, finalNorm, layers);
    }

    private static MlaWeights mla(Checkpoint ck, ModelConfig c, String a, DType dt) {
        ModelConfig.Mla m = c.mla();
        int h = c.hiddenSize(), heads = c.heads(), rank = m.kvLoraRank(), nope = m.qkNope(), vd = m.vHead();
        Tensor qA = null, qB = null;
        float[] qANorm = null;
        if (m.qLoraRank() > 0) {
            qA = ck.tensor(a + "q_a_proj.weight", dt, m.qLoraRank(), h);
            qANorm = ck.tensor(a + "q_a_layernorm.weight", dt, m.qLoraRank()).toFloatArray();
            qB = ck.tensor(a + "q_b_proj.weight", dt, c.qDim(), m.qLoraRank());
        }
        Tensor kvA = ck.tensor(a + "kv_a_proj_with_mqa.weight", dt, rank + m.qkRope(), h);
        float[] kvANorm = ck.tensor(a + "kv_a_layernorm.weight", dt, rank).toFloatArray();
        Tensor kvB = ck.tensor(a + "kv_b_proj.weight", dt, heads * (nope + vd), rank);
        Tensor[] kUp = new Tensor[heads], vUp = new Tensor[heads];
        long rowBytes = kvB.rowBytes();
        for (int hd = 0; hd < heads; hd++) {
            long base = (long) hd * (nope + vd);
            kUp[hd] = new Tensor(kvB.name() + "[k head " + hd + "]", dt, new int[]{nope, rank},
                    kvB.data().asSlice(base * rowBytes, nope * rowBytes));
            vUp[hd] = new Tensor(kvB.name() + "[v head " + hd + "]", dt, new int[]{vd, rank},
                    kvB.data().asSlice((base + nope) * rowBytes, vd * rowBytes));
        }
        return new MlaWeights(qA, qANorm, qB, kvA, kvANorm, kvB, kUp, vUp);
    }

    public ModelConfig config() { return config; }

    /** The checkpoint the weights are mapped from (a directory's safetensors or a GGUF file). */
    public Checkpoint checkpoint() { return checkpoint; }

    public DType dtype() { return dtype; }

    public Path dir() { return checkpoint.dir(); }

    /** The memory mappings of the checkpoint's files. */
    public java.util.List<java.lang.foreign.MemorySegment> mappings() { return checkpoint.mappings(); }

    /** The file and offset a tensor's bytes come from (the disk tier reads experts there). */
    public Checkpoint.FileRange locate(Tensor t) { return checkpoint.locate(t.data()); }

    public String name() { return checkpoint.dir().toAbsolutePath().normalize().getFileName().toString(); }

    public Tensor embed() { return embed; }

    public Tensor lmHead() { return lmHead; }

    public float[] finalNorm() { return finalNorm; }

    public Layer layer(int l) { return layers[l]; }

    /**
     * The checkpoint's own copy of expert {@code e} of MoE layer {@code moeLayer} (a slice of the mmap'd file). Like
     * everything outside the layer loop, it numbers MoE layers only (dense layers skipped).
     */
    public ExpertWeights expert(int moeLayer, int e) {
        if (moeLayer < 0 || moeLayer >= modelLayerOf.length) {
            throw new IllegalArgumentException("MoE layer " + moeLayer + " does not exist; the model has " + modelLayerOf.length);
        }
        return layers[modelLayerOf[moeLayer]].experts()[e];
    }

    /**
     * Bytes of the largest expert: every expert of a layer has the same shape and type, but a quantized mix (Q4_K_M:
     * Q6_K ffn_down in some layers) makes layers differ, so cache slots and modelled transfers use the largest.
     */
    public long expertBytes() {
        long max = 0;
        for (Layer l : layers) if (l.sparse()) max = Math.max(max, l.experts()[0].byteSize());
        return max;
    }

    @Override
    public void close() { checkpoint.close(); }
}
