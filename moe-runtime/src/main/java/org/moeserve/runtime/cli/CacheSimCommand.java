package org.moeserve.runtime.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import org.moeserve.cache.ExpertKey;
import org.moeserve.cache.policy.Policies;
import org.moeserve.cache.sim.CacheSimulator;
import org.moeserve.cache.transfer.LinkModel;
import org.moeserve.routing.TraceReader;
import org.moeserve.routing.predict.ExpertPredictor;
import org.moeserve.routing.predict.TokenSample;
import org.moeserve.routing.stats.TraceStatistics;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.MoeModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code moe cache-sim}: replay traces against cache policies in virtual time, with Belady's bound beside them. */
@Command(name = "cache-sim", mixinStandardHelpOptions = true,
        description = "Replay a trace against the expert cache (no expert compute): hit rate, stalls, bytes moved, "
                + "prefetch precision, and Belady's hit rate at the same budget.")
final class CacheSimCommand implements Callable<Integer> {
    @Option(names = "--trace", required = true, paramLabel = "FILE", description = "moe-trace/1 to replay (repeatable).")
    List<Path> traces;

    @Option(names = "--budget", paramLabel = "B", split = ",",
            description = "Fast-tier budget(s): 25%, 24 (experts) or 6MB; several make a sweep (default ${DEFAULT-VALUE}).")
    List<String> budgets = List.of("25%");

    @Mixin
    OffloadOptions offload = new OffloadOptions();

    @Option(names = "--predictor", paramLabel = "NAME",
            description = "What the predictive policy prefetches by: lookahead-gate (default with --model), learned "
                    + "(--weights), affinity (default without --model).")
    String predictor;

    @Option(names = "--model", paramLabel = "DIR", description = "Rerun the trace's tokens for hidden states and expert size.")
    Path model;

    @Option(names = "--weights", paramLabel = "FILE", description = "The learned predictor's file.")
    Path weights;

    @Option(names = "--fit", paramLabel = "FILE",
            description = "Trace for statistics: the affinity predictor, the pin policy's profile (default: the replayed trace).")
    Path fit;

    @Option(names = "--layer-time", paramLabel = "T", description = "Modelled compute per layer (default ${DEFAULT-VALUE}).")
    String layerTime = "80us";

    @Option(names = "--expert-size", paramLabel = "BYTES",
            description = "Bytes per expert without --model (default ${DEFAULT-VALUE}: tiny-mixtral-kjv's).")
    long expertSize = 147_456;

    @Option(names = "--plot", paramLabel = "FILE.svg", description = "With a sweep: hit rate versus budget, one line per policy.")
    Path plot;

    @Option(names = "--json", description = "Print JSON instead of tables.")
    boolean json;

    @Override
    public Integer call() throws IOException {
        for (String p : offload.policies) {
            if (!Policies.NAMES.contains(p)) {
                throw new IllegalArgumentException("--policy is " + p + " but must be one of " + String.join(", ", Policies.NAMES));
            }
        }
        TraceReader.Trace t = PredictorCommand.readAll(traces);
        int layers = t.header().layers(), experts = t.header().experts(), topK = t.header().topK();
        TraceReader.Trace fitTrace = fit == null ? t : TraceReader.read(fit);
        TraceStatistics st = new TraceStatistics(fitTrace.header(), fitTrace.records());
        long[][] load = st.loads();
        List<Map<String, Object>> rows = new ArrayList<>();
        try (MoeModel m = model == null ? null : MoeModel.load(model); Parallel par = new Parallel(Runtime.getRuntime().availableProcessors())) {
            long expertBytes = m == null ? expertSize : m.expertBytes();
            List<TokenSample> samples = PredictorCommand.samples(t, m, par, "replayed trace");
            ExpertPredictor pred = predictor(m, st, layers, experts);
            List<ExpertKey> future = CacheSimulator.accesses(samples);
            LinkModel link = offload.linkModel();
            long layerNanos = LinkModel.parseDuration(layerTime);
            int k = offload.prefetchK == null ? topK : offload.prefetchK;
            if (!json) {
                System.out.printf(Locale.ROOT, "replaying %d tokens x %d layers (%d experts each, top-%d); link %s; "
                                + "%s compute per layer; expert %d bytes [modelled link]%n", samples.size(), layers, experts,
                        topK, link, layerTime, expertBytes);
                System.out.println("| budget | policy | prefetch by | hit rate | Belady hit rate | hit / Belady | late | "
                        + "stall per token | step time vs resident | moved MB | prefetch precision | wasted MB |");
                System.out.println("|---|---|---|---|---|---|---|---|---|---|---|---|");
            }
            Map<String, List<double[]>> curves = new LinkedHashMap<>();
            for (String b : budgets) {
                long budget = OffloadOptions.budgetBytes(b, (long) layers * experts, expertBytes);
                int slots = (int) (budget / expertBytes);
                CacheSimulator.Options o = new CacheSimulator.Options(budget, expertBytes, link, layerNanos, offload.horizon, k,
                        !offload.noDeadlines);
                double belady = CacheSimulator.beladyHitRate(samples, layers, o);
                curves.computeIfAbsent("belady (bound on demand)", x -> new ArrayList<>()).add(new double[]{slots, belady});
                for (String p : offload.policies) {
                    boolean prefetching = p.equals("predictive");
                    CacheSimulator.Result r = CacheSimulator.run(samples, layers,
                            Policies.create(p, layers, slots, topK, load, future), prefetching ? pred : null,
                            p.equals("oracle"), o);
                    curves.computeIfAbsent(p, x -> new ArrayList<>()).add(new double[]{slots, r.stats().hitRate()});
                    Map<String, Object> row = new LinkedHashMap<>();
                    row.put("budget", b);
                    row.put("slots", slots);
                    row.put("policy", p);
                    row.put("prefetch_by", r.predictor());
                    row.putAll(r.stats().toMap());
                    row.put("belady_hit_rate", belady);
                    row.put("slowdown", r.slowdown());
                    rows.add(row);
                    if (!json) {
                        System.out.printf(Locale.ROOT, "| %s (%d) | %s | %s | %.3f | %.3f | %.2f | %d | %.1f us | %.2fx | %.1f | %.3f | %.1f |%n",
                                b, slots, p, r.predictor(), r.stats().hitRate(), belady, r.stats().hitRate() / belady,
                                r.stats().late(), r.stats().stallNanos() / 1e3 / samples.size(), r.slowdown(),
                                r.stats().bytesMoved() / 1e6, r.stats().prefetchPrecision(), r.stats().wastedBytes() / 1e6);
                    }
                }
            }
            if (plot != null) {
                Files.writeString(plot, Svg.lines("Hit rate vs fast-tier budget (" + layers * experts + " experts)",
                        "experts resident", "hit rate", curves));
                System.err.println("moe cache-sim: wrote " + plot);
            }
        }
        if (json) System.out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(rows));
        return 0;
    }

    private ExpertPredictor predictor(MoeModel m, TraceStatistics st, int layers, int experts) throws IOException {
        String name = predictor != null ? predictor : m != null ? "lookahead-gate" : "affinity";
        return Predictors.create(name, m, st, weights, layers, experts);
    }
}
