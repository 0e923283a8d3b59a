package org.moeserve.runtime.cli;

import org.moeserve.routing.TraceReader;
import org.moeserve.routing.TraceRecord;
import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.engine.Sampler;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.MoeModel;
import org.moeserve.runtime.model.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code moe eval}: how well a model predicts held-out text, in bits per byte (teacher-forced, every position of
 * every window), and with {@code --reference} how far its logits are from another model's on the same windows (a
 * quantized file against its dequantized fp32 twin, or against the BF16 original).
 */
@Command(name = "eval", mixinStandardHelpOptions = true,
        description = {"Bits per byte of held-out text (a text file, or the token sequences of a moe-trace/1 file), per domain.",
                "With --reference: logit error and argmax agreement against another model on the same windows."})
final class EvalCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model = new ModelOptions();

    @Option(names = "--text", paramLabel = "FILE", description = "UTF-8 text, tokenized and cut into --window token windows.")
    Path text;

    @Option(names = "--trace", paramLabel = "FILE", description = "A moe-trace/1 file: its records' tokens, by domain.")
    Path trace;

    @Option(names = "--window", paramLabel = "N", description = "Tokens per window for --text (default: the model's context, at most ${DEFAULT-VALUE}).")
    int window = 256;

    @Option(names = "--max-windows", paramLabel = "N", description = "Evaluate at most N windows (default: all).")
    int maxWindows = Integer.MAX_VALUE;

    @Option(names = "--reference", paramLabel = "DIR|FILE.gguf", description = "A second model to compare logits with.")
    Path reference;

    @Option(names = "--json", description = "One JSON object on stdout instead of the table.")
    boolean json;

    @Option(names = "--greedy", paramLabel = "N", description = "Instead of bits per byte: continue the first --prompt-tokens of "
            + "each window greedily for N tokens and print one JSON line per window (id, prompt and continuation token ids), "
            + "to compare with another engine on the same prompts.")
    Integer greedy;

    @Option(names = "--prompt-tokens", paramLabel = "P", description = "Prompt length for --greedy (default ${DEFAULT-VALUE}).")
    int promptTokens = 64;

    @picocli.CommandLine.Mixin
    OffloadOptions offload = new OffloadOptions();

    record Window(String id, String domain, int[] tokens) {}

    @Override
    public Integer call() throws Exception {
        model.validate();
        if ((text == null) == (trace == null)) throw new UsageError("give the held-out text: --text FILE or --trace FILE (one of them)");
        if (window < 2) throw new UsageError("--window is " + window + " but must be >= 2");
        offload.validate(false);
        try (MoeModel m = MoeModel.load(model.modelDir()); Tokenizer tok = Tokenizer.load(m.dir(), m.config());
             Parallel par = new Parallel(model.threads);
             MoeModel ref = reference == null ? null : MoeModel.load(reference)) {
            if (ref != null && ref.config().vocabSize() != m.config().vocabSize()) {
                throw new UsageError("--reference has a vocabulary of " + ref.config().vocabSize() + ", the model " + m.config().vocabSize());
            }
            List<Window> windows = windows(tok, Math.min(window, m.config().maxPositions()));
            OffloadOptions.Built built = offload.engine(m, par, null, () -> org.moeserve.runtime.engine.LookaheadGates.of(m));
            Engine e = built.engine();
            org.moeserve.cache.ExpertCache cache = built.cache();
            Engine re = ref == null ? null : new Engine(ref, par);
            if (greedy != null) {
                if (greedy < 1 || promptTokens < 1) throw new UsageError("--greedy and --prompt-tokens must be >= 1");
                for (Window w : windows) {
                    int[] prompt = java.util.Arrays.copyOf(w.tokens(), Math.min(promptTokens, w.tokens().length));
                    var seq = e.newSequence();
                    float[] lg = e.forward(List.of(new Engine.Step(seq, prompt))).logits()[0];
                    int[] out = new int[greedy];
                    for (int i = 0; i < greedy; i++) {
                        out[i] = Sampler.argmax(lg);
                        if (i + 1 < greedy) lg = e.forward(List.of(new Engine.Step(seq, new int[]{out[i]}))).logits()[0];
                    }
                    System.out.println("{\"id\":\"" + w.id() + "\",\"prompt\":" + java.util.Arrays.toString(prompt).replace(" ", "")
                            + ",\"greedy\":" + java.util.Arrays.toString(out).replace(" ", "") + "}");
                }
                return 0;
            }
            Map<String, double[]> byDomain = new LinkedHashMap<>(); // bits, bytes
            double worst = 0, absSum = 0;
            long logitCount = 0, agree = 0, positions = 0;
            for (Window w : windows) {
                float[][] lg = e.forward(List.of(new Engine.Step(e.newSequence(), w.tokens())), true, false).logits();
                double[] acc = byDomain.computeIfAbsent(w.domain(), k -> new double[2]);
                for (int p = 0; p + 1 < w.tokens().length; p++) {
                    int next = w.tokens()[p + 1];
                    acc[0] += -(lg[p][next] - Sampler.logSumExp(lg[p])) / Math.log(2);
                    acc[1] += Math.max(1, tok.tokenBytes(next).length);
                }
                if (re != null) {
                    float[][] rl = re.forward(List.of(new Engine.Step(re.newSequence(), w.tokens())), true, false).logits();
                    for (int p = 0; p < lg.length; p++) {
                        for (int t = 0; t < lg[p].length; t++) {
                            double d = Math.abs(lg[p][t] - rl[p][t]);
                            worst = Math.max(worst, d / Math.max(1, Math.abs(rl[p][t])));
                            absSum += d;
                            logitCount++;
                        }
                        if (Sampler.argmax(lg[p]) == Sampler.argmax(rl[p])) agree++;
                        positions++;
                    }
                }
            }
            if (cache != null) {
                System.err.println("offload: " + cache.stats().summary());
                if (offload.fallback() != null) System.err.println("offload: " + offload.fallback().summary());
                if (built.gpu() == null) cache.close(); // the GPU tier closes its own cache below
            }
            if (built.gpu() != null) {
                System.err.println("gpu: routed experts on " + built.gpu().describe() + "; " + built.gpu().copySummary());
                built.gpu().close();
            }
            double bits = 0, bytes = 0;
            for (double[] a : byDomain.values()) {
                bits += a[0];
                bytes += a[1];
            }
            if (json) {
                StringBuilder sb = new StringBuilder("{\"model\":\"" + m.name() + "\",\"windows\":" + windows.size()
                        + String.format(Locale.ROOT, ",\"bits_per_byte\":%.5f,\"domains\":{", bits / bytes));
                int i = 0;
                for (var d : byDomain.entrySet()) sb.append(i++ == 0 ? "" : ",").append(String.format(Locale.ROOT, "\"%s\":%.5f", d.getKey(), d.getValue()[0] / d.getValue()[1]));
                sb.append("}");
                if (ref != null) sb.append(String.format(Locale.ROOT, ",\"reference\":\"%s\",\"max_rel_logit_error\":%.6g,\"mean_abs_logit_error\":%.6g,\"argmax_agreement\":%.5f",
                        ref.name(), worst, absSum / logitCount, (double) agree / positions));
                System.out.println(sb.append("}"));
            } else {
                System.out.printf(Locale.ROOT, "%s: %d windows, %.4f bits per byte%n", m.name(), windows.size(), bits / bytes);
                for (var d : byDomain.entrySet()) System.out.printf(Locale.ROOT, "  %-12s %.4f%n", d.getKey(), d.getValue()[0] / d.getValue()[1]);
                if (ref != null) {
                    System.out.printf(Locale.ROOT, "against %s: max |dlogit|/max(1,|logit|) %.3g, mean |dlogit| %.3g, argmax agreement %.4f%n",
                            ref.name(), worst, absSum / logitCount, (double) agree / positions);
                }
            }
        }
        return 0;
    }

    private List<Window> windows(Tokenizer tok, int n) throws java.io.IOException {
        List<Window> out = new ArrayList<>();
        if (trace != null) {
            for (TraceRecord r : TraceReader.read(trace).records()) {
                if (r.tokens().length >= 2 && out.size() < maxWindows) out.add(new Window(r.id(), r.domain() == null ? "all" : r.domain(), r.tokens()));
            }
        } else {
            if (!Files.isRegularFile(text)) throw new UsageError("--text " + text + ": no such file");
            int[] ids = tok.encode(Files.readString(text));
            String domain = text.getFileName().toString();
            for (int i = 0; i + 2 <= ids.length && out.size() < maxWindows; i += n) {
                out.add(new Window(domain + "-" + out.size(), domain, java.util.Arrays.copyOfRange(ids, i, Math.min(ids.length, i + n))));
            }
        }
        if (out.isEmpty()) throw new UsageError("no window of at least 2 tokens in " + (trace != null ? trace : text));
        return out;
    }
}
