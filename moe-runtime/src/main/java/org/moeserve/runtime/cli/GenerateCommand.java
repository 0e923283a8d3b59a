package org.moeserve.runtime.cli;

import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.engine.Generator;
import org.moeserve.runtime.engine.SamplingParams;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.MoeModel;
import org.moeserve.runtime.model.TextStream;
import org.moeserve.runtime.model.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import org.moeserve.routing.predict.ExpertPredictor;
import org.moeserve.routing.stats.TraceStatistics;
import org.moeserve.cache.ExpertCache;
import org.moeserve.runtime.engine.LookaheadGates;
import org.moeserve.runtime.engine.PredictorTap;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code moe generate}: one prompt, the continuation streamed to stdout, then prefill and decode speed. */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Continue a prompt; print the text, then prefill and decode tokens/s.")
final class GenerateCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model = new ModelOptions();

    @Option(names = "--prompt", required = true, paramLabel = "TEXT", description = "The prompt.")
    String prompt;

    @Option(names = "--max-tokens", paramLabel = "N", description = "Tokens to generate (default ${DEFAULT-VALUE}).")
    int maxTokens = 64;

    @Option(names = "--greedy", description = "Pick the most likely token every time (same as --temperature 0).")
    boolean greedy;

    @Option(names = "--temperature", paramLabel = "T", description = "Sampling temperature (default ${DEFAULT-VALUE}).")
    double temperature = 0.8;

    @Option(names = "--top-p", paramLabel = "P", description = "Nucleus sampling mass (default ${DEFAULT-VALUE}).")
    double topP = 0.95;

    @Option(names = "--seed", paramLabel = "S", description = "Random seed (default ${DEFAULT-VALUE}).")
    long seed = 42;

    @Option(names = "--ignore-eos", description = "Keep generating after the end-of-sequence token.")
    boolean ignoreEos;

    @Option(names = "--predictor", paramLabel = "NAME",
            description = "Run an expert-path predictor online as layers finish and report its precision and cost: "
                    + "lookahead-gate, learned (with --predictor-weights), popularity or affinity (with --fit-trace).")
    String predictor;

    @Mixin
    PredictorOptions predictorOptions = new PredictorOptions();

    @Mixin
    OffloadOptions offload = new OffloadOptions();

    @Mixin
    ReplayOptions replay = new ReplayOptions();

    @Option(names = "--no-warmup", description = "Skip the untimed warm-up pass (the JIT then shows in prefill's figure).")
    boolean noWarmup;

    @Override
    public Integer call() throws IOException {
        model.validate();
        offload.validate(false);
        SamplingParams sampling = new SamplingParams(greedy ? 0 : temperature, topP, seed);
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        try (MoeModel m = MoeModel.load(model.modelDir());
             Tokenizer tok = Tokenizer.load(m.dir(), m.config());
             Parallel par = new Parallel(model.threads)) {
            int[] ids = tok.encode(prompt);
            TraceStatistics st = offload.offloading() ? predictorOptions.stats(null) : null;
            OffloadOptions.Built built = offload.engine(m, par, st == null ? null : st.loads(), () -> {
                try {
                    return predictor == null ? LookaheadGates.of(m) : predictorFor(m);
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            Engine engine = built.engine();
            ExpertCache cache = built.cache();
            org.moeserve.runtime.gpu.GpuTier gpu = built.gpu();
            replay.apply(engine);
            int budget = Math.min(maxTokens, engine.room(ids.length));
            if (budget < maxTokens) {
                System.err.printf("moe generate: the model's context is %d tokens; generating at most %d%n",
                        m.config().maxPositions(), budget);
            }
            if (!noWarmup) { // one untimed pass so that tokens/s measure compiled code, not the JIT at work
                new Generator(engine).generate(new Generator.Request(ids, Math.min(8, budget),
                        SamplingParams.GREEDY, false), t -> { });
                if (cache != null) cache.resetStats();
                if (gpu != null) gpu.resetStats();
                if (offload.fallback() != null) offload.fallback().resetStats();
            }
            PredictorTap tap = null;
            if (predictor != null) {
                tap = new PredictorTap(predictorFor(m), offload.horizon, m.config().topK());
                tap.attach(engine);
            }
            Generator gen = new Generator(engine);
            TextStream text = new TextStream();
            out.print(prompt);
            Generator.Result r = gen.generate(new Generator.Request(ids, budget, sampling, !ignoreEos),
                    t -> out.print(text.push(tok.tokenBytes(t))));
            out.println(text.finish());
            Generator.Timing t = gen.lastTiming();
            out.printf(Locale.ROOT, "%nprefill: %d tokens in %.1f ms (%.1f tokens/s)%n", t.promptTokens(),
                    t.prefillNanos() / 1e6, t.prefillTokensPerSecond());
            out.printf(Locale.ROOT, "decode: %d tokens in %.1f ms (%.1f tokens/s); stopped: %s; model %s, %d threads%n",
                    t.decodeTokens(), t.decodeNanos() / 1e6, t.decodeTokens() == 0 ? 0.0 : t.decodeTokensPerSecond(),
                    r.stop().name().toLowerCase(Locale.ROOT), m.name(), par.threads());
            if (cache != null) {
                out.println("expert cache: " + cache.policy().name() + ", " + cache.slots() + " of "
                        + OffloadOptions.totalExperts(m) + " experts resident (" + offload.budget() + "), " + offload.slowTier());
                out.println("  " + cache.stats().summary() + " (after warm-up)");
                if (offload.fallback() != null) out.println("  " + offload.fallback().summary() + " (after warm-up)");
                if (gpu == null) cache.close(); // the GPU tier closes its own cache below
            }
            if (gpu != null) {
                out.println("gpu: routed experts on " + gpu.describe());
                out.println("  " + gpu.copySummary() + " (after warm-up)");
                gpu.close();
            }
            if (tap != null) {
                StringBuilder sb = new StringBuilder("predictor " + tap.name() + " (online, prompt and output):");
                for (int d = 1; d <= tap.horizon(); d++) {
                    sb.append(String.format(Locale.ROOT, " d=%d precision %.3f recall %.3f;", d, tap.precision(d), tap.recall(d)));
                }
                out.println(sb.append(String.format(Locale.ROOT, " %.0f ns per token per layer", tap.nanosPerTokenPerLayer())));
            }
        }
        return 0;
    }

    private ExpertPredictor predictorFor(MoeModel m) throws IOException {
        if (predictor.equals("oracle")) {
            throw new IllegalArgumentException("--predictor oracle needs the future, so it runs only on recorded traces "
                    + "(moe predictor eval, moe cache-sim)");
        }
        return Predictors.create(predictor, m, predictorOptions.stats(null), predictorOptions.weights, m.config().moeLayers(),
                m.config().experts());
    }

}
