package org.moeserve.runtime.model;

import java.nio.file.Path;

/**
 * The weights of a loaded MoE checkpoint, shape-checked against its config. 2-D weights stay slices of the
 * memory-mapped files; the 1-D norm weights (a few KB) are copied to fp32 arrays because every token reads
 * them. Experts are reached through {@link #expert(int, int)}, which is what the all-resident expert store
 * serves; the engine itself only ever asks its {@code ExpertStore}.
 */
public final class MoeModel implements AutoCloseable {

    /** One decoder layer. {@code qNorm}/{@code kNorm} are null unless the family normalises q/k. */
    public record Layer(float[] inputNorm, float[] postAttentionNorm, Tensor wq, Tensor wk, Tensor wv, Tensor wo,
                        float[] qNorm, float[] kNorm, Tensor router, ExpertWeights[] experts, ExpertWeights dense) {
        public boolean sparse() { return experts != null; }
    }

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
            Tensor router = null;
            ExpertWeights[] experts = null;
            ExpertWeights dense = null;
            if (c.isSparse(l)) {
                String m = p + f.moeModule + ".";
                router = ck.tensor(m + "gate.weight", dt, c.experts(), h);
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
                    ck.tensor(a + "q_proj.weight", dt, c.qDim(), h), ck.tensor(a + "k_proj.weight", dt, c.kvDim(), h),
                    ck.tensor(a + "v_proj.weight", dt, c.kvDim(), h), ck.tensor(a + "o_proj.weight", dt, h, c.qDim()),
                    qn, kn, router, experts, dense);
        }
        return new MoeModel(ck, dt, embed, lmHead, finalNorm, layers);
    }

    public ModelConfig config() { return config; }

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

    /** Bytes of one expert's weights (all experts of a model have the same shape). */
    public long expertBytes() {
        for (Layer l : layers) if (l.sparse()) return l.experts()[0].byteSize();
        return 0;
    }

    @Override
    public void close() { checkpoint.close(); }
}
