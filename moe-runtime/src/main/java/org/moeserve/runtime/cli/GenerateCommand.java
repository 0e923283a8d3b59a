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

import org.moeserve.routing.TraceReader;
import org.moeserve.routing.predict.AffinityPredictor;
import org.moeserve.routing.predict.ExpertPredictor;
import org.moeserve.routing.predict.LearnedPathPredictor;
import org.moeserve.routing.predict.PopularityPredictor;
import org.moeserve.routing.stats.TraceStatistics;
import org.moeserve.cache.Clock;
import org.moeserve.cache.ExpertCache;
import org.moeserve.cache.policy.Policies;
import org.moeserve.cache.policy.PredictivePolicy;
import org.moeserve.runtime.engine.CachedExpertStore;
import org.moeserve.runtime.engine.LookaheadGates;
import org.moeserve.runtime.engine.Prefetcher;
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
                    + "lookahead-gate, learned (with --predictor-weights), popularity or affinity (with --fit).")
    String predictor;

    @Option(names = "--predictor-weights", paramLabel = "FILE", description = "The learned predictor's file.")
    Path predictorWeights;

    @Option(names = "--fit", paramLabel = "FILE",
            description = "Trace to fit statistics on: the popularity/affinity predictors, the pin policy's load profile.")
    Path fit;

    @Option(names = "--expert-budget", paramLabel = "B",
            description = "Keep only this much of the experts in fast memory (25%, 24 experts, 6MB); the rest load "
                    + "over a modelled link. Default: all resident.")
    String expertBudget;

    @Mixin
    OffloadOptions offload = new OffloadOptions();

    @Option(names = "--no-warmup", description = "Skip the untimed warm-up pass (the JIT then shows in prefill's figure).")
    boolean noWarmup;

    @Override
    public Integer call() throws IOException {
        model.validate();
        SamplingParams sampling = new SamplingParams(greedy ? 0 : temperature, topP, seed);
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        try (MoeModel m = MoeModel.load(model.modelDir());
             Tokenizer tok = Tokenizer.load(m.dir(), m.config());
             Parallel par = new Parallel(model.threads)) {
            int[] ids = tok.encode(prompt);
            int budget = Math.min(maxTokens, m.config().maxPositions() - ids.length);
            if (budget < maxTokens) {
                System.err.printf("moe generate: the model's context is %d tokens; generating at most %d%n",
                        m.config().maxPositions(), Math.max(0, budget));
            }
            Engine engine;
            ExpertCache cache = null;
            if (expertBudget != null) {
                cache = cacheFor(m);
                engine = new Engine(m, new CachedExpertStore(m, cache), par);
                if (cache.policy() instanceof PredictivePolicy) {
                    ExpertPredictor p = predictor == null ? LookaheadGates.of(m) : predictorFor(m);
                    new Prefetcher(p, cache, m.config(), offload.horizon,
                            offload.prefetchK == null ? m.config().topK() : offload.prefetchK, !offload.noDeadlines).attach(engine);
                }
            } else {
                engine = new Engine(m, par);
            }
            if (!noWarmup) { // one untimed pass so that tokens/s measure compiled code, not the JIT at work
                new Generator(engine).generate(new Generator.Request(ids, Math.min(8, Math.max(0, budget)),
                        SamplingParams.GREEDY, false), t -> { });
                if (cache != null) cache.resetStats();
            }
            PredictorTap tap = null;
            if (predictor != null) {
                tap = new PredictorTap(predictorFor(m), m.config(), offload.horizon, m.config().topK());
                tap.attach(engine);
            }
            Generator gen = new Generator(engine);
            TextStream text = new TextStream();
            out.print(prompt);
            Generator.Result r = gen.generate(new Generator.Request(ids, Math.max(0, budget), sampling, !ignoreEos),
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
                        + totalExperts(m) + " experts resident (" + expertBudget + "), link " + offload.linkModel()
                        + " [modelled link]");
                out.println("  " + cache.stats().summary() + " (after warm-up)");
                cache.close();
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

    static long totalExperts(MoeModel m) {
        long n = 0;
        for (int l = 0; l < m.config().layers(); l++) if (m.config().isSparse(l)) n += m.config().experts();
        return n;
    }

    private ExpertCache cacheFor(MoeModel m) throws IOException {
        if (offload.policies.size() != 1) throw new IllegalArgumentException("--policy takes one policy with generate");
        String policy = offload.policies.getFirst();
        long budget = OffloadOptions.budgetBytes(expertBudget, totalExperts(m), m.expertBytes());
        int slots = (int) (budget / m.expertBytes());
        long[][] load = null;
        if (policy.equals("pin")) {
            if (fit == null) throw new IllegalArgumentException("--policy pin needs --fit TRACE for its load profile");
            TraceReader.Trace t = TraceReader.read(fit);
            TraceStatistics st = new TraceStatistics(t.header(), t.records());
            load = new long[st.layers()][];
            for (int l = 0; l < st.layers(); l++) load[l] = st.load(l);
        }
        int moeLayers = CachedExpertStore.moeLayers(m.config());
        return new ExpertCache(new ExpertCache.Config(budget, m.expertBytes(), offload.linkModel(), true),
                CachedExpertStore.source(m), Policies.create(policy, moeLayers, slots, m.config().topK(), load, null),
                Clock.SYSTEM);
    }

    private ExpertPredictor predictorFor(MoeModel m) throws IOException {
        return switch (predictor) {
            case "lookahead-gate" -> LookaheadGates.of(m);
            case "learned" -> {
                if (predictorWeights == null) throw new IllegalArgumentException("--predictor learned needs --predictor-weights FILE");
                yield LearnedPathPredictor.load(predictorWeights);
            }
            case "popularity", "affinity" -> {
                if (fit == null) throw new IllegalArgumentException("--predictor " + predictor + " needs --fit TRACE");
                TraceReader.Trace t = TraceReader.read(fit);
                TraceStatistics st = new TraceStatistics(t.header(), t.records());
                if (predictor.equals("affinity")) yield new AffinityPredictor(st.transitions(1));
                long[][] load = new long[st.layers()][];
                for (int l = 0; l < st.layers(); l++) load[l] = st.load(l);
                yield new PopularityPredictor(load);
            }
            default -> throw new IllegalArgumentException("--predictor is " + predictor
                    + " but must be lookahead-gate, learned, popularity or affinity (the oracle needs a recorded trace)");
        };
    }
}
