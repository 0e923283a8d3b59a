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
 * Writes a checkpoint as GGUF v3 the way llama.cpp's converter does, so the same weights run in llama.cpp (the
 * benchmarks' peer) and so that quantized files can be made ({@code moe quantize}). Architectures: Mixtral as
 * llama.cpp's "llama" (q and k rows permuted from Hugging Face's rotate-half layout to ggml's interleaved RoPE, as
 * convert_hf_to_gguf.py does), Qwen3-MoE as "qwen3moe", OLMoE as "olmoe". Experts are stacked per layer
 * ({@code blk.N.ffn_gate_exps} etc., ggml dims [in, out, experts]); norms are F32. The tokenizer goes in as llama.cpp's
 * "gpt2" byte-level BPE: vocabulary and merges from tokenizer.json, special tokens marked as control.
 *
 * <p>Without a {@link Quantization}, matrices keep their dtype bit for bit. With one, each 2-D weight in its scope
 * is decoded to fp32 and quantized ({@link Blocks}); the router ({@code ffn_gate_inp}) and the norms never are, as in
 * llama.cpp. {@code Q4_K_M} is llama.cpp's mix: Q4_K, with Q6_K for the output matrix and for attn_v and ffn_down in
 * the layers llama.cpp gives more bits (the first and last eighth and every third between). A row that is not a
 * whole number of 256 falls back as in llama.cpp: Q4_K to Q5_0, Q6_K to Q8_0; one not a multiple of 32 keeps its dtype.
 * The choice is recorded in the metadata: {@code general.file_type} (llama.cpp's number) and
 * {@code moe_serve.quantization.type} / {@code .scope}.
 */
public final class GgufExport {
    private GgufExport() { }

    private static final int ALIGN = 32;
    private static final int T_UINT32 = 4, T_INT32 = 5, T_FLOAT32 = 6, T_BOOL = 7, T_STRING = 8, T_ARRAY = 9;

    /** What {@code moe quantize} writes: a type (q8_0, q4_0, q4_k_m) over the experts only or every matrix. */
    public record Quantization(Target target, boolean expertsOnly) {
        public String scope() { return expertsOnly ? "experts" : "all"; }
    }

    /** Quantization targets, with llama.cpp's file-type numbers (llama_ftype). */
    public enum Target {
        Q8_0(7), Q4_0(2), Q4_K_M(15),
        /** Every matrix decoded to fp32: the dequantized reference of a quantized file. */
        F32(0);

        final int fileType;

        Target(int fileType) { this.fileType = fileType; }

        public static Target parse(String s) {
            for (Target t : values()) if (t.name().equalsIgnoreCase(s)) return t;
            throw new IllegalArgumentException("--type " + s + " is not one of q8_0, q4_0, q4_k_m, f32");
        }
    }

    /** Rows of a source tensor, in the order they are written. */
    private record Rows(Tensor t, int from, int to) { }

    /** One tensor to write: name, ggml dims (fastest first), its type and its rows in order. */
    private record Out(String name, long[] dims, DType type, List<Rows> rows) {
        long bytes() {
            long n = 1;
            for (long d : dims) n *= d;
            return type.byteSize(n);
        }
    }

    public static void write(MoeModel m, Path file) throws IOException { write(m, file, null); }

    public static void write(MoeModel m, Path file, Quantization q) throws IOException {
        ModelConfig c = m.config();
        String arch = switch (c.family()) {
            case MIXTRAL -> "llama";
            case QWEN3_MOE -> "qwen3moe";
            case OLMOE -> "olmoe";
            default -> throw new IllegalArgumentException("GGUF export supports Mixtral (llama.cpp's llama architecture), Qwen3-MoE "
                    + "and OLMoE; this model is " + c.family() + ", which llama.cpp runs under an architecture moe-serve does not write");
        };
        for (int l = 0; l < c.layers(); l++) {
            if (!c.isSparse(l)) throw new IllegalArgumentException("GGUF export writes models whose every layer is a MoE layer; layer " + l + " is dense");
        }
        Map<String, Object[]> kv = new LinkedHashMap<>(); // key -> {type, value}
        kv.put("general.architecture", new Object[]{T_STRING, arch});
        kv.put("general.name", new Object[]{T_STRING, m.name()});
        kv.put("general.alignment", new Object[]{T_UINT32, ALIGN});
        if (q != null) {
            kv.put("general.file_type", new Object[]{T_UINT32, q.target().fileType});
            kv.put("general.quantized_by", new Object[]{T_STRING, "moe-serve"});
            kv.put("moe_serve.quantization.type", new Object[]{T_STRING, q.target().name().toLowerCase(java.util.Locale.ROOT)});
            kv.put("moe_serve.quantization.scope", new Object[]{T_STRING, q.scope()});
        }
        kv.put(arch + ".vocab_size", new Object[]{T_UINT32, c.vocabSize()});
        kv.put(arch + ".context_length", new Object[]{T_UINT32, c.maxPositions()});
        kv.put(arch + ".embedding_length", new Object[]{T_UINT32, c.hiddenSize()});
        kv.put(arch + ".block_count", new Object[]{T_UINT32, c.layers()});
        kv.put(arch + ".feed_forward_length", new Object[]{T_UINT32, c.family() == Family.QWEN3_MOE ? c.denseIntermediate() : c.expertIntermediate()});
        if (c.family() == Family.QWEN3_MOE) kv.put(arch + ".expert_feed_forward_length", new Object[]{T_UINT32, c.expertIntermediate()});
        kv.put(arch + ".rope.dimension_count", new Object[]{T_UINT32, c.headDim()});
        kv.put(arch + ".attention.head_count", new Object[]{T_UINT32, c.heads()});
        kv.put(arch + ".attention.head_count_kv", new Object[]{T_UINT32, c.kvHeads()});
        kv.put(arch + ".attention.key_length", new Object[]{T_UINT32, c.headDim()});
        kv.put(arch + ".attention.value_length", new Object[]{T_UINT32, c.headDim()});
        kv.put(arch + ".attention.layer_norm_rms_epsilon", new Object[]{T_FLOAT32, c.rmsNormEps()});
        kv.put(arch + ".rope.freq_base", new Object[]{T_FLOAT32, (float) c.ropeTheta()});
        kv.put(arch + ".expert_count", new Object[]{T_UINT32, c.experts()});
        kv.put(arch + ".expert_used_count", new Object[]{T_UINT32, c.topK()});
        if (c.family() != Family.MIXTRAL) kv.put(arch + ".expert_weights_norm", new Object[]{T_BOOL, c.normTopKProb()});
        tokenizer(m.dir(), c, kv);

        int n = c.layers();
        List<Out> tensors = new ArrayList<>();
        tensors.add(matrix("token_embd.weight", m.embed(), pick(q, m.embed(), false, false)));
        for (int l = 0; l < n; l++) {
            MoeModel.Layer L = m.layer(l);
            String b = "blk." + l + ".";
            boolean more = l < n / 8 || l >= 7 * n / 8 || (l - n / 8) % 3 == 2; // llama.cpp's use_more_bits
            tensors.add(norm(b + "attn_norm.weight", L.inputNorm()));
            if (c.family() == Family.MIXTRAL) {
                tensors.add(permuted(b + "attn_q.weight", L.wq(), c.heads(), pick(q, L.wq(), false, false)));
                tensors.add(permuted(b + "attn_k.weight", L.wk(), c.kvHeads(), pick(q, L.wk(), false, false)));
            } else {
                tensors.add(matrix(b + "attn_q.weight", L.wq(), pick(q, L.wq(), false, false)));
                tensors.add(matrix(b + "attn_k.weight", L.wk(), pick(q, L.wk(), false, false)));
            }
            tensors.add(matrix(b + "attn_v.weight", L.wv(), pick(q, L.wv(), false, more)));
            tensors.add(matrix(b + "attn_output.weight", L.wo(), pick(q, L.wo(), false, false)));
            if (L.qNorm() != null) {
                tensors.add(norm(b + "attn_q_norm.weight", L.qNorm()));
                tensors.add(norm(b + "attn_k_norm.weight", L.kNorm()));
            }
            tensors.add(norm(b + "ffn_norm.weight", L.postAttentionNorm()));
            // the router is never quantized; in a quantized file it is F32 (lossless from BF16/F16), which llama.cpp
            // multiplies with fp32 activations, as moe-serve does: expert choices near a tie then agree
            tensors.add(matrix(b + "ffn_gate_inp.weight", L.router(), q == null || L.router().dtype().quantized() ? L.router().dtype() : DType.F32));
            ExpertWeights e0 = L.experts()[0];
            tensors.add(stacked(b + "ffn_gate_exps.weight", L.experts(), ExpertWeights::gate, pick(q, e0.gate(), true, false)));
            tensors.add(stacked(b + "ffn_up_exps.weight", L.experts(), ExpertWeights::up, pick(q, e0.up(), true, false)));
            tensors.add(stacked(b + "ffn_down_exps.weight", L.experts(), ExpertWeights::down, pick(q, e0.down(), true, more)));
        }
        tensors.add(norm("output_norm.weight", m.finalNorm()));
        if (m.lmHead() != m.embed()) tensors.add(matrix("output.weight", m.lmHead(), pick(q, m.lmHead(), false, true)));

        ByteBuffer head = ByteBuffer.allocate(headerBytes(kv, tensors)).order(ByteOrder.LITTLE_ENDIAN);
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
            head.putInt(t.type().ggmlType()).putLong(offset);
            offset = align(offset + t.bytes());
        }
        head.position((int) align(head.position()));
        head.flip();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            ch.write(head);
            long written = 0;
            for (Out t : tensors) {
                long before = written;
                for (Rows r : t.rows()) written += writeRows(ch, r, t.type());
                if (written - before != t.bytes()) throw new IllegalStateException(t.name() + ": wrote " + (written - before) + " of " + t.bytes() + " bytes");
                long pad = align(written) - written;
                ch.write(ByteBuffer.allocate((int) pad));
                written += pad;
            }
        }
    }

    /**
     * The type a matrix is written in: its own without quantization, or outside the scope; else the target, for
     * Q4_K_M Q6_K where {@code moreBits}; with llama.cpp's fallbacks for rows that do not fit the blocks.
     */
    private static DType pick(Quantization q, Tensor t, boolean expert, boolean moreBits) {
        if (q == null || (q.expertsOnly() && !expert)) return t.dtype();
        DType want = switch (q.target()) {
            case Q8_0 -> DType.Q8_0;
            case Q4_0 -> DType.Q4_0;
            case Q4_K_M -> moreBits ? DType.Q6_K : DType.Q4_K;
            case F32 -> DType.F32;
        };
        int cols = t.cols();
        if (cols % want.blockElems() != 0) want = want == DType.Q4_K ? DType.Q5_0 : want == DType.Q6_K ? DType.Q8_0 : want;
        return cols % want.blockElems() == 0 ? want : t.dtype();
    }

    /** Writes rows [from, to) of r.t as {@code type}: the bytes as they are, or decoded and quantized, in parallel. */
    private static long writeRows(FileChannel ch, Rows r, DType type) throws IOException {
        Tensor t = r.t();
        long rowBytes = t.rowBytes();
        if (t.dtype() == type) {
            MemorySegment slice = t.data().asSlice(r.from() * rowBytes, (r.to() - r.from()) * rowBytes);
            ch.write(slice.isNative() ? slice.asByteBuffer() : ByteBuffer.wrap(slice.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)));
            return (r.to() - r.from()) * rowBytes;
        }
        int cols = t.cols();
        long outRow = type.byteSize(cols), total = 0;
        int chunk = (int) Math.max(1, Math.min(r.to() - r.from(), (8L << 20) / Math.max(outRow, cols * 4L)));
        for (int from = r.from(); from < r.to(); from += chunk) {
            int f = from, count = Math.min(chunk, r.to() - from);
            MemorySegment out = MemorySegment.ofArray(new byte[Math.toIntExact(count * outRow)]);
            java.util.stream.IntStream.range(0, count).parallel().forEach(i -> {
                float[] row = new float[cols];
                t.row(f + i, row);
                if (type == DType.F32) MemorySegment.copy(row, 0, out, java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i * outRow, cols);
                else Blocks.quantize(type, row, 0, cols, out, i * outRow);
            });
            ch.write(out.asByteBuffer());
            total += out.byteSize();
        }
        return total;
    }

    private static int headerBytes(Map<String, Object[]> kv, List<Out> tensors) {
        long n = 64;
        for (Map.Entry<String, Object[]> e : kv.entrySet()) {
            n += 16 + e.getKey().length() * 3L;
            if (e.getValue()[1] instanceof Object[] a) for (Object o : (List<?>) a[1]) n += 12 + (o instanceof String s ? s.length() * 3L : 4);
            else if (e.getValue()[1] instanceof String s) n += 8 + s.length() * 3L;
            else n += 8;
        }
        for (Out t : tensors) n += 64 + t.name().length() * 3L;
        return Math.toIntExact(n + ALIGN);
    }

    private static long align(long x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

    private static Out matrix(String name, Tensor t, DType type) {
        return new Out(name, new long[]{t.cols(), t.rows()}, type, List.of(new Rows(t, 0, t.rows())));
    }

    private static Out norm(String name, float[] w) {
        return new Out(name, new long[]{w.length}, DType.F32, List.of(new Rows(Tensor.ofFloats(name, w, 1, w.length), 0, 1)));
    }

    /** Rows of each head reordered from [first half, second half] to interleaved pairs (ggml's RoPE layout). */
    private static Out permuted(String name, Tensor t, int heads, DType type) {
        int rows = t.rows(), d = rows / heads, half = d / 2;
        List<Rows> parts = new ArrayList<>(rows);
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < half; i++) {
                for (int j = 0; j < 2; j++) {
                    int r = h * d + j * half + i;
                    parts.add(new Rows(t, r, r + 1));
                }
            }
        }
        return new Out(name, new long[]{t.cols(), rows}, type, parts);
    }

    private static Out stacked(String name, ExpertWeights[] experts, java.util.function.Function<ExpertWeights, Tensor> part, DType type) {
        Tensor first = part.apply(experts[0]);
        List<Rows> parts = new ArrayList<>();
        for (ExpertWeights e : experts) parts.add(new Rows(part.apply(e), 0, first.rows()));
        return new Out(name, new long[]{first.cols(), first.rows(), experts.length}, type, parts);
    }

    private static void tokenizer(Path source, ModelConfig c, Map<String, Object[]> kv) throws IOException {
        JsonNode t = java.nio.file.Files.isRegularFile(source) ? GgufTokenizer.of(source)[0]
                : new ObjectMapper().readTree(source.resolve("tokenizer.json").toFile());
        JsonNode model = t.path("model");
        String pre = GgufTokenizer.splitName(t.path("pre_tokenizer"));
        if (!"BPE".equals(model.path("type").asText()) || pre == null) {
            throw new IllegalArgumentException(source + ": GGUF export handles byte-level BPE tokenizers (split rules gpt-2, qwen2, "
                    + "llama-bpe); this one is " + model.path("type").asText() + " with pre-tokenizer " + t.path("pre_tokenizer"));
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
        }
        for (JsonNode a : t.path("added_tokens")) {
            int id = a.path("id").asInt();
            if (id < tokens.length) types[id] = a.path("special").asBoolean() ? 3 : 4; // control / user-defined
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
        kv.put("tokenizer.ggml.pre", new Object[]{T_STRING, pre}); // llama.cpp's name of the split regex
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
