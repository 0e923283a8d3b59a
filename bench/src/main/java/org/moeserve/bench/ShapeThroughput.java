package org.moeserve.bench;

import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.engine.Sampler;
import org.moeserve.runtime.engine.Sequence;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.ModelConfig;
import org.moeserve.runtime.model.MoeModel;
import org.moeserve.runtime.model.Tensor;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Prefill and decode tokens/s on any checkpoint (a real shape: `moe synth` writes random weights at published
 * configs), warm: each rep prefills a prompt of P tokens as one step and then decodes D tokens greedily, per thread
 * count; 1 warm-up rep, then REPS recorded, thread counts and prompt lengths interleaved rep by rep; medians.
 * Beside decode, the bytes a decoded token reads (every non-expert weight, lm_head, and top-k experts per MoE layer,
 * as stored; MLA's transposed key up-projection counted as the fp32 the engine reads) and the GB/s that makes:
 * the figure to hold against the triad of `moe bench bandwidth`. The prompt is the model's token ids 32..127 in turn
 * (byte-level vocabularies read it as text; any other vocabulary as ids).
 */
final class ShapeThroughput {
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
            double[][][] pre = new double[threads.length][prompts.size()][reps], dec = new double[threads.length][prompts.size()][reps];
            for (int r = -1; r < reps; r++) {
                for (int t = 0; t < threads.length; t++) {
                    for (int pi = 0; pi < prompts.size(); pi++) {
                        Engine e = new Engine(m, threads[t] == 1 ? one : two);
                        int[] prompt = new int[prompts.get(pi)];
                        for (int i = 0; i < prompt.length; i++) prompt[i] = (32 + i % 96) % c.vocabSize();
                        Sequence s = e.newSequence();
                        long t0 = System.nanoTime();
                        float[] logits = e.forward(List.of(new Engine.Step(s, prompt))).logits()[0];
                        long t1 = System.nanoTime();
                        for (int i = 0; i < decode; i++) logits = e.forward(List.of(new Engine.Step(s, new int[]{Sampler.argmax(logits)}))).logits()[0];
                        long t2 = System.nanoTime();
                        if (r >= 0) {
                            pre[t][pi][r] = prompt.length / ((t1 - t0) / 1e9);
                            dec[t][pi][r] = decode / ((t2 - t1) / 1e9);
                        }
                    }
                }
            }
            double bytes = decodeBytes(m);
            System.out.println("machine: " + Bench.machine());
            System.out.printf(Locale.ROOT, "model: %s (%s, %d layers, %d experts, top-%d, %s); %.1f MB read per decoded token%n",
                    m.name(), c.family().architecture, c.layers(), c.experts(), c.topK(), m.dtype(), bytes / 1e6);
            System.out.println("| threads | prompt tokens | prefill tokens/s | decode tokens/s | decode GB/s |");
            System.out.println("|---|---|---|---|---|");
            for (int t = 0; t < threads.length; t++) {
                for (int pi = 0; pi < prompts.size(); pi++) {
                    double d = Bench.median(dec[t][pi]);
                    System.out.printf(Locale.ROOT, "| %d | %d | %.1f | %.1f | %.1f |%n", threads[t], prompts.get(pi),
                            Bench.median(pre[t][pi]), d, d * bytes / 1e9);
                }
            }
            System.out.println("(medians of " + reps + " reps after 1 warm-up; " + decode + " greedy tokens decoded after each prompt)");
        }
    }

    /** Weight bytes one decoded token reads: everything but the unrouted experts (and all but one embedding row). */
    static double decodeBytes(MoeModel m) {
        ModelConfig c = m.config();
        double b = bytes(m.lmHead()) + m.embed().rowBytes();
        for (int l = 0; l < c.layers(); l++) {
            MoeModel.Layer L = m.layer(l);
            b += bytes(L.wq()) + bytes(L.wk()) + bytes(L.wv()) + bytes(L.wo()) + bytes(L.router()) + bytes(L.sharedGate());
            if (L.mla() != null) {
                MoeModel.MlaWeights a = L.mla();
                b += bytes(a.qA()) + bytes(a.qB()) + bytes(a.kvA());
                for (Tensor t : a.kUp()) b += bytes(t);
                for (Tensor t : a.vUp()) b += bytes(t);
            }
            if (L.dense() != null) b += L.dense().byteSize();
            if (L.shared() != null) b += L.shared().byteSize();
            if (L.sparse()) b += (double) c.topK() * L.experts()[0].byteSize();
        }
        return b;
    }

    private static double bytes(Tensor t) { return t == null ? 0 : t.data().byteSize(); }
}
