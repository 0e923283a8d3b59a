package org.moeserve.runtime.cli;



import org.moeserve.routing.RoutingStats;
import org.moeserve.routing.TraceReader;
import org.moeserve.routing.TraceRecord;
import org.moeserve.routing.predict.ExpertPredictor;
import org.moeserve.routing.predict.LearnedPathPredictor;
import org.moeserve.routing.predict.PredictorEvaluation;
import org.moeserve.routing.predict.StatsPrediction;
import org.moeserve.routing.predict.TokenSample;
import org.moeserve.routing.stats.TraceStatistics;
import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.engine.PathRecorder;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.MoeModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code moe predictor eval | train | eval-stats}: expert-path predictors, trained and measured on real routing. */
@Command(name = "predictor", mixinStandardHelpOptions = true,
        description = "Train and evaluate expert-path predictors.",
        subcommands = {PredictorCommand.Eval.class, PredictorCommand.Train.class, PredictorCommand.EvalStats.class})
final class PredictorCommand implements Runnable {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new picocli.CommandLine.ParameterException(spec.commandLine(), "name a command: eval, train or eval-stats");
    }

    /** Every record of the traces, with the header of the first; all traces must be of one model shape. */
    static TraceReader.Trace readAll(List<Path> files) throws IOException {
        TraceReader.Trace first = null;
        List<TraceRecord> all = new ArrayList<>();
        for (Path f : files) {
            TraceReader.Trace t = TraceReader.read(f);
            if (first != null && (t.header().layers() != first.header().layers()
                    || t.header().experts() != first.header().experts())) {
                throw new IllegalArgumentException(f + ": " + t.header().layers() + " layers x " + t.header().experts()
                        + " experts, but " + files.getFirst() + " has " + first.header().layers() + " x "
                        + first.header().experts() + "; traces read together must be of one model");
            }
            if (first == null) first = t;
            all.addAll(t.records());
        }
        return new TraceReader.Trace(first.header(), all);
    }

    /** Samples of the trace's tokens: recomputed by the model (paths + hidden states) or taken from the file. */
    static List<TokenSample> samples(TraceReader.Trace t, MoeModel model, Parallel par, String what) {
        if (model == null) {
            List<TokenSample> out = new ArrayList<>();
            for (TraceRecord r : t.records()) {
                for (int i = 0; i < r.length(); i++) {
                    out.add(new TokenSample(r.domain(), r.tokens().length == 0 ? -1 : r.tokens()[i], r.experts()[i], null,
                            i == 0 ? null : r.experts()[i - 1]));
                }
            }
            return out;
        }
        PathRecorder rec = new PathRecorder(new Engine(model, par));
        if (rec.moeLayers() != t.header().layers() || model.config().experts() != t.header().experts()) {
            throw new IllegalArgumentException("the trace has " + t.header().layers() + " layers x "
                    + t.header().experts() + " experts but --model " + model.dir() + " has " + rec.moeLayers() + " x "
                    + model.config().experts() + "; pass the model the trace was made with");
        }
        List<PathRecorder.Input> in = new ArrayList<>();
        for (TraceRecord r : t.records()) {
            if (r.tokens().length == 0) {
                throw new IllegalArgumentException("sequence " + r.id() + " has no token ids, so the model cannot rerun it");
            }
            for (int off = 0; off < r.tokens().length; off += model.config().maxPositions()) {
                in.add(new PathRecorder.Input(r.domain(), java.util.Arrays.copyOfRange(r.tokens(), off,
                        Math.min(r.tokens().length, off + model.config().maxPositions()))));
            }
        }
        int every = Math.max(1, in.size() / 10);
        return rec.record(in, true, n -> {
            if (n % every == 0 || n == in.size()) System.err.printf("moe predictor: %s: %d/%d sequences%n", what, n, in.size());
        });
    }

    @Command(name = "eval", mixinStandardHelpOptions = true,
            description = "Precision and recall of predicted experts at distances 1..H, per domain, and the cost.")
    static final class Eval implements Callable<Integer> {
        @Option(names = "--trace", required = true, paramLabel = "FILE", description = "moe-trace/1 or an SGLang per_token dump (.pt) to evaluate on (repeatable).")
        List<Path> traces;

        @Option(names = "--model", paramLabel = "DIR",
                description = "Rerun the trace's tokens through this model to get hidden states (lookahead-gate, learned).")
        Path model;

        @Option(names = "--predictor", required = true, paramLabel = "NAME", split = ",",
                description = "popularity, affinity, lookahead-gate, learned, oracle (repeatable or comma-separated).")
        List<String> predictors;

        @Option(names = "--horizon", paramLabel = "H", description = "Lookahead distances 1..H (default ${DEFAULT-VALUE}).")
        int horizon = 3;

        @Option(names = "--prefetch-k", paramLabel = "K",
                description = "Experts predicted (what a prefetcher fetches) per layer (default: the model's top-k).")
        Integer k;

        @Mixin
        PredictorOptions predictorOptions = new PredictorOptions(); // --fit-trace defaults to the evaluated trace (in-sample)

        @Option(names = "--json", paramLabel = "FILE", description = "Write the results as JSON (- for stdout, instead of the tables).")
        Path json;

        @Option(names = "--threads", paramLabel = "N", description = "Compute threads for the model.")
        int threads = Runtime.getRuntime().availableProcessors();

        @Override
        public Integer call() throws IOException {
            if (horizon < 1) throw new UsageError("--horizon is " + horizon + " but must be >= 1");
            if (k != null && k < 1) throw new UsageError("--prefetch-k is " + k + " but must be >= 1");
            TraceReader.Trace t = readAll(traces);
            int kk = k == null ? t.header().topK() : k;
            TraceStatistics stats = predictorOptions.stats(t);
            String fit = predictorOptions.fitName();
            boolean table = !Output.isStdout(json);
            List<Map<String, Object>> results = new ArrayList<>();
            try (MoeModel m = model == null ? null : MoeModel.load(model); Parallel par = new Parallel(threads)) {
                List<ExpertPredictor> ps = new ArrayList<>();
                for (String name : predictors) {
                    ps.add(Predictors.create(name, m, stats, predictorOptions.weights, t.header().layers(), t.header().experts()));
                }
                List<TokenSample> samples = samples(t, m, par, "evaluation trace");
                for (ExpertPredictor p : ps) {
                    PredictorEvaluation ev = PredictorEvaluation.run(p, samples, t.header().layers(), horizon, kk);
                    Map<String, Object> r = ev.toMap();
                    boolean fitted = p.name().equals("popularity") || p.name().equals("affinity");
                    r.put("fit", fit == null ? "in-sample" : fit);
                    results.add(r);
                    if (table) {
                        System.out.println(ev.table() + (fitted
                                ? "(fitted on " + (fit == null ? "the evaluated trace: in-sample" : fit) + ")\n" : ""));
                        System.out.println(ev.calibrationTable());
                    }
                }
            }
            if (json != null) Output.json(json, results.size() == 1 ? results.getFirst() : results, "moe predictor eval");
            return 0;
        }
    }

    @Command(name = "train", mixinStandardHelpOptions = true,
            description = "Train the learned path predictor from traces (the model reruns their tokens for hidden states).")
    static final class Train implements Callable<Integer> {
        @picocli.CommandLine.Mixin
        ModelOptions model = new ModelOptions();

        @Option(names = "--trace", required = true, paramLabel = "FILE", description = "moe-trace/1 or an SGLang per_token dump (.pt) to train on (repeatable).")
        List<Path> traces;

        @Option(names = "--out", required = true, paramLabel = "FILE", description = "Where to write the predictor.")
        Path out;

        @Option(names = "--epochs", paramLabel = "N", description = "Passes over the data (default ${DEFAULT-VALUE}).")
        int epochs = org.moeserve.routing.predict.LearnedPathPredictor.Options.DEFAULT.epochs();

        @Option(names = "--units", paramLabel = "N", description = "Hidden units per layer's MLP (default ${DEFAULT-VALUE}).")
        int units = org.moeserve.routing.predict.LearnedPathPredictor.Options.DEFAULT.units();

        @Option(names = "--seed", paramLabel = "S", description = "Seed (default ${DEFAULT-VALUE}).")
        long seed = 1;

        @Override
        public Integer call() throws IOException {
            model.validate();
            org.moeserve.routing.predict.LearnedPathPredictor.Options o = new org.moeserve.routing.predict.LearnedPathPredictor.Options(units, epochs,
                    org.moeserve.routing.predict.LearnedPathPredictor.Options.DEFAULT.batch(), org.moeserve.routing.predict.LearnedPathPredictor.Options.DEFAULT.learningRate(), seed);
            TraceReader.Trace t = readAll(traces);
            try (MoeModel m = MoeModel.load(model.modelDir()); Parallel par = new Parallel(model.threads)) {
                List<TokenSample> samples = samples(t, m, par, "training trace");
                long t0 = System.nanoTime();
                org.moeserve.routing.predict.LearnedPathPredictor p = org.moeserve.routing.predict.LearnedPathPredictor.train(samples, t.header().layers(), t.header().experts(), o,
                        e -> System.err.printf("moe predictor train: epoch %d/%d%n", e, o.epochs()));
                p.save(out);
                System.err.printf(Locale.ROOT, "moe predictor train: %d tokens, %.1f s; wrote %s%n", samples.size(),
                        (System.nanoTime() - t0) / 1e9, out);
            }
            return 0;
        }
    }

    @Command(name = "eval-stats", mixinStandardHelpOptions = true,
            description = "Statistics-only predictors on moe-stats/1 counts: top-1 at layer b from top-1 at layer a.")
    static final class EvalStats implements Callable<Integer> {
        @Option(names = "--fit-stats", required = true, paramLabel = "STATS", description = "moe-stats/1 to fit on.")
        Path fit;

        @Option(names = "--test", required = true, paramLabel = "FILE", description = "moe-stats/1 to score on (repeatable).")
        List<Path> tests;

        @Option(names = "--pair", paramLabel = "A->B", description = "Layer pair (default: every pair the fit file has).")
        String pair;

        @Option(names = "--json", paramLabel = "FILE", description = "Write the rows as JSON (- for stdout, instead of the table).")
        Path json;

        @Override
        public Integer call() throws IOException {
            boolean table = !Output.isStdout(json);
            RoutingStats f = RoutingStats.read(fit);
            List<String> pairs = pair != null ? List.of(pair) : new ArrayList<>(f.transitionsTop1().keySet());
            if (pairs.isEmpty()) throw new IllegalArgumentException(fit + " has no transitions_top1 to fit on");
            List<Map<String, Object>> rows = new ArrayList<>();
            if (table) {
                System.out.printf("fit: %s (%s, %s); accuracy of the top-1 expert at layer b given the top-1 at layer a%n",
                        fit.getFileName(), f.model(), f.domain());
                System.out.printf("| test | pair | popularity acc@1 | affinity acc@1 | popularity acc@%d | affinity acc@%d |%n",
                        f.topK(), f.topK());
                System.out.println("|---|---|---|---|---|---|");
            }
            for (Path tp : tests) {
                RoutingStats t = RoutingStats.read(tp);
                for (String p : pairs) {
                    StatsPrediction.Result p1 = StatsPrediction.evaluate(f, t, p, false, 1);
                    StatsPrediction.Result a1 = StatsPrediction.evaluate(f, t, p, true, 1);
                    StatsPrediction.Result pk = StatsPrediction.evaluate(f, t, p, false, f.topK());
                    StatsPrediction.Result ak = StatsPrediction.evaluate(f, t, p, true, f.topK());
                    Map<String, Object> r = new LinkedHashMap<>();
                    r.put("fit", f.domain());
                    r.put("test", t.domain());
                    r.put("pair", p);
                    r.put("popularity_acc1", p1.accuracy());
                    r.put("affinity_acc1", a1.accuracy());
                    r.put("popularity_acck", pk.accuracy());
                    r.put("affinity_acck", ak.accuracy());
                    r.put("k", f.topK());
                    rows.add(r);
                    if (table) {
                        System.out.printf(Locale.ROOT, "| %s | %s | %.3f | %.3f | %.3f | %.3f |%n", t.domain(), p,
                                p1.accuracy(), a1.accuracy(), pk.accuracy(), ak.accuracy());
                    }
                }
            }
            if (json != null) Output.json(json, rows, "moe predictor eval-stats");
            return 0;
        }
    }
}
