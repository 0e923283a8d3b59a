package org.moeserve.runtime.model;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.moeserve.runtime.TestModels;
import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.kernel.Parallel;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** GGUF files as checkpoints: what moe-serve writes, read back through the GGUF loader, runs the same forward pass. */
class GgufCheckpointTest {
    @TempDir
    Path tmp;
    static Parallel par;

    @BeforeAll
    static void pool() { par = new Parallel(2); }

    @AfterAll
    static void close() { par.close(); }

    static final String TEXT = "In the beginning God created the heaven and the earth.";

    static float[][] logits(MoeModel m, int[] ids) {
        Engine e = new Engine(m, par);
        return e.forward(List.of(new Engine.Step(e.newSequence(), ids)), true, false).logits();
    }

    @ParameterizedTest(name = "{0}: the unquantized GGUF gives the safetensors logits, bit for bit, and the same tokens")
    @ValueSource(strings = {"tiny-mixtral-kjv", "tiny-qwen3moe-random", "tiny-olmoe-random"})
    void anExportedFileRunsLikeItsSource(String name) throws Exception {
        Path f = tmp.resolve(name + ".gguf");
        try (MoeModel src = MoeModel.load(TestModels.dir(name)); Tokenizer tok = Tokenizer.load(src.dir(), src.config())) {
            GgufExport.write(src, f);
            try (MoeModel g = MoeModel.load(f); Tokenizer gt = Tokenizer.load(f, g.config())) {
                assertEquals(src.config().family(), g.config().family());
                assertEquals(src.config().experts(), g.config().experts());
                assertEquals(src.config().normTopKProb(), g.config().normTopKProb());
                int[] ids = tok.encode(TEXT);
                assertArrayEquals(ids, gt.encode(TEXT), "the tokenizer rebuilt from GGUF metadata encodes alike");
                assertEquals(TEXT, gt.decode(ids));
                float[][] a = logits(src, ids), b = logits(g, ids);
                for (int p = 0; p < ids.length; p++) assertArrayEquals(a[p], b[p], 0f, name + " position " + p);
            }
        }
    }

    /** Every position's logits of a and b agree within tol * max(1, |b|). */
    static void close(float[][] a, float[][] b, double tol, String what) {
        for (int p = 0; p < a.length; p++) {
            for (int t = 0; t < a[p].length; t++) {
                double err = Math.abs(a[p][t] - b[p][t]) / Math.max(1, Math.abs(b[p][t]));
                if (err > tol) throw new AssertionError(what + ": logit[" + p + "][" + t + "] " + a[p][t] + " vs " + b[p][t]);
            }
        }
    }

    /** Bits per byte of the first windows of the held-out trace (byte-level vocabulary: one token, one byte). */
    static double bitsPerByte(MoeModel m, int windows) throws Exception {
        Path trace = null;
        for (Path p = Path.of("").toAbsolutePath(); p != null && trace == null; p = p.getParent()) {
            Path c = p.resolve("shared/traces/tiny-mixtral-kjv-heldout.trace.jsonl");
            if (java.nio.file.Files.isRegularFile(c)) trace = c;
        }
        if (trace == null) throw new AssertionError("../shared/traces/tiny-mixtral-kjv-heldout.trace.jsonl must sit beside the checkout");
        var records = org.moeserve.routing.TraceReader.read(trace).records();
        double bits = 0;
        long n = 0;
        for (int w = 0; w < windows; w++) {
            int[] ids = records.get(w * (records.size() / windows)).tokens();
            float[][] lg = logits(m, ids);
            for (int p = 0; p + 1 < ids.length; p++) {
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (float v : lg[p]) max = Math.max(max, v);
                for (float v : lg[p]) sum += Math.exp(v - max);
                bits += -(lg[p][ids[p + 1]] - max - Math.log(sum)) / Math.log(2);
                n++;
            }
        }
        return bits / n;
    }

    /**
     * The demo model in each format: the file records what it holds, its logits are those of its own dequantized fp32
     * copy (the quantized kernels against plain fp32 ones: within 1e-4, measured 1.3e-5), and its held-out bits per
     * byte are within the format's budget of BF16's (measured on all 64 windows: +0.00% q8_0, +0.07% q4_k_m, +0.62% q4_0).
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"q8_0", "q4_0", "q4_k_m"})
    void aQuantizedDemoModelRunsLikeItsDequantizedReference(String type) throws Exception {
        Path q = tmp.resolve(type + ".gguf"), ref = tmp.resolve(type + "-f32.gguf");
        double bf16;
        try (MoeModel src = MoeModel.load(TestModels.dir("tiny-mixtral-kjv"))) {
            GgufExport.write(src, q, new GgufExport.Quantization(GgufExport.Target.parse(type), false));
            bf16 = bitsPerByte(src, 8);
        }
        try (MoeModel m = MoeModel.load(q)) {
            GgufExport.write(m, ref, new GgufExport.Quantization(GgufExport.Target.F32, false));
            GgufFile g = m.checkpoint().gguf();
            assertEquals(type, g.metadata().get("moe_serve.quantization.type"));
            assertEquals("all", g.metadata().get("moe_serve.quantization.scope"));
            DType expert = m.expert(0, 0).gate().dtype(), attn = m.layer(0).wq().dtype();
            // the demo model is 128 wide: Q4_K_M falls back to Q5_0 (and Q6_K to Q8_0) as in llama.cpp
            assertEquals(switch (type) { case "q8_0" -> DType.Q8_0; case "q4_0" -> DType.Q4_0; default -> DType.Q5_0; }, expert);
            assertEquals(expert, attn);
            assertEquals(DType.F32, m.layer(0).router().dtype(), "the router is never quantized");
            try (MoeModel r = MoeModel.load(ref)) {
                int[] ids = "And God said, Let there be light: and there was light.".chars().toArray();
                close(logits(m, ids), logits(r, ids), 1e-4, type + " against its dequantized fp32 copy");
            }
            double bpb = bitsPerByte(m, 8), budget = switch (type) { case "q8_0" -> 0.002; case "q4_k_m" -> 0.01; default -> 0.02; };
            assertTrue(bpb < bf16 * (1 + budget), type + ": " + bpb + " bits per byte against BF16's " + bf16);
        }
    }

    @Test
    void expertsOnlyQuantizesTheExpertsAndLeavesTheRest() throws Exception {
        Path q = tmp.resolve("experts.gguf");
        try (MoeModel src = MoeModel.load(TestModels.dir("tiny-mixtral-kjv"))) {
            GgufExport.write(src, q, new GgufExport.Quantization(GgufExport.Target.Q8_0, true));
        }
        try (MoeModel m = MoeModel.load(q)) {
            assertEquals("experts", m.checkpoint().gguf().metadata().get("moe_serve.quantization.scope"));
            assertEquals(DType.Q8_0, m.expert(5, 15).down().dtype());
            assertEquals(DType.BF16, m.layer(0).wq().dtype());
            assertEquals(DType.BF16, m.lmHead().dtype());
        }
    }

    /**
     * A model 256 wide (synthesised), so Q4_K_M uses the K formats themselves: Q4_K, with Q6_K for the output, attn_v
     * and ffn_down in llama.cpp's layers. Its logits match its dequantized copy; prefill (four-input tiles) and decode
     * give the same token the same bits; with a quarter of the experts in a cache of quantized bytes, greedy output is
     * token-identical to all-resident, and so it is with the disk tier reading them from the file.
     */
    @Test
    void kQuantsRunThroughPrefillDecodeAndTheExpertCache() throws Exception {
        var raw = (com.fasterxml.jackson.databind.node.ObjectNode) new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(TestModels.dir("tiny-mixtral-kjv").resolve("config.json").toFile());
        raw.put("hidden_size", 256).put("intermediate_size", 512).put("num_hidden_layers", 8).put("num_local_experts", 8)
                .put("num_attention_heads", 4).put("num_key_value_heads", 2);
        ModelConfig c = ModelConfig.fromJson(raw, tmp.resolve("config.json"));
        Path dir = tmp.resolve("wide"), q = tmp.resolve("wide-q4km.gguf"), ref = tmp.resolve("wide-f32.gguf");
        Synth.write(raw, c, DType.BF16, 3, Long.MAX_VALUE, dir, TestModels.dir("tiny-mixtral-kjv"));
        try (MoeModel src = MoeModel.load(dir)) {
            GgufExport.write(src, q, new GgufExport.Quantization(GgufExport.Target.Q4_K_M, false));
        }
        try (MoeModel m = MoeModel.load(q)) {
            GgufExport.write(m, ref, new GgufExport.Quantization(GgufExport.Target.F32, false));
            assertEquals(DType.Q4_K, m.expert(3, 0).gate().dtype());
            assertEquals(DType.Q4_K, m.expert(2, 0).down().dtype(), "layer 2 of 8: no more bits");
            assertEquals(DType.Q6_K, m.expert(3, 0).down().dtype(), "layer 3 of 8: (3 - 8/8) % 3 == 2, more bits");
            assertEquals(DType.Q6_K, m.expert(0, 0).down().dtype(), "layer 0 of 8: llama.cpp's use_more_bits");
            assertEquals(DType.Q6_K, m.expert(7, 0).down().dtype(), "layer 7 of 8: use_more_bits");
            assertEquals(DType.Q6_K, m.layer(0).wv().dtype());
            assertEquals(DType.Q6_K, m.lmHead().dtype());
            int[] ids = "In the beginning was the Word, and the Word was with God.".chars().toArray();
            float[][] pre;
            try (MoeModel r = MoeModel.load(ref)) {
                pre = logits(m, ids);
                close(pre, logits(r, ids), 1e-4, "Q4_K_M against its dequantized fp32 copy");
            }
            Engine e = new Engine(m, par);
            var seq = e.newSequence();
            for (int p = 0; p < ids.length; p++) {
                float[] one = e.forward(List.of(new Engine.Step(seq, new int[]{ids[p]}))).logits()[0];
                assertArrayEquals(pre[p], one, 0f, "position " + p + ": decoded alone, the bits of the prefill");
            }
            var gen = new org.moeserve.runtime.engine.Generator(new Engine(m, Parallel.SERIAL));
            var req = new org.moeserve.runtime.engine.Generator.Request(ids, 24, org.moeserve.runtime.engine.SamplingParams.GREEDY, false);
            int[] resident = gen.generate(req, t -> { }).tokens();
            int slots = m.config().moeLayers() * m.config().experts() / 4;
            try (var cache = new org.moeserve.cache.ExpertCache(new org.moeserve.cache.ExpertCache.Config(slots * m.expertBytes(),
                    m.expertBytes(), new org.moeserve.units.LinkModel(16e9, 10_000), true, 1),
                    org.moeserve.runtime.engine.CachedExpertStore.source(m),
                    org.moeserve.cache.policy.Policies.create("lru", m.config().moeLayers(), slots, 2, null, null),
                    org.moeserve.cache.Clock.SYSTEM)) {
                Engine cached = new Engine(m, new org.moeserve.runtime.engine.CachedExpertStore(m, cache), Parallel.SERIAL);
                assertArrayEquals(resident, new org.moeserve.runtime.engine.Generator(cached).generate(req, t -> { }).tokens(),
                        "a quarter of the experts cached as Q4_K bytes: the same tokens");
                assertEquals(cache.stats().bytesMoved() % m.expertBytes(), 0);
                assertTrue(cache.stats().bytesMoved() > 0 && m.expertBytes() < 3L * 256 * 512 * 2 / 3, "the cache moved quantized experts");
            }
            // the disk tier reads the quantized experts out of the GGUF file's stacks (Q4_K and, larger, Q6_K layers)
            var disk = new org.moeserve.runtime.engine.DiskExpertSource(m, true);
            try (var cache = new org.moeserve.cache.ExpertCache(new org.moeserve.cache.ExpertCache.Config(slots * m.expertBytes(),
                    m.expertBytes(), disk.measure(4, 2), true, 2), disk,
                    org.moeserve.cache.policy.Policies.create("lru", m.config().moeLayers(), slots, 2, null, null),
                    org.moeserve.cache.Clock.SYSTEM)) {
                Engine cached = new Engine(m, new org.moeserve.runtime.engine.CachedExpertStore(m, cache), Parallel.SERIAL);
                assertArrayEquals(resident, new org.moeserve.runtime.engine.Generator(cached).generate(req, t -> { }).tokens(),
                        "experts read from the GGUF file by the disk tier: the same tokens");
            }
        }
    }

    /** Damaged and unsupported files fail with one line naming the file and what is wrong. */
    @Test
    void badGgufFilesFailWithOneClearLine() throws Exception {
        Path good = tmp.resolve("good.gguf");
        try (MoeModel src = MoeModel.load(TestModels.dir("tiny-mixtral-kjv"))) {
            GgufExport.write(src, good, new GgufExport.Quantization(GgufExport.Target.Q8_0, false));
        }
        byte[] all = java.nio.file.Files.readAllBytes(good);

        Path cut = tmp.resolve("cut.gguf");
        java.nio.file.Files.write(cut, java.util.Arrays.copyOf(all, all.length / 2));
        assertTrue(message(cut).contains("truncated"), message(cut));

        Path header = tmp.resolve("header.gguf");
        java.nio.file.Files.write(header, java.util.Arrays.copyOf(all, 200));
        assertTrue(message(header).contains("runs past the end of the file"), message(header));

        Path v1 = tmp.resolve("v1.gguf");
        byte[] b = all.clone();
        b[4] = 1;
        java.nio.file.Files.write(v1, b);
        assertTrue(message(v1).contains("GGUF version 1 is not supported"), message(v1));

        // the expert stack of layer 0 relabelled Q2_K (ggml type 10): a format moe-serve does not compute with
        Path q2 = tmp.resolve("q2k.gguf");
        b = all.clone();
        int at = indexOf(b, "blk.0.ffn_gate_exps.weight".getBytes()) + "blk.0.ffn_gate_exps.weight".length() + 4 + 3 * 8;
        assertEquals(8, b[at], "the type field follows the name, the dimension count and three dimensions");
        b[at] = 10;
        java.nio.file.Files.write(q2, b);
        String m = message(q2);
        assertTrue(m.contains("blk.0.ffn_gate_exps.weight") && m.contains("Q2_K") && m.contains("moe quantize"), m);

        Path arch = tmp.resolve("arch.gguf");
        b = all.clone();
        int a = indexOf(b, "llama".getBytes());
        System.arraycopy("gemma".getBytes(), 0, b, a, 5);
        java.nio.file.Files.write(arch, b);
        assertTrue(message(arch).contains("general.architecture is gemma"), message(arch));

        Path text = tmp.resolve("notes.gguf");
        java.nio.file.Files.writeString(text, "not a model");
        assertTrue(message(text).contains("not a model"), message(text));
    }

    static String message(Path f) {
        CheckpointException e = org.junit.jupiter.api.Assertions.assertThrows(CheckpointException.class, () -> MoeModel.load(f).close());
        assertTrue(e.getMessage().startsWith(f.toAbsolutePath().normalize().toString()), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        return e.getMessage();
    }

    static int indexOf(byte[] h, byte[] n) {
        outer:
        for (int i = 0; i + n.length <= h.length; i++) {
            for (int j = 0; j < n.length; j++) if (h[i + j] != n[j]) continue outer;
            return i;
        }
        throw new AssertionError("not found");
    }
}
