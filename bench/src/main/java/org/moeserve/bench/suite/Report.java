package org.moeserve.bench.suite;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.moeserve.runtime.plot.Svg;
import org.moeserve.runtime.model.ExpertWeights;
import org.moeserve.runtime.model.MoeModel;
import org.moeserve.runtime.model.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * BENCHMARKS.md and its plots from bench/results/*.json and the hand-written bench/analysis.md. Depends on nothing
 * but those files and the demo model's checkpoint (for the bytes a token reads), so the same JSON always gives the
 * same file: a test holds the committed BENCHMARKS.md to that. The physical limits are computed here, beside the
 * results they bound: the decode roofline (weight bytes a token must read / the triad bandwidth of the same kind of
 * run) and the link roofline of offload (bytes over the link per token / link bandwidth).
 */
public final class Report {
    static final List<String> ORDER = Suite.STEPS.stream().map(Suite.Step::name).toList();

    /** The Markdown and the plots (file name to SVG) one set of results gives. */
    public record Rendered(String markdown, Map<String, String> plots) {}

    private final Map<String, Suite.StepResult> results;
    private final Footprint footprint;
    private final Map<String, String> plots = new LinkedHashMap<>();
    private final List<String> ownPlots; // SVGs the steps' commands wrote themselves into bench/results

    Report(Map<String, Suite.StepResult> results, Footprint footprint, List<String> ownPlots) {
        this.results = results;
        this.footprint = footprint;
        this.ownPlots = ownPlots;
    }

    public static void write(Path root) throws IOException {
        Rendered r = render(root);
        Path dir = root.resolve("bench/results");
        for (Map.Entry<String, String> p : r.plots().entrySet()) Files.writeString(dir.resolve(p.getKey()), p.getValue());
        Files.writeString(root.resolve("BENCHMARKS.md"), r.markdown());
    }

    public static Rendered render(Path root) throws IOException {
        Map<String, Suite.StepResult> res = new LinkedHashMap<>();
        ObjectMapper json = new ObjectMapper();
        for (String name : ORDER) {
            Path f = root.resolve("bench/results/" + name + ".json");
            if (Files.exists(f)) res.put(name, json.readValue(f.toFile(), Suite.StepResult.class));
        }
        Footprint fp;
        try (MoeModel m = MoeModel.load(root.resolve("models/tiny-mixtral-kjv"))) {
            fp = Footprint.of(m);
        }
        Path analysis = root.resolve("bench/analysis.md");
        String notes = Files.exists(analysis) ? Files.readString(analysis) : "";
        List<String> own = new ArrayList<>();
        Path dir = root.resolve("bench/results");
        if (Files.isDirectory(dir)) {
            try (var files = Files.list(dir)) {
                files.map(f -> f.getFileName().toString()).filter(f -> f.endsWith(".svg")).sorted().forEach(own::add);
            }
        }
        Report rep = new Report(res, fp, own);
        return new Rendered(rep.markdown(notes), rep.plots);
    }

    /** The weight bytes of the demo model a decode step reads. */
    record Footprint(long nonExpert, long expertBytes, int sparseLayers, int experts, int topK, long total) {
        static Footprint of(MoeModel m) {
            var c = m.config();
            int b = m.dtype().quantized() ? 4 : m.dtype().bytes(); // norms: floats in memory, stored at the model's dtype (F32 in GGUF)
            long non = m.lmHead().data().byteSize() + m.embed().rowBytes()
                    + (long) b * m.finalNorm().length, total = m.embed().data().byteSize() + (long) b * m.finalNorm().length;
            if (m.lmHead() != m.embed()) total += m.lmHead().data().byteSize();
            int sparse = 0;
            for (int l = 0; l < c.layers(); l++) {
                MoeModel.Layer y = m.layer(l);
                long attn = bytes(y.wq()) + bytes(y.wk()) + bytes(y.wv()) + bytes(y.wo()) + bytes(y.router())
                        + (long) b * (y.inputNorm().length + y.postAttentionNorm().length + len(y.qNorm()) + len(y.kNorm()))
                        + (y.dense() == null ? 0 : y.dense().byteSize());
                non += attn;
                total += attn;
                if (y.sparse()) {
                    sparse++;
                    for (ExpertWeights e : y.experts()) total += e.byteSize();
                }
            }
            return new Footprint(non, m.expertBytes(), sparse, c.experts(), c.topK(), total);
        }

        private static int len(float[] a) { return a == null ? 0 : a.length; }

        private static long bytes(Tensor t) { return t == null ? 0 : t.data().byteSize(); }

        /** Bytes one decode step of S streams reads per token if the streams' experts are all distinct. */
        double perToken(int streams) {
            return (nonExpert + (double) sparseLayers * Math.min(experts, (long) streams * topK) * expertBytes) / streams;
        }
    }

    // ---------------------------------------------------------------------------------------------------------

    String markdown(String notes) {
        StringBuilder sb = new StringBuilder();
        sb.append("""
                # Benchmarks

                <!-- Generated by `./moe bench suite` from bench/results/*.json and bench/analysis.md: edit those, not this file. -->

                One command runs every benchmark below, keeps the results as JSON (`bench/results/STEP.json`), and
                regenerates this file and its plots (`bench/results/*.svg`):

                    ./moe bench suite --quick    # everyday use: about 4.5 minutes on the 2-vCPU development machine
                    ./moe bench suite            # the full mode: more reps, longer solves, larger runs: about 11 minutes

                `--only decode,offload` or `--skip peers` run some steps (the others keep their last results);
                `./moe bench report` rewrites this file from the JSON without running anything. Every section names
                its commands (run from the project root), its mode, date and machine. The machine is shared and noisy:
                figures are medians of reps interleaved in one process, and ratios are taken only between figures of
                one run. Peers need the npm registry and Maven Central once; a step that failed says so in its section.

                """);
        sb.append("## Summary\n\n| step | mode, date, time | headline | limit beside it |\n|---|---|---|---|\n");
        double total = 0;
        for (String name : ORDER) {
            Suite.StepResult r = results.get(name);
            if (r == null) {
                sb.append("| ").append(name).append(" | not run yet | | |\n");
                continue;
            }
            String[] h = r.failed() ? new String[]{"failed: see its section", ""} : safe(() -> headline(name));
            sb.append(String.format(Locale.ROOT, "| [%s](#%s) | %s, %s, %.0f s | %s | %s |%n", name, anchor(r.title()), r.mode(),
                    r.date(), r.seconds(), h[0], h[1]));
            total += r.seconds();
        }
        sb.append(String.format(Locale.ROOT, "%nThe steps above took %.1f minutes together.%n%n", total / 60));
        for (String name : ORDER) {
            Suite.StepResult r = results.get(name);
            if (r != null) section(sb, r);
        }
        if (!notes.isBlank()) sb.append("---\n\n").append(notes.strip()).append('\n');
        return sb.toString();
    }

    private String[] safe(java.util.function.Supplier<String[]> s) {
        try {
            return s.get();
        } catch (RuntimeException e) { // results of an older layout: say so instead of failing the report
            return new String[]{"-", "-"};
        }
    }

    private static String anchor(String title) {
        return title.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9 -]", "").replace(' ', '-');
    }

    private void section(StringBuilder sb, Suite.StepResult r) {
        sb.append("## ").append(r.title()).append("\n\n").append(r.what()).append("\n\n");
        sb.append(String.format(Locale.ROOT, "*%s mode, %s, %.0f s; %s.* Commands:%n%n", r.mode(), r.date(), r.seconds(), r.machine()));
        for (Suite.Run run : r.runs()) sb.append("    ").append(run.command()).append('\n');
        sb.append('\n');
        for (Suite.Run run : r.runs()) {
            if (run.exit() != 0) {
                sb.append("**Failed** (exit ").append(run.exit()).append(") at `").append(run.command()).append("`; the end of its log:\n\n```\n")
                        .append(run.log().strip()).append("\n```\n\n");
            }
        }
        switch (r.name()) {
            case "decode" -> decode(sb, r);
            case "kernels" -> kernels(sb, r);
            case "predictors" -> predictors(sb, r);
            case "offload" -> offload(sb, r);
            case "peers" -> peers(sb, r);
            default -> tables(sb, r, null);
        }
        switch (r.name()) {
            case "bandwidth" -> bandwidthPlot(r);
            case "placement" -> barsOf(r, "placement.svg", "Transitions crossing devices per solver", "% of transitions",
                    "transitions crossing devices", t -> source(t, r));
            case "serving" -> barsOf(r, "serving.svg", "Aggregate tokens/s against concurrent clients", "tokens/s",
                    "aggregate tokens/s", t -> "all experts resident");
            case "regimes" -> regimesPlot(r);
            default -> { }
        }
        List<String> shown = new ArrayList<>(plots.keySet().stream().filter(p -> p.startsWith(r.name())).toList());
        for (String f : ownPlots) if (f.startsWith(r.name() + "-") && !shown.contains(f)) shown.add(f);
        for (String plot : shown) sb.append("![").append(plot).append("](bench/results/").append(plot).append(")\n\n");
    }

    /** Every table of the step, with its section and caption; {@code extra} may add columns to a table. */
    private void tables(StringBuilder sb, Suite.StepResult r, Function<Table, List<List<String>>> extra) {
        for (Suite.Run run : r.runs()) {
            if (run.tables().isEmpty()) continue;
            String lastSection = "";
            for (Table t : run.tables()) {
                if (!t.section().isEmpty() && !t.section().equals(lastSection)) sb.append("**").append(t.section()).append("**\n\n");
                lastSection = t.section();
                if (!t.caption().isEmpty() && !t.caption().startsWith("machine:")) sb.append(t.caption()).append("\n\n");
                List<List<String>> cells = extra == null ? null : extra.apply(t);
                if (cells == null) sb.append(t.markdown(null, null));
                else sb.append(t.markdown(cells.getFirst(), cells.subList(1, cells.size())));
                sb.append('\n');
            }
        }
    }

    // --- per-step bodies ---------------------------------------------------------------------------------------

    /** Triad GB/s at a thread count, from the bandwidth step, or NaN. */
    double triad(int threads) {
        Suite.StepResult b = results.get("bandwidth");
        if (b == null) return Double.NaN;
        for (Suite.Run run : b.runs()) {
            for (Table t : run.tables()) {
                int c = t.column("triad");
                if (c < 0) continue;
                List<String> row = t.row(String.valueOf(threads));
                if (row != null) return Table.number(row.get(c));
            }
        }
        return Double.NaN;
    }

    private void decode(StringBuilder sb, Suite.StepResult r) {
        sb.append(String.format(Locale.ROOT, "**Limit.** One decode token must read %.2f MB of weights: attention, router, norms "
                        + "and lm_head (%.2f MB) plus top-%d of %d experts in %d layers (%.0f kB each); S streams in one step "
                        + "share the dense weights, and the roofline assumes their experts are all distinct. The whole "
                        + "model is %.1f MB. Roofline = triad GB/s (same thread count, bandwidth step) / bytes per token. "
                        + "A model this small can stay in the last-level cache, where the DRAM roofline does not bind.%n%n",
                footprint.perToken(1) / 1e6, footprint.nonExpert() / 1e6, footprint.topK(), footprint.experts(),
                footprint.sparseLayers(), footprint.expertBytes() / 1e3, footprint.total() / 1e6));
        List<String> cats = new ArrayList<>();
        List<double[]> pairs = new ArrayList<>();
        tables(sb, r, t -> {
            int s = t.column("streams"), th = t.column("threads"), v = t.column("decode tokens/s");
            if (s < 0 || th < 0 || v < 0) return null;
            List<List<String>> out = new ArrayList<>();
            out.add(List.of("triad GB/s", "weight-read roofline tokens/s", "of roofline"));
            for (List<String> row : t.rows()) {
                int streams = (int) Table.number(row.get(s)), threads = (int) Table.number(row.get(th));
                double bw = triad(threads), rl = bw * 1e9 / footprint.perToken(streams), tps = Table.number(row.get(v));
                out.add(List.of(fmt1(bw), fmt0(rl), pct(tps / rl)));
                cats.add(streams + " x " + threads + "t");
                pairs.add(new double[]{tps, rl});
            }
            return out;
        });
        pairPlot("decode.svg", "Decode tokens/s: streams x threads", "tokens/s", cats, pairs, "measured", "roofline (triad)");
    }

    private void kernels(StringBuilder sb, Suite.StepResult r) {
        sb.append("JMH calls the product on the same matrix again and again, so part of it stays in the last-level cache: "
                + "a share of the triad above 100% means cache, not DRAM. The bandwidth step, which streams a fresh "
                + "matrix, gives the DRAM figure.\n\n");
        List<String> cats = new ArrayList<>();
        List<double[]> vals = new ArrayList<>();
        tables(sb, r, t -> {
            int d = t.column("dtype"), th = t.column("threads"), v = t.column("vector ms"), s = t.column("scalar ms");
            if (d < 0 || v < 0) return null;
            List<List<String>> out = new ArrayList<>();
            out.add(List.of("vector GB/s", "of triad"));
            for (List<String> row : t.rows()) {
                int bytes = row.get(d).equals("F32") ? 4 : 2, threads = (int) Table.number(row.get(th));
                double gbs = 4096.0 * 4096 * bytes / (Table.number(row.get(v)) / 1e3) / 1e9;
                out.add(List.of(fmt1(gbs), pct(gbs / triad(threads))));
                cats.add(row.get(d) + " " + threads + "t");
                vals.add(new double[]{Table.number(row.get(s)), Table.number(row.get(v))});
            }
            return out;
        });
        pairPlot("kernels.svg", "4096x4096 matrix-vector product (lower is better)", "ms", cats, vals, "scalar", "vector");
    }

    private static final Pattern PREDICTOR = Pattern.compile("^(\\S+), K=(\\d+):");

    private void predictors(StringBuilder sb, Suite.StepResult r) {
        // summary: one row per predictor, the "all" row's recall at distance 1 and the farthest distance, per trace and K
        Map<String, Map<String, String>> rows = new LinkedHashMap<>();
        List<String> cols = new ArrayList<>();
        Map<String, Map<String, Double>> d1 = new LinkedHashMap<>();
        for (Suite.Run run : r.runs()) {
            for (Table t : run.tables()) {
                Matcher m = PREDICTOR.matcher(t.caption());
                List<String> all = t.row("all");
                if (!m.find() || all == null) continue;
                String trace = t.section().replaceFirst(", K=\\d+$", "").replace(".trace.jsonl", "").replace("tiny-mixtral-kjv-", "");
                String last = t.columns().getLast();
                String c1 = trace + " K=" + m.group(2) + " d=1", cn = trace + " K=" + m.group(2) + " " + last;
                if (!cols.contains(c1)) {
                    cols.add(c1);
                    cols.add(cn);
                }
                Map<String, String> row = rows.computeIfAbsent(m.group(1), k -> new LinkedHashMap<>());
                row.put(c1, String.format(Locale.ROOT, "%.3f", Table.number(all.get(t.column("d=1")))));
                row.put(cn, String.format(Locale.ROOT, "%.3f", Table.number(all.getLast())));
                d1.computeIfAbsent(trace + " K=" + m.group(2), k -> new LinkedHashMap<>()).put(m.group(1), Table.number(all.get(t.column("d=1"))));
            }
        }
        if (!rows.isEmpty()) {
            sb.append("Recall of the next layers' experts, all domains (precision is equal at K = top-k; d = layers ahead):\n\n");
            List<List<String>> body = new ArrayList<>();
            rows.forEach((p, v) -> {
                List<String> row = new ArrayList<>(List.of(p));
                for (String c : cols) row.add(v.getOrDefault(c, "-"));
                body.add(row);
            });
            List<String> head = new ArrayList<>(List.of("predictor"));
            head.addAll(cols);
            sb.append(new Table("", "", head, body, null).markdown(null, null)).append('\n');
            List<String> preds = new ArrayList<>(rows.keySet());
            Map<String, double[]> series = new LinkedHashMap<>();
            d1.forEach((k, v) -> series.put(k, preds.stream().mapToDouble(p -> v.getOrDefault(p, Double.NaN)).toArray()));
            plots.put("predictors.svg", Svg.bars("Next-layer expert recall (d=1)", "recall", preds, series));
        }
        sb.append("<details><summary>Every table of the run</summary>\n\n");
        tables(sb, r, null);
        sb.append("</details>\n\n");
    }

    private static final Pattern TOKENS = Pattern.compile("replaying (\\d+) tokens"), LINK = Pattern.compile("link ([\\d.]+) ?GB/s");

    private void offload(StringBuilder sb, Suite.StepResult r) {
        sb.append("**Limit.** Beside each result, the link roofline: link bandwidth / bytes over the link per token (misses "
                + "and prefetches, as measured or simulated): the tokens/s the link alone would allow at that hit rate. "
                + "The live runs count the bytes of the whole request, the prompt's prefill loads included, against its "
                + "decode tokens, which puts their roofline a little low: a run at the link's ceiling can read just above "
                + "100%.\n\n");
        List<String> budgets = new ArrayList<>();
        Map<String, Map<String, Double>> live = new LinkedHashMap<>(); // configuration -> budget -> tokens/s
        tables(sb, r, t -> {
            int moved = t.column("moved MB"), hit = t.column("hit rate");
            if (moved >= 0) { // cache-sim: total MB over the replayed trace, the link in the caption
                Matcher mt = TOKENS.matcher(t.caption()), ml = LINK.matcher(t.caption());
                if (!mt.find() || !ml.find()) return null;
                double tokens = Double.parseDouble(mt.group(1)), gbs = Double.parseDouble(ml.group(1));
                List<List<String>> out = new ArrayList<>();
                out.add(List.of("bytes over link per token", "link roofline tokens/s"));
                for (List<String> row : t.rows()) {
                    double per = Table.number(row.get(moved)) * 1e6 / tokens;
                    out.add(List.of(fmt0(per), per == 0 ? "∞" : fmt0(gbs * 1e9 / per)));
                }
                return out;
            }
            int per = t.column("bytes over link"), link = t.column("link GB/s"), tps = t.column("decode tokens/s");
            int cfg = Math.max(0, t.column("configuration"));
            if (per < 0 || link < 0 || tps < 0 || hit < 0) return null;
            List<List<String>> out = new ArrayList<>();
            out.add(List.of("link roofline tokens/s", "of link roofline"));
            for (List<String> row : t.rows()) {
                double b = Table.number(row.get(per)), g = Table.number(row.get(link)), v = Table.number(row.get(tps));
                double rl = Double.isNaN(g) || b == 0 ? Double.NaN : g * 1e9 / b;
                out.add(List.of(Double.isNaN(rl) ? "-" : fmt0(rl), Double.isNaN(rl) ? "-" : pct(v / rl)));
                String budget = cfg > 0 ? row.getFirst() : "25%";
                if (!budgets.contains(budget)) budgets.add(budget);
                live.computeIfAbsent(row.get(cfg), k -> new LinkedHashMap<>()).put(budget, v);
            }
            return out;
        });
        if (!budgets.isEmpty()) {
            Map<String, double[]> series = new LinkedHashMap<>();
            live.forEach((c, v) -> series.put(c, budgets.stream().mapToDouble(b -> v.getOrDefault(b, Double.NaN)).toArray()));
            plots.put("offload-live.svg", Svg.bars("Live decode tokens/s against the fast-memory budget (share of experts)", "tokens/s", budgets, series));
        }
    }

    /** The live offload row of a configuration at a budget (any budget for results without a budget column). */
    private static List<String> liveRow(Table t, String budget, String config) {
        int cfg = Math.max(0, t.column("configuration"));
        for (List<String> row : t.rows()) if (row.get(cfg).equals(config) && (cfg == 0 || row.getFirst().startsWith(budget))) return row;
        throw new IllegalStateException("no live row " + config + " at " + budget);
    }

    /** Two bars per category: {@code pairs.get(i)} = {first, second} value of category i. */
    private void pairPlot(String file, String title, String yLabel, List<String> cats, List<double[]> pairs, String first, String second) {
        if (cats.isEmpty()) return;
        Map<String, double[]> series = new LinkedHashMap<>();
        series.put(first, pairs.stream().mapToDouble(v -> v[0]).toArray());
        series.put(second, pairs.stream().mapToDouble(v -> v[1]).toArray());
        plots.put(file, Svg.bars(title, yLabel, cats, series));
    }

    private void peers(StringBuilder sb, Suite.StepResult r) {
        Map<String, double[]> tps = peerTokens(r); // engine -> tokens/s at 1 and 2 threads
        if (tps.containsKey("moe-serve")) {
            sb.append("One stream, greedy, 128 tokens; medians of the reps. Ratio = moe-serve's tokens/s / the peer's at the "
                    + "same thread count (Jlama picks its own threads: compared with moe-serve's best).\n\n");
            sb.append("| engine | 1 thread tokens/s | 2 threads tokens/s | moe-serve / engine, 1 thread | moe-serve / engine, 2 threads |\n|---|---|---|---|---|\n");
            double[] ours = tps.get("moe-serve");
            tps.forEach((k, v) -> sb.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s |%n", k, fmt0(v[0]), fmt0(v[1]),
                    ratio(speedup(k, ours, v, 0)) + (ownThreads(k) ? " (vs moe-serve's best)" : ""), ratio(speedup(k, ours, v, 1)))));
            sb.append('\n');
            Map<String, double[]> series = new LinkedHashMap<>();
            tps.forEach((k, v) -> series.put(k, v));
            plots.put("peers.svg", Svg.bars("Decode tokens/s, one stream, same model and machine", "tokens/s",
                    List.of("1 thread", "2 threads"), series));
        }
        for (Suite.Run run : r.runs()) for (String l : run.text()) if (l.contains("continuation") || l.endsWith("\"")) sb.append("    ").append(l).append('\n');
        sb.append("\n<details><summary>Every table of the run</summary>\n\n");
        tables(sb, r, null);
        sb.append("</details>\n\n");
    }

    /** Jlama picks its own thread count (its figure sits in the 1-thread slot); it is compared with moe-serve's best. */
    private static boolean ownThreads(String engine) { return engine.startsWith("Jlama"); }

    /** moe-serve's tokens/s over the peer's, at thread slot t (0: 1 thread, 1: 2 threads). */
    private static double speedup(String engine, double[] ours, double[] peer, int t) {
        return (ownThreads(engine) && t == 0 ? Math.max(ours[0], ours[1]) : ours[t]) / peer[t];
    }

    private static Map<String, double[]> peerTokens(Suite.StepResult r) {
        Map<String, double[]> out = new LinkedHashMap<>();
        for (Suite.Run run : r.runs()) {
            for (Table t : run.tables()) {
                String engine = t.section().isEmpty() ? "" : t.section().split(" \\(")[0];
                int th = t.column("threads"), v = t.column("decode tokens/s"), s = t.column("streams");
                if (engine.isEmpty() || v < 0) continue;
                double[] x = out.computeIfAbsent(engine, k -> new double[]{Double.NaN, Double.NaN});
                for (List<String> row : t.rows()) {
                    if (s >= 0 && Table.number(row.get(s)) != 1) continue;
                    int threads = th < 0 ? 1 : (int) Table.number(row.get(th));
                    if (threads >= 1 && threads <= 2) x[threads - 1] = Table.number(row.get(v));
                }
            }
        }
        return out;
    }

    // --- plots and headlines ------------------------------------------------------------------------------------

    private void bandwidthPlot(Suite.StepResult r) {
        for (Suite.Run run : r.runs()) {
            for (Table t : run.tables()) {
                if (t.column("triad") < 0) continue;
                List<String> cats = t.rows().stream().map(x -> x.getFirst() + (x.getFirst().equals("1") ? " thread" : " threads")).toList();
                Map<String, double[]> series = new LinkedHashMap<>();
                for (String c : List.of("triad GB/s", "BF16 matvec GB/s", "F32 matvec GB/s")) {
                    int i = t.column(c);
                    if (i >= 0) series.put(c.replace(" GB/s", ""), t.rows().stream().mapToDouble(x -> Table.number(x.get(i))).toArray());
                }
                plots.put("bandwidth.svg", Svg.bars("Memory bandwidth: triad vs matrix-vector product", "GB/s", cats, series));
            }
        }
    }

    /** Bars of one column over the first column's rows, one series per table that has the column. */
    private void barsOf(Suite.StepResult r, String file, String title, String yLabel, String column, Function<Table, String> seriesName) {
        List<String> cats = new ArrayList<>();
        Map<String, Map<String, Double>> byTable = new LinkedHashMap<>();
        String key = null; // only tables whose rows are keyed like the first one's
        for (Suite.Run run : r.runs()) {
            for (Table t : run.tables()) {
                int c = t.column(column);
                if (c < 0 || key != null && !key.equals(t.columns().getFirst())) continue;
                key = t.columns().getFirst();
                Map<String, Double> v = byTable.computeIfAbsent(seriesName.apply(t), k -> new LinkedHashMap<>());
                for (List<String> row : t.rows()) {
                    if (!cats.contains(row.getFirst())) cats.add(row.getFirst());
                    v.put(row.getFirst(), Table.number(row.get(c)));
                }
            }
        }
        if (cats.isEmpty()) return;
        Map<String, double[]> series = new LinkedHashMap<>();
        byTable.forEach((k, v) -> series.put(k, cats.stream().mapToDouble(c -> v.getOrDefault(c, Double.NaN)).toArray()));
        plots.put(file, Svg.bars(title, yLabel, cats, series));
    }

    /** Which input a placement table came from: the --trace/--stats file of its command, or the bench. */
    private static String source(Table t, Suite.StepResult r) {
        for (Suite.Run run : r.runs()) {
            if (run.tables().contains(t)) {
                Matcher m = Pattern.compile("--(?:trace|stats) \\S*/([^/ ]+?)(?:\\.trace)?\\.json(?:l)?").matcher(run.command());
                String name = m.find() ? m.group(1) : run.command().replace("./moe ", "");
                return t.section().startsWith("held out") ? name + ", held out" : name;
            }
        }
        return "?";
    }

    private static final Pattern REGIME = Pattern.compile("held-out trace, batch 1, one load = ([\\d.]+) layers");

    /** Stall per token relative to LRU's against the load/layer ratio (held-out trace, 25%, batch 1), one line per policy. */
    private void regimesPlot(Suite.StepResult r) {
        Map<String, List<double[]>> stalls = regimeStalls(r);
        List<double[]> lru = stalls.get("lru");
        if (lru == null) return;
        Map<String, List<double[]>> lines = new LinkedHashMap<>();
        stalls.forEach((policy, pts) -> {
            List<double[]> rel = new ArrayList<>();
            for (int i = 0; i < pts.size() && i < lru.size(); i++) {
                if (lru.get(i)[1] > 0) rel.add(new double[]{i, pts.get(i)[1] / lru.get(i)[1]});
            }
            lines.put(policy, rel);
        });
        plots.put("regimes.svg", Svg.lines("Stall per token / LRU's (held-out trace, 25% resident, batch 1)",
                "one load = 0.1, 1, 3, 8, 50 layers of compute (left to right)", "stall / LRU's stall", lines));
    }

    /** policy -> [log10 ratio, stall us] from the held-out, batch-1 tables at 25%. */
    private static Map<String, List<double[]>> regimeStalls(Suite.StepResult r) {
        Map<String, List<double[]>> lines = new LinkedHashMap<>();
        for (Suite.Run run : r.runs()) {
            for (Table t : run.tables()) {
                Matcher m = REGIME.matcher(t.section());
                int stall = t.column("stall per token"), pol = t.column("policy");
                if (!m.find() || stall < 0 || pol < 0) continue;
                double x = Math.log10(Double.parseDouble(m.group(1)));
                for (List<String> row : t.rows()) {
                    if (!row.getFirst().startsWith("25%")) continue;
                    lines.computeIfAbsent(row.get(pol), k -> new ArrayList<>()).add(new double[]{x, Table.number(row.get(stall))});
                }
            }
        }
        return lines;
    }

    private String[] headline(String name) {
        Suite.StepResult r = results.get(name);
        return switch (name) {
            case "bandwidth" -> new String[]{"triad " + fmt1(triad(1)) + " GB/s (1 thread), " + fmt1(triad(2)) + " GB/s (2 threads)",
                    "the machine's memory bandwidth"};
            case "kernels" -> {
                Table t = first(r, "vector ms");
                List<String> row = t.rows().getFirst();
                yield new String[]{row.get(0) + ", " + row.get(1) + " thread: vector " + row.get(t.column("speed-up")) + " faster than scalar",
                        "GB/s vs triad in the section"};
            }
            case "decode" -> {
                Table t = first(r, "decode tokens/s");
                List<String> row = t.rows().getFirst();
                double tps = Table.number(row.get(t.column("decode tokens/s")));
                double rl = triad(1) * 1e9 / footprint.perToken(1);
                yield new String[]{"1 stream, 1 thread: " + fmt0(tps) + " tokens/s", pct(tps / rl) + " of the weight-read roofline (" + fmt0(rl) + ")"};
            }
            case "predictors" -> {
                String best = "", oracle = "";
                for (Suite.Run run : r.runs()) {
                    for (Table t : run.tables()) {
                        Matcher m = PREDICTOR.matcher(t.caption());
                        if (!m.find() || !m.group(2).equals("2") || t.row("all") == null || !best.isEmpty() && !oracle.isEmpty()) continue;
                        if (m.group(1).equals("learned")) best = "learned recall " + t.row("all").get(t.column("d=1")).split(" /")[0] + " at d=1, K=2 (" + t.section().replaceFirst(", K=.*", "") + ")";
                        if (m.group(1).equals("oracle")) oracle = "oracle 1.000";
                    }
                }
                yield new String[]{best, oracle};
            }
            case "offload" -> {
                Table t = first(r, "bytes over link");
                List<String> p = liveRow(t, "25%", "predictive@matched"), l = liveRow(t, "25%", "lru@matched");
                int v = t.column("decode tokens/s");
                yield new String[]{"predictive " + fmt0(Table.number(p.get(v))) + " vs LRU " + fmt0(Table.number(l.get(v)))
                        + " tokens/s at the matched link, 25% resident", "predictive at " + pct(Table.number(p.get(v)) / (Table.number(p.get(t.column("link GB/s"))) * 1e9 / Table.number(p.get(t.column("bytes over link"))))) + " of its link roofline"};
            }
            case "regimes" -> {
                Map<String, List<double[]>> s = regimeStalls(r);
                List<double[]> p = s.getOrDefault("predictive", List.of()), l = s.getOrDefault("lru", List.of()), o = s.getOrDefault("oracle", List.of());
                String at3 = "-";
                for (int i = 0; i < p.size() && i < l.size() && i < o.size(); i++) {
                    if (Math.abs(p.get(i)[0] - Math.log10(3)) < 1e-6) {
                        at3 = "load = 3 layers, 25%: predictive stall " + fmt0(p.get(i)[1]) + " us/token vs LRU " + fmt0(l.get(i)[1]);
                    }
                }
                String vsOracle = "-";
                for (int i = 0; i < p.size() && i < o.size(); i++) {
                    if (Math.abs(p.get(i)[0] - Math.log10(3)) < 1e-6 && o.get(i)[1] > 0) vsOracle = String.format(java.util.Locale.ROOT, "%.2fx the oracle prefetcher's stall", p.get(i)[1] / o.get(i)[1]);
                }
                yield new String[]{at3, vsOracle};
            }
            case "placement" -> {
                Table t = first(r, "transitions crossing devices");
                int c = t.column("transitions crossing devices");
                yield new String[]{"affinity " + t.rows().getLast().get(c) + " vs round-robin " + t.row("round-robin").get(c)
                        + " of transitions cross devices (tiny trace)", "gap to the bound: " + t.rows().getLast().get(t.column("gap"))};
            }
            case "serving" -> {
                Table t = first(r, "aggregate tokens/s");
                List<String> row = t.rows().getLast();
                yield new String[]{row.getFirst() + " clients: " + row.get(t.column("aggregate tokens/s")) + " tokens/s, TTFT p50 "
                        + row.get(t.column("TTFT p50")), row.get(t.column("errors")) + " errors"};
            }
            case "simulator" -> {
                Table t = first(r, "bytes per token");
                int c = t.column("bytes per token");
                double rr = Table.number(t.rows().getFirst().get(c)), best = Double.MAX_VALUE;
                for (List<String> row : t.rows()) best = Math.min(best, Table.number(row.get(c)));
                yield new String[]{"tiny trace: " + fmt0(best) + " vs " + fmt0(rr) + " all-to-all bytes per token (best plan vs round-robin)", "-"};
            }
            case "peers" -> {
                Map<String, double[]> tps = peerTokens(r);
                double[] ours = tps.get("moe-serve");
                StringBuilder s = new StringBuilder("moe-serve, 1 thread: ");
                tps.forEach((k, v) -> {
                    if (!k.equals("moe-serve")) s.append(ratio(speedup(k, ours, v, 0))).append(' ').append(k).append("; ");
                });
                yield new String[]{s.toString().replaceAll("; $", ""), "-"};
            }
            case "quant" -> {
                StringBuilder h = new StringBuilder();
                for (String f : List.of("q8_0", "q4_k_m")) {
                    double ours = Double.NaN, peer = Double.NaN;
                    for (Suite.Run run : r.runs()) {
                        for (Table t : run.tables()) {
                            if (t.caption().contains("-" + f + ".gguf") && t.column("decode tokens/s") >= 0) {
                                for (List<String> row : t.rows()) if (row.getFirst().equals("2")) ours = Table.number(row.get(t.column("decode tokens/s")));
                            }
                            if (t.column("file") == 0 && t.column("decode tokens/s") >= 0) {
                                for (List<String> row : t.rows()) {
                                    if (row.get(0).endsWith("-" + f + ".gguf") && row.get(1).equals("2")) peer = Table.number(row.get(t.column("decode tokens/s")));
                                }
                            }
                        }
                    }
                    h.append(h.isEmpty() ? "2 threads, decode vs llama.cpp: " : ", ").append(f.toUpperCase(Locale.ROOT)).append(' ')
                            .append(String.format(Locale.ROOT, "%.2fx", ours / peer));
                }
                Table acc = first(r, "bits per byte");
                StringBuilder l = new StringBuilder("bits per byte vs BF16:");
                for (List<String> row : acc.rows()) if (!row.get(acc.column("vs BF16")).isBlank()) l.append(' ').append(row.getFirst()).append(' ').append(row.get(acc.column("vs BF16")));
                yield new String[]{h.toString(), l.toString()};
            }
            default -> new String[]{"-", "-"};
        };
    }

    private static Table first(Suite.StepResult r, String column) {
        for (Suite.Run run : r.runs()) for (Table t : run.tables()) if (t.column(column) >= 0) return t;
        throw new IllegalStateException("no table with " + column);
    }

    static String fmt0(double v) { return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%,.0f", v); }

    static String fmt1(double v) { return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.1f", v); }

    static String pct(double v) { return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.0f%%", 100 * v); }

    static String ratio(double v) { return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.2fx", v); }
}
