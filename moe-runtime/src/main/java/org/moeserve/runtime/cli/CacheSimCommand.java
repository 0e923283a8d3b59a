package org.moeserve.runtime.cli;

import org.moeserve.runtime.plot.Svg;
import org.moeserve.units.Units;
import org.moeserve.cache.ExpertKey;
import org.moeserve.cache.policy.Policies;
import org.moeserve.cache.sim.CacheSimulator;
import org.moeserve.units.LinkModel;
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
    @Option(names = "--trace", required = true, paramLabel = "FILE", description = "moe-trace/1 or an SGLang per_token dump (.pt) to replay (repeatable).")
    List<Path> traces;

    @Mixin
    OffloadOptions offload = new OffloadOptions();

    @Option(names = "--predictor", paramLabel = "NAME",
            description = "What the predictive policy prefetches by: lookahead-gate (default with --model), learned "
                    + "(--predictor-weights), affinity (default without --model).")
    String predictor;

    @Mixin
    PredictorOptions predictorOptions = new PredictorOptions();

    @Option(names = "--model", paramLabel = "DIR", description = "Rerun the trace's tokens for hidden states and expert size.")
    Path model;

    @Option(names = "--layer-time", paramLabel = "T", converter = Converters.Duration.class,
            description = "Modelled compute per layer (default 80us).")
    long layerNanos = 80_000;

    @Option(names = "--expert-bytes", paramLabel = "B", converter = Converters.Bytes.class,
            description = "Bytes per expert, without --model or --model-config (else tiny-mixtral-kjv's 147456, with a warning).")
    Long expertSize;

    @Option(names = "--model-config", paramLabel = "FILE",
            description = "The traced model's config.json (no weights needed): its expert size, 3 x hidden x expert width x dtype.")
    Path modelConfig;

    @Option(names = "--batch", paramLabel = "B",
            description = "Sequences decoded per step, interleaved as the scheduler runs them; a step acquires the union of "
                    + "its tokens' experts once per layer (default ${DEFAULT-VALUE}).")
    int batch = 1;

    @Option(names = "--readers", paramLabel = "N",
            description = "The link's schedule: 0 (default) a serial link, one load at a time, demand overtaking prefetches at "
                    + "matrix boundaries; N the disk tier's N reader threads (it runs " + OffloadOptions.DISK_READERS + ") beside demand "
                    + "reads on the layer's thread. Against live disk-tier runs the readers model gets the hit rate right and the "
                    + "time short (reads in flight together are slower than alone), the serial one the time (bench/analysis.md).")
    int readers = 0;

    @Option(names = "--svg", paramLabel = "FILE", description = "With a sweep: hit rate versus budget, one line per policy.")
    Path svg;

    @Option(names = "--json", paramLabel = "FILE", description = "Write the rows as JSON (- for stdout, instead of the table).")
    Path json;

    @Override
    public Integer call() throws IOException {
        offload.validate(true);
        if (offload.tier.equals("disk")) {
            throw new UsageError("cache-sim replays over a link model, not a disk; pass the disk's measured figures as "
                    + "--link BW,LAT (moe generate --offload disk prints them)");
        }
        if (batch < 1) throw new UsageError("--batch is " + batch + " but must be >= 1");
        if (readers < 0) throw new UsageError("--readers is " + readers + " but must be >= 0");
        List<Converters.ExpertBudget> budgets = offload.budgets != null ? offload.budgets : List.of(Converters.ExpertBudget.parse("25%"));
        boolean table = !Output.isStdout(json);
        TraceReader.Trace t = PredictorCommand.readAll(traces);
        int layers = t.header().layers(), experts = t.header().experts(), topK = t.header().topK();
        TraceStatistics st = predictorOptions.stats(t);
        long[][] load = st.loads();
        List<Map<String, Object>> rows = new ArrayList<>();
        try (MoeModel m = model == null ? null : MoeModel.load(model); Parallel par = new Parallel(Runtime.getRuntime().availableProcessors())) {
            long expertBytes = expertBytes(m, layers, experts);
            List<TokenSample> samples = PredictorCommand.samples(t, m, par, "replayed trace");
            // every budget checked before the first line of output: a layer of a step pins the union of its tokens' experts
            int widest = CacheSimulator.widestLayer(samples, batch);
            for (Converters.ExpertBudget b : budgets) {
                long slots = b.bytes((long) layers * experts, expertBytes) / expertBytes;
                if (slots <= widest) {
                    throw new UsageError("--expert-budget " + b + " holds " + slots + " experts of " + expertBytes + " bytes, but a "
                            + "layer of " + (batch == 1 ? "a token" : "a step of " + batch + " tokens") + " uses up to " + widest
                            + " at once; give at least " + (widest + 1) + " experts" + (batch > 1 ? " or a smaller --batch" : ""));
                }
            }
            ExpertPredictor pred = predictor(m, st, layers, experts);
            List<ExpertKey> future = CacheSimulator.accesses(samples, batch);
            int[] stepOf = CacheSimulator.stepOfAccess(samples, batch);
            LinkModel link = offload.link(m);
            String linkNote = (offload.link == Converters.Link.MEASURED ? " [measured disk" : " [modelled link")
                    + (readers > 0 ? ", " + readers + " readers]" : "]");
            int k = offload.k(topK);
            if (table) {
                // one caption line (the bench report reads the tokens and the link from it)
                System.out.printf(Locale.ROOT, "replaying %d tokens x %d layers (%d experts each, top-%d)%s; link %s; "
                                + "%s compute per layer; expert %d bytes; one load = %.2f layers of compute%s%n",
                        samples.size(), layers, experts, topK,
                        batch > 1 ? String.format(Locale.ROOT, ", %d sequences a step (%d steps)", batch, CacheSimulator.steps(samples, batch).size()) : "",
                        link, Units.formatDuration(layerNanos), expertBytes, (double) link.nanosFor(expertBytes) / Math.max(1, layerNanos), linkNote);
                System.out.println("| budget | policy | prefetch by | hit rate | Belady hit rate | hit / Belady (demand bound) | late | "
                        + "stall per token | stall / oracle prefetcher's | step time vs resident | moved MB | prefetch precision | wasted MB |");
                System.out.println("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
            }
            Map<String, List<double[]>> curves = new LinkedHashMap<>();
            for (Converters.ExpertBudget b : budgets) {
                long budget = b.bytes((long) layers * experts, expertBytes);
                int slots = (int) (budget / expertBytes);
                CacheSimulator.Options o = new CacheSimulator.Options(budget, expertBytes, link, layerNanos, offload.horizon, k,
                        !offload.noDeadlines, batch, readers);
                double belady = CacheSimulator.beladyHitRate(samples, layers, o);
                // the bound for prefetching policies: Belady's eviction with the true future prefetched (stall per token)
                double oracleStall = CacheSimulator.run(samples, layers, Policies.create("oracle", layers, slots, Math.max(topK, widest), load, future),
                        null, true, o).stats().stallNanos() / 1e3 / samples.size();
                curves.computeIfAbsent("belady (bound on demand)", x -> new ArrayList<>()).add(new double[]{slots, belady});
                for (String p : offload.policies) {
                    boolean prefetching = p.equals("predictive");
                    CacheSimulator.Result r = CacheSimulator.run(samples, layers,
                            Policies.create(p, layers, slots, Math.max(topK, widest), load, future, stepOf), prefetching ? pred : null,
                            p.startsWith("oracle"), o);
                    curves.computeIfAbsent(p, x -> new ArrayList<>()).add(new double[]{slots, r.stats().hitRate()});
                    Map<String, Object> row = new LinkedHashMap<>();
                    row.put("budget", b.text());
                    row.put("slots", slots);
                    row.put("policy", p);
                    row.put("prefetch_by", r.predictor());
                    row.putAll(r.stats().toMap());
                    row.put("belady_hit_rate", belady);
                    row.put("slowdown", r.slowdown());
                    row.put("oracle_stall_us_per_token", oracleStall);
                    rows.add(row);
                    if (table) {
                        double stall = r.stats().stallNanos() / 1e3 / samples.size();
                        System.out.printf(Locale.ROOT, "| %s (%d) | %s | %s | %.3f | %.3f | %.2f | %d | %.1f us | %s | %.2fx | %.1f | %.3f | %.1f |%n",
                                b, slots, p, r.predictor(), r.stats().hitRate(), belady, r.stats().hitRate() / belady,
                                r.stats().late(), stall, oracleStall < 0.5 ? "-" : String.format(Locale.ROOT, "%.2fx", stall / oracleStall),
                                r.slowdown(),
                                r.stats().bytesMoved() / 1e6, r.stats().prefetchPrecision(), r.stats().wastedBytes() / 1e6);
                    }
                }
            }
            if (svg != null) {
                Files.writeString(svg, Svg.lines("Hit rate vs fast-tier budget (" + layers * experts + " experts)",
                        "experts resident", "hit rate", curves));
                System.err.println("moe cache-sim: wrote " + svg);
            }
        }
        if (json != null) Output.json(json, rows, "moe cache-sim");
        return 0;
    }

    /** The traced model's expert size: from its weights, its config, the flag, or (with a warning) the demo model's. */
    private long expertBytes(MoeModel m, int layers, int experts) throws IOException {
        if (m != null) return m.expertBytes();
        if (modelConfig != null) {
            com.fasterxml.jackson.databind.JsonNode c = new com.fasterxml.jackson.databind.ObjectMapper().readTree(modelConfig.toFile());
            org.moeserve.runtime.model.ModelConfig mc = org.moeserve.runtime.model.ModelConfig.fromJson(c, modelConfig);
            if (mc.moeLayers() != layers || mc.experts() != experts) {
                throw new IllegalArgumentException("--model-config " + modelConfig + " describes " + mc.moeLayers() + " MoE layers x "
                        + mc.experts() + " experts but the trace has " + layers + " x " + experts + "; give the traced model's config");
            }
            String dtype = c.path("torch_dtype").asText("bfloat16");
            int width = dtype.equals("float32") ? 4 : 2;
            return 3L * mc.hiddenSize() * mc.expertIntermediate() * width;
        }
        if (expertSize != null) return expertSize;
        System.err.println("moe cache-sim: warning: no --model, --model-config or --expert-bytes; assuming tiny-mixtral-kjv's "
                + "expert size (147456 bytes), which fits only its traces");
        return 147_456;
    }

    private ExpertPredictor predictor(MoeModel m, TraceStatistics st, int layers, int experts) throws IOException {
        String name = predictor != null ? predictor : m != null ? "lookahead-gate" : "affinity";
        return Predictors.create(name, m, st, predictorOptions.weights, layers, experts);
    }
}
