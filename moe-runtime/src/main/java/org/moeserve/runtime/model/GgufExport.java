package org.moeserve.runtime.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a Mixtral-family checkpoint as GGUF v3 in llama.cpp's "llama" architecture (how llama.cpp's own converter
 * writes Mixtral), so the same weights run in llama.cpp for side-by-side benchmarks. Matrices keep their dtype
 * (BF16 stays BF16, bit for bit); norms are F32; experts are stacked per layer ({@code blk.N.ffn_gate_exps} etc.,
 * ggml dims [in, out, experts]); q and k rows are permuted from Hugging Face's rotate-half layout to ggml's
 * interleaved RoPE, as convert_hf_to_gguf.py does. The tokenizer goes in as llama.cpp's "gpt2" byte-level BPE:
 * vocabulary and merges from tokenizer.json, special tokens marked as control.
 */
public final class GgufExport {
    private GgufExport() { }

    private static final int ALIGN = 32;
    private static final int T_UINT32 = 4, T_INT32 = 5, T_FLOAT32 = 6, T_BOOL = 7, T_STRING = 8, T_ARRAY = 9;

    /** One tensor to write: name, ggml dims (fastest first), ggml type, its bytes in order. */
    private record Out(String name, long[] dims, int type, List<MemorySegment> parts, long bytes) { }

    public static void write(MoeModel m, Path file) throws IOException {
        ModelConfig c = m.config();
        if (c.family() != Family.MIXTRAL) {
            throw new IllegalArgumentException("GGUF export supports the Mixtral family (llama.cpp's llama architecture); this model is "
                    + c.family() + ". Export a Mixtral-layout checkpoint.");
        }
        Map<String, Object[]> kv = new LinkedHashMap<>(); // key -> {type, value}
        kv.put("general.architecture", new Object[]{T_STRING, "llama"});
        kv.put("general.name", new Object[]{T_STRING, m.name()});
        kv.put("general.alignment", new Object[]{T_UINT32, ALIGN});
        kv.put("llama.vocab_size", new Object[]{T_UINT32, c.vocabSize()});
        kv.put("llama.context_length", new Object[]{T_UINT32, c.maxPositions()});
        kv.put("llama.embedding_length", new Object[]{T_UINT32, c.hiddenSize()});
        kv.put("llama.block_count", new Object[]{T_UINT32, c.layers()});
        kv.put("llama.feed_forward_length", new Object[]{T_UINT32, c.expertIntermediate()});
        kv.put("llama.rope.dimension_count", new Object[]{T_UINT32, c.headDim()});
        kv.put("llama.attention.head_count", new Object[]{T_UINT32, c.heads()});
        kv.put("llama.attention.head_count_kv", new Object[]{T_UINT32, c.kvHeads()});
        kv.put("llama.attention.key_length", new Object[]{T_UINT32, c.headDim()});
        kv.put("llama.attention.value_length", new Object[]{T_UINT32, c.headDim()});
        kv.put("llama.attention.layer_norm_rms_epsilon", new Object[]{T_FLOAT32, c.rmsNormEps()});
        kv.put("llama.rope.freq_base", new Object[]{T_FLOAT32, (float) c.ropeTheta()});
        kv.put("llama.expert_count", new Object[]{T_UINT32, c.experts()});
        kv.put("llama.expert_used_count", new Object[]{T_UINT32, c.topK()});
        tokenizer(m.dir().resolve("tokenizer.json"), c, kv);

        List<Out> tensors = new ArrayList<>();
        tensors.add(matrix("token_embd.weight", m.embed()));
        for (int l = 0; l < c.layers(); l++) {
            MoeModel.Layer L = m.layer(l);
            String b = "blk." + l + ".";
            tensors.add(norm(b + "attn_norm.weight", L.inputNorm()));
            tensors.add(permuted(b + "attn_q.weight", L.wq(), c.heads()));
            tensors.add(permuted(b + "attn_k.weight", L.wk(), c.kvHeads()));
            tensors.add(matrix(b + "attn_v.weight", L.wv()));
            tensors.add(matrix(b + "attn_output.weight", L.wo()));
            tensors.add(norm(b + "ffn_norm.weight", L.postAttentionNorm()));
            tensors.add(matrix(b + "ffn_gate_inp.weight", L.router()));
            tensors.add(stacked(b + "ffn_gate_exps.weight", L.experts(), ExpertWeights::gate));
            tensors.add(stacked(b + "ffn_up_exps.weight", L.experts(), ExpertWeights::up));
            tensors.add(stacked(b + "ffn_down_exps.weight", L.experts(), ExpertWeights::down));
        }
        tensors.add(norm("output_norm.weight", m.finalNorm()));
        tensors.add(matrix("output.weight", m.lmHead()));

        ByteBuffer head = ByteBuffer.allocate(1 << 22).order(ByteOrder.LITTLE_ENDIAN);
        head.putInt(0x46554747).putInt(3).putLong(tensors.size()).putLong(kv.size());
        for (Map.Entry<String, Object[]> e : kv.entrySet()) {
            string(head, e.getKey());
            value(head, (int) e.getValue()[0], e.getValue()[1]);
        }
        long offset = 0;
        for (Out t : tensors) {
            string(head, t.name());
            head.putInt(t.dims().length);
            for (long d : t.dims()) head.putLong(d);
            head.putInt(t.type()).putLong(offset);
            offset = align(offset + t.bytes());
        }
        head.position((int) align(head.position()));
        head.flip();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            ch.write(head);
            long written = 0;
            for (Out t : tensors) {
                for (MemorySegment part : t.parts()) ch.write(part.asByteBuffer());
                written += t.bytes();
                long pad = align(written) - written;
                ch.write(ByteBuffer.allocate((int) pad));
                written += pad;
            }
        }
    }

    private static long align(long x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

    private static int ggmlType(DType d) {
        return switch (d) { case F32 -> 0; case F16 -> 1; case BF16 -> 30; };
    }

    private static Out matrix(String name, Tensor t) {
        return new Out(name, new long[]{t.cols(), t.rows()}, ggmlType(t.dtype()), List.of(t.data()), t.data().byteSize());
    }

    private static Out norm(String name, float[] w) {
        MemorySegment s = MemorySegment.ofArray(toBytes(w));
        return new Out(name, new long[]{w.length}, 0, List.of(s), s.byteSize());
    }

    private static byte[] toBytes(float[] w) {
        ByteBuffer b = ByteBuffer.allocate(w.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : w) b.putFloat(v);
        return b.array();
    }

    /** Rows of each head reordered from [first half, second half] to interleaved pairs (ggml's RoPE layout). */
    private static Out permuted(String name, Tensor t, int heads) {
        int rows = t.rows(), d = rows / heads, half = d / 2;
        long rowBytes = t.data().byteSize() / rows;
        List<MemorySegment> parts = new ArrayList<>(rows);
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < half; i++) {
                for (int j = 0; j < 2; j++) parts.add(t.data().asSlice((long) (h * d + j * half + i) * rowBytes, rowBytes));
            }
        }
        return new Out(name, new long[]{t.cols(), rows}, ggmlType(t.dtype()), parts, t.data().byteSize());
    }

    private static Out stacked(String name, ExpertWeights[] experts, java.util.function.Function<ExpertWeights, Tensor> part) {
        Tensor first = part.apply(experts[0]);
        List<MemorySegment> parts = new ArrayList<>();
        long bytes = 0;
        for (ExpertWeights e : experts) {
            Tensor t = part.apply(e);
            parts.add(t.data());
            bytes += t.data().byteSize();
        }
        return new Out(name, new long[]{first.cols(), first.rows(), experts.length}, ggmlType(first.dtype()), parts, bytes);
    }

    private static void tokenizer(Path file, ModelConfig c, Map<String, Object[]> kv) throws IOException {
        JsonNode t = new ObjectMapper().readTree(file.toFile());
        JsonNode model = t.path("model");
        if (!"BPE".equals(model.path("type").asText()) || !"ByteLevel".equals(t.path("pre_tokenizer").path("type").asText())) {
            throw new IllegalArgumentException(file + ": GGUF export handles byte-level BPE tokenizers (GPT-2 style); this one is "
                    + model.path("type").asText() + " with pre-tokenizer " + t.path("pre_tokenizer").path("type").asText());
        }
        String[] tokens = new String[c.vocabSize()];
        model.path("vocab").properties().forEach(e -> {
            int id = e.getValue().asInt();
            if (id < tokens.length) tokens[id] = e.getKey();
        });
        int[] types = new int[tokens.length];
        java.util.Arrays.fill(types, 1); // normal
        for (JsonNode a : t.path("added_tokens")) {
            int id = a.path("id").asInt();
            if (id >= tokens.length) continue;
            tokens[id] = a.path("content").asText();
            if (a.path("special").asBoolean()) types[id] = 3; // control
        }
        for (int i = 0; i < tokens.length; i++) {
            if (tokens[i] == null) { // an id the vocabulary skips: keep llama.cpp's tables dense
                tokens[i] = "[PAD" + i + "]";
                types[i] = 5; // unused
            }
        }
        List<String> merges = new ArrayList<>();
        for (JsonNode mg : model.path("merges")) merges.add(mg.isArray() ? mg.get(0).asText() + " " + mg.get(1).asText() : mg.asText());
        kv.put("tokenizer.ggml.model", new Object[]{T_STRING, "gpt2"});
        kv.put("tokenizer.ggml.pre", new Object[]{T_STRING, "gpt-2"}); // llama.cpp: the GPT-2 split regex
        kv.put("tokenizer.ggml.tokens", new Object[]{T_ARRAY, new Object[]{T_STRING, List.of(tokens)}});
        List<Integer> ty = new ArrayList<>();
        for (int v : types) ty.add(v);
        kv.put("tokenizer.ggml.token_type", new Object[]{T_ARRAY, new Object[]{T_INT32, ty}});
        kv.put("tokenizer.ggml.merges", new Object[]{T_ARRAY, new Object[]{T_STRING, merges}});
        kv.put("tokenizer.ggml.bos_token_id", new Object[]{T_UINT32, c.bosTokenId()});
        kv.put("tokenizer.ggml.eos_token_id", new Object[]{T_UINT32, c.eosTokenIds()[0]});
        kv.put("tokenizer.ggml.add_bos_token", new Object[]{T_BOOL, false});
    }

    private static void string(ByteBuffer b, String s) {
        byte[] u = s.getBytes(StandardCharsets.UTF_8);
        b.putLong(u.length).put(u);
    }

    @SuppressWarnings("unchecked")
    private static void value(ByteBuffer b, int type, Object v) {
        b.putInt(type);
        switch (type) {
            case T_UINT32, T_INT32 -> b.putInt((Integer) v);
            case T_FLOAT32 -> b.putFloat((Float) v);
            case T_BOOL -> b.put((byte) ((Boolean) v ? 1 : 0));
            case T_STRING -> string(b, (String) v);
            case T_ARRAY -> {
                Object[] a = (Object[]) v;
                int et = (int) a[0];
                List<Object> items = (List<Object>) a[1];
                b.putInt(et).putLong(items.size());
                for (Object o : items) {
                    if (et == T_STRING) string(b, (String) o);
                    else b.putInt((Integer) o);
                }
            }
            default -> throw new IllegalStateException("GGUF value type " + type);
        }
    }
}
