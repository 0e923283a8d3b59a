package org.moeserve.runtime.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A GGUF checkpoint seen as a Hugging Face one: its metadata as the config.json it stands for, its tensors under
 * the Hugging Face names {@link MoeModel} loads, with Hugging Face shapes (rows, cols). The mapping is llama.cpp's
 * (convert_hf_to_gguf.py, read backwards):
 *
 * <pre>
 * token_embd / output_norm / output                model.embed_tokens / model.norm / lm_head
 * blk.N.attn_norm, ffn_norm                        input_layernorm, post_attention_layernorm
 * blk.N.attn_q/k/v/output, attn_q_norm/k_norm      self_attn.q_proj/k_proj/v_proj/o_proj, q_norm/k_norm
 * blk.N.ffn_gate_inp                               the router (block_sparse_moe.gate / mlp.gate)
 * blk.N.ffn_gate_exps/up_exps/down_exps [in,out,E] expert E's gate/up/down: slice E of the stack, no copy
 * blk.N.ffn_gate.E / ffn_up.E / ffn_down.E         the same, from older files with one tensor per expert
 * </pre>
 *
 * Architectures: {@code llama} with experts (Mixtral), {@code qwen3moe}, {@code olmoe}. llama.cpp permutes the q and k
 * rows of the llama architecture for its interleaved RoPE; those two matrices are copied back to Hugging Face's
 * rotate-half order at load (rows move whole, so quantized rows move as they are). Everything else is a slice of the
 * mapping.
 */
final class GgufModel {
    private GgufModel() {}

    record Loaded(ModelConfig config, JsonNode rawConfig, Map<String, Tensor> tensors) {}

    /** The config a GGUF file's metadata stands for, with the config.json it would be (nothing mapped or copied). */
    record Config(ModelConfig config, ObjectNode raw, String arch, Family family, long experts) {}

    static Config config(GgufFile g) {
        String arch = String.valueOf(g.require("general.architecture"));
        Family family = switch (arch) {
            case "llama" -> Family.MIXTRAL;
            case "qwen3moe" -> Family.QWEN3_MOE;
            case "olmoe" -> Family.OLMOE;
            default -> throw new CheckpointException(g.path() + ": general.architecture is " + arch
                    + "; moe-serve reads GGUF files of the architectures llama (with experts: Mixtral), qwen3moe and olmoe");
        };
        Map<String, GgufFile.Info> t = g.tensors();
        GgufFile.Info embed = t.get("token_embd.weight");
        if (embed == null || embed.dims().length != 2) throw new CheckpointException(g.path() + ": tensor token_embd.weight is missing or not 2-D");
        ObjectNode c = new ObjectMapper().createObjectNode();
        c.putArray("architectures").add(family.architecture);
        c.put("model_type", switch (family) { case MIXTRAL -> "mixtral"; case QWEN3_MOE -> "qwen3_moe"; default -> "olmoe"; });
        c.put("hidden_act", "silu");
        c.put("vocab_size", embed.dims()[1]);
        c.put("hidden_size", integer(g, arch + ".embedding_length"));
        c.put("num_hidden_layers", integer(g, arch + ".block_count"));
        c.put("num_attention_heads", integer(g, arch + ".attention.head_count"));
        if (g.metadata().containsKey(arch + ".attention.head_count_kv")) c.put("num_key_value_heads", integer(g, arch + ".attention.head_count_kv"));
        if (g.metadata().containsKey(arch + ".attention.key_length")) c.put("head_dim", integer(g, arch + ".attention.key_length"));
        c.put("rms_norm_eps", number(g, arch + ".attention.layer_norm_rms_epsilon"));
        if (g.metadata().containsKey(arch + ".rope.freq_base")) c.put("rope_theta", number(g, arch + ".rope.freq_base"));
        if (g.metadata().containsKey(arch + ".context_length")) c.put("max_position_embeddings", integer(g, arch + ".context_length"));
        Object scaling = g.metadata().get(arch + ".rope.scaling.type");
        if (scaling != null && !"none".equals(scaling)) {
            throw new CheckpointException(g.path() + ": " + arch + ".rope.scaling.type is " + scaling + "; only plain RoPE is supported");
        }
        long experts = g.metadata().containsKey(arch + ".expert_count") ? integer(g, arch + ".expert_count") : 0;
        if (experts == 0) {
            throw new CheckpointException(g.path() + ": " + arch + ".expert_count is missing or 0: a dense model; moe-serve serves mixtures of experts");
        }
        long used = integer(g, arch + ".expert_used_count");
        int expertWidth = expertWidth(g, t);
        switch (family) {
            case MIXTRAL -> {
                c.put("num_local_experts", experts);
                c.put("intermediate_size", expertWidth);
            }
            case QWEN3_MOE -> {
                c.put("num_experts", experts);
                c.put("moe_intermediate_size", expertWidth);
                if (g.metadata().containsKey(arch + ".feed_forward_length")) c.put("intermediate_size", integer(g, arch + ".feed_forward_length"));
                c.put("norm_topk_prob", bool(g, arch + ".expert_weights_norm", true)); // llama.cpp renormalises for qwen3moe
            }
            default -> {
                c.put("num_experts", experts);
                c.put("intermediate_size", expertWidth);
                c.put("norm_topk_prob", bool(g, arch + ".expert_weights_norm", false));
            }
        }
        c.put("num_experts_per_tok", used);
        c.put("tie_word_embeddings", !t.containsKey("output.weight"));
        if (g.metadata().get("tokenizer.ggml.bos_token_id") instanceof Long b) c.put("bos_token_id", b);
        if (g.metadata().get("tokenizer.ggml.eos_token_id") instanceof Long e) c.put("eos_token_id", e);
        ModelConfig config = ModelConfig.fromJson(c, g.path());
        if (g.metadata().get(arch + ".rope.dimension_count") instanceof Long rd && rd != config.headDim()) {
            throw new CheckpointException(g.path() + ": " + arch + ".rope.dimension_count is " + rd + " but the head is "
                    + config.headDim() + " wide; partial RoPE is not supported");
        }
        return new Config(config, c, arch, family, experts);
    }

    static Loaded load(GgufFile g, Arena arena) {
        Config cf = config(g);
        ModelConfig config = cf.config();
        String arch = cf.arch();
        Family family = cf.family();
        long experts = cf.experts();
        Map<String, GgufFile.Info> t = g.tensors();
        Map<String, Tensor> out = new LinkedHashMap<>();
        put(out, g, "token_embd.weight", "model.embed_tokens.weight");
        put(out, g, "output_norm.weight", "model.norm.weight");
        put(out, g, "output.weight", "lm_head.weight");
        for (int l = 0; l < config.layers(); l++) {
            String b = "blk." + l + ".", p = "model.layers." + l + ".", a = p + "self_attn.", m = p + family.moeModule + ".";
            put(out, g, b + "attn_norm.weight", p + "input_layernorm.weight");
            put(out, g, b + "ffn_norm.weight", p + "post_attention_layernorm.weight");
            put(out, g, b + "attn_v.weight", a + "v_proj.weight");
            put(out, g, b + "attn_output.weight", a + "o_proj.weight");
            put(out, g, b + "attn_q_norm.weight", a + "q_norm.weight");
            put(out, g, b + "attn_k_norm.weight", a + "k_norm.weight");
            put(out, g, b + "ffn_gate_inp.weight", m + "gate.weight");
            if (family == Family.MIXTRAL) { // llama.cpp's interleaved RoPE rows, back to rotate-half
                unpermuted(out, g, arena, b + "attn_q.weight", a + "q_proj.weight", config.heads());
                unpermuted(out, g, arena, b + "attn_k.weight", a + "k_proj.weight", config.kvHeads());
            } else {
                put(out, g, b + "attn_q.weight", a + "q_proj.weight");
                put(out, g, b + "attn_k.weight", a + "k_proj.weight");
            }
            String[] hf = {family.gateProj, family.upProj, family.downProj}, gg = {"ffn_gate", "ffn_up", "ffn_down"};
            for (int k = 0; k < 3; k++) {
                GgufFile.Info stack = t.get(b + gg[k] + "_exps.weight");
                if (stack != null) {
                    if (stack.dims().length != 3 || stack.dims()[2] != experts) {
                        throw new CheckpointException(g.path() + ": tensor " + stack.name() + " has dimensions " + java.util.Arrays.toString(stack.dims())
                                + "; expected [in, out, " + experts + "] (" + arch + ".expert_count)");
                    }
                    DType dt = g.dtype(stack);
                    MemorySegment all = g.bytes(stack);
                    int cols = (int) stack.dims()[0], rows = (int) stack.dims()[1];
                    long one = dt.byteSize((long) rows * cols);
                    for (int e = 0; e < stack.dims()[2]; e++) {
                        String name = m + "experts." + e + "." + hf[k] + ".weight";
                        out.put(name, tensor(g, stack, name, new int[]{rows, cols}, all.asSlice(e * one, one)));
                    }
                } else {
                    for (int e = 0; e < experts; e++) put(out, g, b + gg[k] + "." + e + ".weight", m + "experts." + e + "." + hf[k] + ".weight");
                }
                put(out, g, b + gg[k] + ".weight", p + "mlp." + DENSE[k] + ".weight"); // a dense layer's MLP
            }
        }
        return new Loaded(config, cf.raw(), out);
    }

    private static final String[] DENSE = {"gate_proj", "up_proj", "down_proj"};

    /** Expert width from the stacked gate (or expert 0's gate) of the first layer. */
    private static int expertWidth(GgufFile g, Map<String, GgufFile.Info> t) {
        GgufFile.Info gate = t.get("blk.0.ffn_gate_exps.weight");
        if (gate == null) gate = t.get("blk.0.ffn_gate.0.weight");
        if (gate == null || gate.dims().length < 2) {
            throw new CheckpointException(g.path() + ": tensor blk.0.ffn_gate_exps.weight is missing; a MoE GGUF stores its experts there");
        }
        return (int) gate.dims()[1];
    }

    private static void put(Map<String, Tensor> out, GgufFile g, String gguf, String hf) {
        GgufFile.Info i = g.tensors().get(gguf);
        if (i == null) return; // Checkpoint.tensor names the missing one if the model needs it
        if (i.dims().length > 2) throw new CheckpointException(g.path() + ": tensor " + gguf + " has " + i.dims().length + " dimensions; expected 1 or 2");
        int[] shape = i.dims().length == 1 ? new int[]{(int) i.dims()[0]} : new int[]{(int) i.dims()[1], (int) i.dims()[0]};
        out.put(hf, tensor(g, i, hf, shape, g.bytes(i)));
    }

    private static Tensor tensor(GgufFile g, GgufFile.Info i, String hf, int[] shape, MemorySegment bytes) {
        try {
            return new Tensor(hf, g.dtype(i), shape, bytes);
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(g.path() + ": tensor " + i.name() + ": " + e.getMessage());
        }
    }

    /** Rows of each head from ggml's interleaved pairs back to [first half, second half], into memory of the arena. */
    private static void unpermuted(Map<String, Tensor> out, GgufFile g, Arena arena, String gguf, String hf, int heads) {
        GgufFile.Info i = g.tensors().get(gguf);
        if (i == null) return;
        int rows = (int) i.dims()[1], cols = (int) i.dims()[0], d = rows / heads, half = d / 2;
        MemorySegment src = g.bytes(i);
        long rowBytes = src.byteSize() / rows;
        MemorySegment dst = arena.allocate(src.byteSize(), 64);
        for (int h = 0; h < heads; h++) {
            for (int j = 0; j < 2; j++) {
                for (int k = 0; k < half; k++) {
                    MemorySegment.copy(src, (long) (h * d + 2 * k + j) * rowBytes, dst, (long) (h * d + j * half + k) * rowBytes, rowBytes);
                }
            }
        }
        out.put(hf, tensor(g, i, hf, new int[]{rows, cols}, dst));
    }

    private static long integer(GgufFile g, String key) {
        if (g.require(key) instanceof Long v) return v;
        throw new CheckpointException(g.path() + ": metadata " + key + " is " + g.require(key) + " but must be an integer");
    }

    private static double number(GgufFile g, String key) {
        Object v = g.require(key);
        if (v instanceof Double d) return d;
        if (v instanceof Long l) return l;
        throw new CheckpointException(g.path() + ": metadata " + key + " is " + v + " but must be a number");
    }

    private static boolean bool(GgufFile g, String key, boolean dflt) {
        return g.metadata().get(key) instanceof Boolean b ? b : dflt;
    }

    /** The metadata's token list (for the tokenizer), or null. */
    @SuppressWarnings("unchecked")
    static List<Object> list(GgufFile g, String key) {
        return g.metadata().get(key) instanceof List<?> l ? (List<Object>) l : null;
    }
}
