package org.moeserve.runtime.cli;

import org.moeserve.runtime.plot.Svg;
import org.moeserve.units.Units;
import org.moeserve.placement.PlacementPlan;
import org.moeserve.placement.PlacementProblem;
import org.moeserve.placement.PlanMetrics;
import org.moeserve.placement.Placer;
import org.moeserve.placement.Topology;
import org.moeserve.placement.cpsat.AffinityPlacer;
import org.moeserve.placement.greedy.Baselines;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code moe plan}: place experts on a cluster from routing data; every baseline and the affinity plan compared. */
@Command(name = "plan", mixinStandardHelpOptions = true,
        description = "Plan expert placement (ExFlow affinity + load balance + replicas) from a trace or moe-stats/1; "
                + "compare with contiguous, round-robin, random and EPLB.")
final class PlanCommand implements Callable<Integer> {
    static final class Source {
        @Option(names = "--trace", paramLabel = "FILE", description = "moe-trace/1, or an SGLang per_token recorder dump (.pt, physical ids mapped back, dense layers dropped): every consecutive layer pair is used.")
        Path trace;

        @Option(names = "--stats", paramLabel = "FILE", description = "moe-stats/1 (its transitions_top1 pairs are used), SGLang's {\"logical_count\": ...} JSON, or an SGLang stat/per_pass/per_token dump (.pt; load only).")
        Path stats;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    @Option(names = "--topology", paramLabel = "NODESxDEVICES", required = true, converter = Converters.TopologySpec.class,
            description = "e.g. 2x4: nodes x devices per node.")
    Converters.Shape topology;

    @Option(names = "--replicas", paramLabel = "R", description = "Redundant expert slots per layer (default ${DEFAULT-VALUE}).")
    int replicas = 0;

    @Option(names = "--time-limit", paramLabel = "T", converter = Converters.Duration.class,
            description = "CP-SAT time limit (default 30s).")
    long timeLimitNanos = 30_000_000_000L;

    @Option(names = "--balance", paramLabel = "F",
            description = "Max/mean device load allowed per layer on the input's routing, or EPLB's if looser (default ${DEFAULT-VALUE}: "
                    + "tighter caps fit the input's sampling noise; on the demo model a 1.25 plan holds out at 1.10-1.16 worst max/mean, "
                    + "EPLB's at 1.07-1.24).")
    double balance = 1.25;

    @Option(names = "--intra-node-cost", paramLabel = "C", description = "Cost of a hop inside a node (default ${DEFAULT-VALUE}).")
    double intra = 1;

    @Option(names = "--inter-node-cost", paramLabel = "C", description = "Cost of a hop between nodes (default ${DEFAULT-VALUE}).")
    double inter = 4;

    @Option(names = "--hidden-bytes", paramLabel = "B", description = "Bytes of a token's activation (default ${DEFAULT-VALUE}: 4096 x bf16).")
    int hiddenBytes = 8192;

    @Option(names = "--current", paramLabel = "FILE", description = "Re-place from this moe-plan/1 (with --migration-cost).")
    Path current;

    @Option(names = "--migration-cost", paramLabel = "C",
            description = "Hop-cost units charged per expert copy that moves (default ${DEFAULT-VALUE}); 0 moves freely.")
    double migrationCost = 1000;

    @Option(names = "--objective", paramLabel = "PAIRS",
            description = "Which consecutive-layer pairs of a trace the affinity plan keeps together: dispatch (default: each token's "
                    + "first expert at l with each of its experts at l+1, the hops context-coherent dispatch pays), top1 (first with "
                    + "first, ExFlow's figure) or all (every top-k x top-k pair).")
    String objective = "dispatch";

    @Option(names = "--decompose", description = "Solve layer by layer along the chain (automatic for large problems).")
    boolean decompose;

    @Option(names = "--out", paramLabel = "FILE", description = "Where to write the affinity plan (moe-plan/1).")
    Path out;

    @Option(names = "--svg", paramLabel = "PREFIX",
            description = "Write PREFIX-load.svg (device load per layer) and PREFIX-affinity.svg (the first pair's transitions, "
                    + "experts grouped by device: locality shows as blocks on the diagonal).")
    String heatmap;

    @Option(names = "--export", paramLabel = "FORMAT:FILE",
            description = "Also write the affinity plan for a serving engine (repeatable): sglang (--init-expert-location, "
                    + "with the launch flags printed), sglang-count (load counts for SGLang's own balancer), trtllm "
                    + "(TensorRT-LLM's moe_config.load_balancer). Released vLLM reads no placement file.")
    List<String> exports = new java.util.ArrayList<>();

    @Option(names = "--eval", paramLabel = "FILE",
            description = "Score every plan again on other routing (a trace or statistics of the same model): held-out figures beside in-sample ones.")
    Path eval;

    @Option(names = {"--model-config", "--model"}, paramLabel = "FILE|DIR",
            description = "The model's config.json, or its checkpoint folder holding one: its decoder layers (dense ones included) for "
                    + "the exports. Without it an SGLang dump's own numbering is used, or else every layer of the input is taken "
                    + "for a MoE layer.")
    Path modelConfig;

    @Override
    public Integer call() throws IOException {
        int nodes = topology.nodes(), devicesPerNode = topology.devicesPerNode();
        java.util.Map<String, Path> targets = new java.util.LinkedHashMap<>();
        for (String x : exports) { // every value checked before any output
            int colon = x.indexOf(':');
            String format = colon < 0 ? "" : x.substring(0, colon);
            if (!org.moeserve.placement.export.EngineExports.FORMATS.contains(format) || colon == x.length() - 1) {
                throw new UsageError("--export is " + x + " but must read FORMAT:FILE with FORMAT one of "
                        + String.join(", ", org.moeserve.placement.export.EngineExports.FORMATS));
            }
            targets.put(format, Path.of(x.substring(colon + 1)));
        }
        RoutingInput in = RoutingInput.read(source.trace, source.stats);
        PlacementProblem p = problem(in, nodes, devicesPerNode);
        if (in.tokens() >= 0 && in.tokens() < (long) in.experts() * in.experts()) {
            System.err.printf("moe plan: warning: the trace has %d tokens, fewer than experts^2 = %d: its transition statistics "
                    + "are sparse, and a plan fitted on them will hold poorly on other text%n", in.tokens(), (long) in.experts() * in.experts());
        }
        PlacementProblem top1 = new PlacementProblem(p.source(), p.layers(), p.experts(), p.topK(), p.topology(), p.load(),
                in.top1(), p.hiddenBytes());
        org.moeserve.placement.export.DecoderLayout layout = targets.isEmpty() ? null : layout(p, in);
        java.util.Map<String, PlacementPlan> plans = new java.util.LinkedHashMap<>();
        PlacementPlan plan;
        System.out.printf("placing %d layers x %d experts (top-%d) on %d node(s) x %d devices, %d slots each; %s%n", p.layers(),
                p.experts(), p.topK(), nodes, devicesPerNode, p.topology().slots(), p.source());
        if (in.loadOnly()) { // load counts only: balance with replicas, EPLB's greedy beside a packing with a proven bound
            System.out.println("| solver | mean max/mean load | worst max/mean load | solve time | bound on worst max/mean |");
            System.out.println("|---|---|---|---|---|");
            long t0 = System.nanoTime();
            PlacementPlan eplb = Baselines.eplb(p.experts() % nodes == 0 ? nodes : 1).place(p);
            double te = (System.nanoTime() - t0) / 1e9;
            org.moeserve.placement.greedy.BalancedPacking bp = new org.moeserve.placement.greedy.BalancedPacking();
            t0 = System.nanoTime();
            PlacementPlan packed = bp.place(p);
            double tp = (System.nanoTime() - t0) / 1e9;
            for (var en : java.util.Map.of("eplb", new Object[]{eplb, te}, "balanced packing", new Object[]{packed, tp}).entrySet()
                    .stream().sorted(java.util.Map.Entry.comparingByKey(java.util.Comparator.reverseOrder())).toList()) {
                PlanMetrics mt = PlanMetrics.of((PlacementPlan) en.getValue()[0], p);
                System.out.printf(java.util.Locale.ROOT, "| %s | %.3f | %.3f | %.2f s | %.3f |%n", en.getKey(), mt.meanImbalance(),
                        mt.maxImbalance(), (double) en.getValue()[1], bp.bound());
                plans.put(en.getKey(), (PlacementPlan) en.getValue()[0]);
            }
            plan = PlanMetrics.of(packed, p).maxImbalance() <= PlanMetrics.of(eplb, p).maxImbalance() ? packed : eplb;
        } else {
            System.out.println("| solver | transitions crossing devices | top-1 pairs crossing devices | crossing nodes | all-to-all "
                    + "bytes per token and layer | mean max/mean load | worst max/mean load | solve time | gap to bound |");
            System.out.println("|---|---|---|---|---|---|---|---|---|");
            for (Placer b : List.of(Baselines.contiguous(), Baselines.roundRobin(), Baselines.random(1),
                    Baselines.eplb(p.experts() % nodes == 0 ? nodes : 1))) {
                long t0 = System.nanoTime();
                PlacementPlan bp = b.place(p);
                plans.put(b.name(), bp);
                System.out.println(PlanMetrics.of(bp, p).row(b.name(), PlanMetrics.of(bp, top1).crossDevice(), (System.nanoTime() - t0) / 1e9, "-"));
            }
            AffinityPlacer cp = new AffinityPlacer(new AffinityPlacer.Options(
                    timeLimitNanos / 1e9, balance,
                    Runtime.getRuntime().availableProcessors(), decompose ? 0 : AffinityPlacer.Options.DEFAULT.maxMonolithic()),
                    System.err::println);
            PlacementPlan before = current == null ? null : readPlan(current);
            if (before != null) {
                cp.replacing(before, migrationCost);
                System.out.println(PlanMetrics.of(before, p).row("current plan (" + current.getFileName() + ")", PlanMetrics.of(before, top1).crossDevice(), 0, "-"));
            }
            plan = cp.place(new PlacementProblem(p.source(), p.layers(), p.experts(), p.topK(), p.topology(), p.load(),
                    objectivePairs(in), p.hiddenBytes()));
            AffinityPlacer.Report r = cp.lastReport();
            if (before != null) {
                int moved = AffinityPlacer.moved(before, plan, p.experts());
                System.out.printf(java.util.Locale.ROOT, "re-placement moves %d expert copies (migration cost %.0f per copy)%n", moved, migrationCost);
            }
            String affinity = "affinity (" + r.producer() + ")";
            plans.put(affinity, plan);
            System.out.println(PlanMetrics.of(plan, p).row(affinity, PlanMetrics.of(plan, top1).crossDevice(), r.seconds(),
                    Double.isNaN(r.bound()) ? r.status() : String.format(java.util.Locale.ROOT, "%.1f%% (%s)", 100 * r.gap(), r.status())));
        }
        if (eval != null) heldOut(plans, p, nodes, devicesPerNode);
        if (out != null) {
            plan.write(out);
            System.err.println("moe plan: wrote " + out);
        }
        if (heatmap != null && !in.loadOnly()) writeHeatmaps(plan, p);
        for (var en : targets.entrySet()) exportPlan(en.getKey(), en.getValue(), plan, p, layout, nodes * devicesPerNode);
        return 0;
    }

    /** Every plan scored on the --eval routing: the figures that say whether a plan holds on other text. */
    private void heldOut(java.util.Map<String, PlacementPlan> plans, PlacementProblem p, int nodes, int perNode) throws IOException {
        RoutingInput e = RoutingInput.read(eval);
        if (e.layers() != p.layers() || e.experts() != p.experts()) {
            throw new IllegalArgumentException("--eval " + eval + " has " + e.layers() + " layers x " + e.experts() + " experts but the "
                    + "plans are for " + p.layers() + " x " + p.experts());
        }
        PlacementProblem q = new PlacementProblem(e.description(), p.layers(), p.experts(), p.topK(), p.topology(), e.load(),
                e.transitions(), p.hiddenBytes());
        PlacementProblem q1 = new PlacementProblem(e.description(), p.layers(), p.experts(), p.topK(), p.topology(), e.load(),
                e.top1(), p.hiddenBytes());
        System.out.println();
        System.out.println("### held out: every plan scored on " + e.description());
        if (e.loadOnly()) {
            System.out.println("| solver | mean max/mean load | worst max/mean load |");
            System.out.println("|---|---|---|");
            for (var en : plans.entrySet()) {
                PlanMetrics mt = PlanMetrics.of(en.getValue(), q);
                System.out.printf(java.util.Locale.ROOT, "| %s | %.3f | %.3f |%n", en.getKey(), mt.meanImbalance(), mt.maxImbalance());
            }
        } else {
            System.out.println("| solver | transitions crossing devices | top-1 pairs crossing devices | crossing nodes | all-to-all "
                    + "bytes per token and layer | mean max/mean load | worst max/mean load | solve time | gap to bound |");
            System.out.println("|---|---|---|---|---|---|---|---|---|");
            for (var en : plans.entrySet()) {
                System.out.println(PlanMetrics.of(en.getValue(), q).row(en.getKey(), PlanMetrics.of(en.getValue(), q1).crossDevice(), 0, "-"));
            }
        }
    }

    private void writeHeatmaps(PlacementPlan plan, PlacementProblem p) throws IOException {
        int devices = p.topology().devices();
        double[][] load = new double[p.layers()][devices];
        for (int l = 0; l < p.layers(); l++) {
            int[] reps = plan.replicaCounts(l, p.experts());
            for (int s = 0; s < plan.phy2log()[l].length; s++) {
                int e = plan.phy2log()[l][s];
                load[l][plan.device(s)] += (double) p.load()[l][e] / reps[e];
            }
        }
        java.nio.file.Files.writeString(Path.of(heatmap + "-load.svg"), Svg.heatmap("Device load per layer (affinity plan)",
                "layer", "device", load, null));
        String first = p.transitions().keySet().iterator().next();
        int[] ab = PlacementProblem.pair(first);
        long[][] t = p.transitions().get(first);
        Integer[] rowOrder = order(plan, ab[0], p.experts()), colOrder = order(plan, ab[1], p.experts());
        double[][] m = new double[p.experts()][p.experts()];
        int[] groups = new int[p.experts()];
        for (int r = 0; r < p.experts(); r++) {
            long sum = 0;
            for (long v : t[rowOrder[r]]) sum += v;
            for (int c = 0; c < p.experts(); c++) m[r][c] = sum == 0 ? 0 : (double) t[rowOrder[r]][colOrder[c]] / sum;
            var ds = plan.devicesOf(ab[0], rowOrder[r]);
            groups[r] = ds.isEmpty() ? -1 : ds.getFirst();
        }
        java.nio.file.Files.writeString(Path.of(heatmap + "-affinity.svg"), Svg.heatmap("P(expert at layer " + ab[1]
                + " | expert at layer " + ab[0] + "), experts grouped by device", "layer " + ab[0] + " expert", "layer " + ab[1]
                + " expert", m, groups));
        System.err.println("moe plan: wrote " + heatmap + "-load.svg and " + heatmap + "-affinity.svg");
    }

    /** Experts of layer l in device order (by their first replica's device). */
    private static Integer[] order(PlacementPlan plan, int l, int experts) {
        Integer[] o = new Integer[experts];
        for (int e = 0; e < experts; e++) o[e] = e;
        java.util.Arrays.sort(o, java.util.Comparator.comparingInt(e -> plan.devicesOf(l, e).isEmpty() ? Integer.MAX_VALUE : plan.devicesOf(l, e).getFirst()));
        return o;
    }

    private org.moeserve.placement.export.DecoderLayout layout(PlacementProblem p, RoutingInput in) throws IOException {
        if (modelConfig == null && in.decoderLayout() != null) { // an SGLang dump numbers every decoder layer
            return new org.moeserve.placement.export.DecoderLayout(in.decoderLayers(), in.decoderLayout(), p.experts());
        }
        if (modelConfig == null) {
            System.err.println("moe plan: no --model-config: every one of the " + p.layers() + " layers is taken for a MoE "
                    + "layer in the exports (give the config.json when the model has dense layers)");
            return org.moeserve.placement.export.DecoderLayout.allMoe(p.layers(), p.experts());
        }
        Path cfg = java.nio.file.Files.isDirectory(modelConfig) ? modelConfig.resolve("config.json") : modelConfig;
        if (!java.nio.file.Files.isRegularFile(cfg)) throw new IllegalArgumentException(cfg + ": no such file (give a config.json or a checkpoint folder)");
        var d = org.moeserve.placement.export.DecoderLayout.fromConfig(new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(cfg.toFile()), cfg.toString());
        if (d.moeLayers() != p.layers() || d.experts() != p.experts()) {
            throw new IllegalArgumentException(modelConfig + " describes " + d.moeLayers() + " MoE layers x " + d.experts()
                    + " experts but the input has " + p.layers() + " x " + p.experts() + "; give the config of the traced model");
        }
        return d;
    }

    private static void exportPlan(String format, Path file, PlacementPlan plan, PlacementProblem p,
                                   org.moeserve.placement.export.DecoderLayout d, int devices) throws IOException {
        String text = switch (format) {
            case "sglang" -> org.moeserve.placement.export.EngineExports.sglang(plan, d);
            case "sglang-count" -> org.moeserve.placement.export.EngineExports.sglangCount(p.load(), d);
            default -> org.moeserve.placement.export.EngineExports.trtllm(plan, d);
        };
        if (format.equals("sglang")) {
            List<String> bad = org.moeserve.placement.export.EngineExports.checkSglang(text, d.decoderLayers(), d.experts(),
                    plan.phy2log()[0].length - d.experts(), devices);
            if (!bad.isEmpty()) throw new IllegalArgumentException("SGLang would refuse this plan: " + String.join("; ", bad));
        }
        java.nio.file.Files.writeString(file, text + (text.endsWith("\n") ? "" : "\n"));
        System.err.println("moe plan: wrote " + format + " " + file);
        if (format.equals("sglang")) {
            System.out.println("sglang launch flags: " + String.join(" ",
                    org.moeserve.placement.export.EngineExports.sglangFlags(plan, d, devices, file.toString())));
        }
    }

    private static PlacementPlan readPlan(Path f) throws IOException {
        PlacementPlan p = PlacementPlan.read(f);
        return new PlacementPlan(p.version() + 1, "re-placement", p.slots(), p.phy2log());
    }

    private PlacementProblem problem(RoutingInput in, int nodes, int devicesPerNode) {
        int experts = in.experts();
        int devices = nodes * devicesPerNode;
        if ((experts + replicas) % devices != 0) {
            throw new IllegalArgumentException(experts + " experts + " + replicas + " replicas do not fill " + devices
                    + " devices evenly; choose --replicas so that experts + replicas is a multiple of the devices");
        }
        return new PlacementProblem(in.description(), in.layers(), experts, in.topK(), new Topology(nodes, devicesPerNode,
                (experts + replicas) / devices, intra, inter), in.load(), in.transitions(), hiddenBytes);
    }

    /** The pairs the affinity search minimises (--objective); the tables always show all pairs and top-1 pairs. */
    private Map<String, long[][]> objectivePairs(RoutingInput in) {
        return switch (objective) {
            case "all" -> in.transitions();
            case "top1" -> in.top1();
            case "dispatch" -> in.dispatchPairs();
            default -> throw new UsageError("--objective is " + objective + " but must be dispatch, top1 or all");
        };
    }
}
