package org.moeserve.runtime.model;

import java.util.ArrayList;
import java.util.List;

/**
 * Every tensor a checkpoint of a config must hold, with its shape, in the order {@link MoeModel} reads them: what
 * {@code moe synth} writes. Kept in step with {@link MoeModel}'s loader by a test that holds it to every shared
 * checkpoint's tensor names and shapes.
 */
public final class Manifest {
    private Manifest() {}

    /** One tensor: its checkpoint name, shape, and whether it is a norm weight (written as ones) or an expert's. */
    public record Entry(String name, int[] shape, boolean norm, boolean expert) {
        public long elements() {
            long n = 1;
            for (int d : shape) n *= d;
            return n;
        }
    }

    public static List<Entry> of(ModelConfig c) {
        Family f = c.family();
        int h = c.hiddenSize(), v = c.vocabSize();
        List<Entry> out = new ArrayList<>();
        out.add(new Entry("model.embed_tokens.weight", new int[]{v, h}, false, false));
        if (!c.tieWordEmbeddings()) out.add(new Entry("lm_head.weight", new int[]{v, h}, false, false));
        out.add(new Entry("model.norm.weight", new int[]{h}, true, false));
        for (int l = 0; l < c.layers(); l++) {
            String p = "model.layers." + l + ".", a = p + "self_attn.";
            out.add(new Entry(p + "input_layernorm.weight", new int[]{h}, true, false));
            out.add(new Entry(p + "post_attention_layernorm.weight", new int[]{h}, true, false));
            ModelConfig.Mla mla = c.mla();
            if (mla == null) {
                out.add(new Entry(a + "q_proj.weight", new int[]{c.qDim(), h}, false, false));
                out.add(new Entry(a + "k_proj.weight", new int[]{c.kvDim(), h}, false, false));
                out.add(new Entry(a + "v_proj.weight", new int[]{c.kvDim(), h}, false, false));
                if (c.qkvBias()) {
                    out.add(new Entry(a + "q_proj.bias", new int[]{c.qDim()}, false, false));
                    out.add(new Entry(a + "k_proj.bias", new int[]{c.kvDim()}, false, false));
                    out.add(new Entry(a + "v_proj.bias", new int[]{c.kvDim()}, false, false));
                }
            } else {
                if (mla.qLoraRank() == 0) {
                    out.add(new Entry(a + "q_proj.weight", new int[]{c.qDim(), h}, false, false));
                } else {
                    out.add(new Entry(a + "q_a_proj.weight", new int[]{mla.qLoraRank(), h}, false, false));
                    out.add(new Entry(a + "q_a_layernorm.weight", new int[]{mla.qLoraRank()}, true, false));
                    out.add(new Entry(a + "q_b_proj.weight", new int[]{c.qDim(), mla.qLoraRank()}, false, false));
                }
                out.add(new Entry(a + "kv_a_proj_with_mqa.weight", new int[]{mla.kvLoraRank() + mla.qkRope(), h}, false, false));
                out.add(new Entry(a + "kv_a_layernorm.weight", new int[]{mla.kvLoraRank()}, true, false));
                out.add(new Entry(a + "kv_b_proj.weight", new int[]{c.heads() * (mla.qkNope() + mla.vHead()), mla.kvLoraRank()}, false, false));
            }
            out.add(new Entry(a + "o_proj.weight", new int[]{h, c.attentionOutDim()}, false, false));
            switch (f.qkNorm) {
                case PER_HEAD -> {
                    out.add(new Entry(a + "q_norm.weight", new int[]{c.headDim()}, true, false));
                    out.add(new Entry(a + "k_norm.weight", new int[]{c.headDim()}, true, false));
                }
                case FULL_WIDTH -> {
                    out.add(new Entry(a + "q_norm.weight", new int[]{c.qDim()}, true, false));
                    out.add(new Entry(a + "k_norm.weight", new int[]{c.kvDim()}, true, false));
                }
                case NONE -> { }
            }
            if (c.isSparse(l)) {
                String m = p + f.moeModule + ".";
                out.add(new Entry(m + "gate.weight", new int[]{c.experts(), h}, false, false));
                if (c.gating().selectionBias()) {
                    out.add(new Entry(m + "gate.e_score_correction_bias", new int[]{c.experts()}, false, false));
                }
                if (c.sharedIntermediate() > 0) {
                    String s = m + (f.deepseek() ? "shared_experts." : "shared_expert.");
                    int si = c.sharedIntermediate();
                    out.add(new Entry(s + "gate_proj.weight", new int[]{si, h}, false, false));
                    out.add(new Entry(s + "up_proj.weight", new int[]{si, h}, false, false));
                    out.add(new Entry(s + "down_proj.weight", new int[]{h, si}, false, false));
                    if (c.sharedGate()) out.add(new Entry(m + "shared_expert_gate.weight", new int[]{1, h}, false, false));
                }
                int i = c.expertIntermediate();
                for (int e = 0; e < c.experts(); e++) {
                    String x = m + "experts." + e + ".";
                    out.add(new Entry(x + f.gateProj + ".weight", new int[]{i, h}, false, true));
                    out.add(new Entry(x + f.upProj + ".weight", new int[]{i, h}, false, true));
                    out.add(new Entry(x + f.downProj + ".weight", new int[]{h, i}, false, true));
                }
            } else {
                String m = p + "mlp.";
                int i = c.denseIntermediate();
                out.add(new Entry(m + "gate_proj.weight", new int[]{i, h}, false, false));
                out.add(new Entry(m + "up_proj.weight", new int[]{i, h}, false, false));
                out.add(new Entry(m + "down_proj.weight", new int[]{h, i}, false, false));
            }
        }
        return out;
    }
}
