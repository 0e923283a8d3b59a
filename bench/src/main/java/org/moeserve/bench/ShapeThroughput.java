package org.moeserve.bench;

import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.engine.Sampler;
import org.moeserve.runtime.engine.Sequence;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.ExpertWeights;
import org.moeserve.runtime.model.ModelConfig;
import org.moeserve.runtime.model.MoeModel;
import org.moeserve.runtime.model.Tensor;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Prefill and decode tokens/s on any checkpoint (a real shape: `moe synth` writes random weights at published
 * configs), warm: each rep prefills a prompt of P tokens as one step and then decodes D tokens greedily, per thread
 * count; 1 warm-up rep, then REPS recorded, thread counts and prompt lengths interleaved rep by rep; medians.
 * Beside decode, the bytes a decoded token reads (every non-expert weight, lm_head, and top-k experts per MoE layer,
 * as stored; MLA's transposed key up-projection counted as the engine holds it), the GB/s that makes, and
 * the read roofline of those same bytes ({@link ReadRoofline}) on the same pool, sampled between blocks of 16 decoded
 * tokens (timed apart from them), so both see the host in the same state: "decode / roofline" is the median of the
 * per-rep ratios. Also the share of the weights mapped with huge
 * pages, which moves the roofline by 3-10% on the reference machine. The prompt is the model's token ids 32..127 in turn
 * (byte-level vocabularies read it as text; any other vocabulary as ids).
 */
final class ShapeThroughput {
    /** Decoded tokens between two samples of the roofline. */
    private static final int ROOFLINE_EVERY = 16;

    public static void main(String[] args) {
        Path dir = Path.of(args[0]);
        int reps = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        int decode = args.length > 3 ? Integer.parseInt(args[3]) : 64;
        List<Integer> prompts = new ArrayList<>();
        for (String p : (args.length > 2 ? args[2] : "128,512").split(",")) prompts.add(Integer.parseInt(p.trim()));
        int[] threads = {1, 2};
        try (MoeModel m = MoeModel.load(dir); Parallel one = new Parallel(1); Parallel two = new Parallel(2)) {
            ModelConfig c = m.config();
            for (int p : prompts) {
                if (p + decode > c.maxPositions()) {
                    throw new IllegalArgumentException("a prompt of " + p + " plus " + decode + " decoded tokens exceeds the context of " + c.maxPositions());
                }
            }
            List<MemorySegment> read = decodeSegments(m);
            ReadRoofline roofline = new ReadRoofline(read);
            double bytes = 0;
            for (MemorySegment seg : read) bytes += seg.byteSize();
            double[][][] pre = new double[threads.length][prompts.size()][reps], dec = new double[threads.length][prompts.size()][reps];
            double[][][] roof = new double[threads.length][prompts.size()][reps], ratio = new double[threads.length][prompts.size()][reps];
            for (int r = -1; r < reps; r++) {
                for (int t = 0; t < threads.length; t++) {
                    for (int pi = 0; pi < prompts.size(); pi++) {
                        Engine e = new Engine(m, threads[t] == 1 ? one : two);
                        int[] prompt = new int[prompts.get(pi)];
                        for (int i = 0; i < prompt.length; i++) prompt[i] = (32 + i % 96) % c.vocabSize();
                        Sequence s = e.newSequence();
                        long t0 = System.nanoTime();
                        float[] logits = e.forward(List.of(new Engine.Step(s, prompt))).logits()[0];
                        long t1 = System.nanoTime(), decoding = 0;
                        // the roofline's passes between blocks of the decode, timed apart from it: both see the same minute
                        ReadRoofline.Samples rs = roofline.samples();
                        for (int i = 0; i < decode; i++) {
                            if (i % ROOFLINE_EVERY == 0) rs.take(threads[t] == 1 ? one : two);
                            long ts = System.nanoTime();
                            logits = e.forward(List.of(new Engine.Step(s, new int[]{Sampler.argmax(logits)}))).logits()[0];
                            decoding += System.nanoTime() - ts;
                        }
                        rs.take(threads[t] == 1 ? one : two);
                        double gb = rs.gbPerSecond();
                        if (r >= 0) {
                            pre[t][pi][r] = prompt.length / ((t1 - t0) / 1e9);
                            dec[t][pi][r] = decode / (decoding / 1e9);
                            roof[t][pi][r] = gb;
                            ratio[t][pi][r] = dec[t][pi][r] * bytes / 1e9 / gb;
                        }
                    }
                }
            }
            double huge = ReadRoofline.hugeMappedShare(m.mappings());
            System.out.println("machine: " + Bench.machine());
            System.out.printf(Locale.ROOT, "model: %s (%s, %d layers, %d experts, top-%d, %s); %.1f MB read per decoded token; %s; %s%n",
                    m.name(), c.family().architecture, c.layers(), c.experts(), c.topK(), m.dtype(), bytes / 1e6,
                    huge < 0 ? "page size of the mapping unknown" : String.format(Locale.ROOT, "%.0f%% of the resident weights mapped with huge pages", 100 * huge),
                    kvCache(c));
            System.out.println("| threads | prompt tokens | prefill tokens/s | decode tokens/s | decode GB/s | read roofline GB/s | decode / roofline |");
            System.out.println("|---|---|---|---|---|---|---|");
            for (int t = 0; t < threads.length; t++) {
                for (int pi = 0; pi < prompts.size(); pi++) {
                    double d = Bench.median(dec[t][pi]);
                    System.out.printf(Locale.ROOT, "| %d | %d | %.1f | %.1f | %.1f | %.1f | %.0f%% |%n", threads[t], prompts.get(pi),
                            Bench.median(pre[t][pi]), d, d * bytes / 1e9, Bench.median(roof[t][pi]), 100 * Bench.median(ratio[t][pi]));
                }
            }
            System.out.println("(medians of " + reps + " reps after 1 warm-up; " + decode + " greedy tokens decoded after each prompt; "
                    + "the roofline is a bare read of the same bytes on the same threads, "
                    + "sampled every " + ROOFLINE_EVERY + " decoded tokens, and the ratio the median of the reps' ratios)");
        }
    }

    /** The KV cache's bytes per token (fp32, every layer), beside a plain cache's where the model's is latent (MLA). */
    static String kvCache(ModelConfig c) {
        long kv = 4L * c.layers() * c.kvCacheFloatsPerToken(), plain = 4L * c.layers() * c.plainKvCacheFloatsPerToken();
        return kv == plain ? String.format(Locale.ROOT, "KV cache %.1f KB per token", kv / 1e3)
                : String.format(Locale.ROOT, "KV cache %.1f KB per token (latent), a plain cache %.1f KB (%.3f of it)", kv / 1e3, plain / 1e3, (double) kv / plain);
    }

    /**
     * The weights one decoded token reads: everything but the unrouted experts (of the embedding, one row); for the
     * routed experts, the first top-k of each MoE layer stand in for the ones routed (the same shapes).
     */
    static List<MemorySegment> decodeSegments(MoeModel m) {
        ModelConfig c = m.config();
        List<MemorySegment> out = new ArrayList<>();
        out.add(m.lmHead().data());
        out.add(m.embed().data().asSlice(0, m.embed().rowBytes()));
        for (int l = 0; l < c.layers(); l++) {
            MoeModel.Layer L = m.layer(l);
            for (Tensor t : new Tensor[]{L.wq(), L.wk(), L.wv(), L.wo(), L.router(), L.sharedGate()}) add(out, t);
            if (L.mla() != null) {
                MoeModel.MlaWeights a = L.mla();
                for (Tensor t : new Tensor[]{a.qA(), a.qB(), a.kvA()}) add(out, t);
                for (Tensor t : a.kUp()) add(out, t);
                for (Tensor t : a.vUp()) add(out, t);
            }
            if (L.dense() != null) add(out, L.dense());
            if (L.shared() != null) add(out, L.shared());
            if (L.sparse()) for (int e = 0; e < c.topK(); e++) add(out, L.experts()[e]);
        }
        return out;
    }

    private static void add(List<MemorySegment> out, ExpertWeights w) {
        for (Tensor t : new Tensor[]{w.gate(), w.up(), w.down()}) add(out, t);
    }

    private static void add(List<MemorySegment> out, Tensor t) {
        if (t != null) out.add(t.data());
    }
}
