package org.moeserve.runtime.cli;

import org.moeserve.runtime.plot.Svg;
import org.moeserve.units.Units;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.moeserve.units.LinkModel;
import org.moeserve.comms.Dispatch;
import org.moeserve.comms.Scheme;
import org.moeserve.comms.sim.ClusterSimulator;
import org.moeserve.comms.sim.SyntheticRouting;
import org.moeserve.placement.PlacementPlan;
import org.moeserve.placement.PlacementProblem;
import org.moeserve.placement.Topology;
import org.moeserve.placement.greedy.Baselines;
import org.moeserve.routing.TraceRecord;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
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

@Command(name = "simulate", mixinStandardHelpOptions = true,
        description = "Replay routing (a trace, or tokens drawn from statistics) on a modelled cluster for each plan and each "
                + "dispatch scheme: all-to-all bytes and time per layer, step time, device utilisation.")
final class SimulateCommand implements Callable<Integer> {
    @ArgGroup(exclusive = true, multiplicity = "1")
    PlanCommand.Source source;

    @Option(names = "--plan", paramLabel = "FILE|NAME", required = true,
            description = "A moe-plan/1 file, or a baseline made on the spot: contiguous, round-robin, random, eplb. Repeatable.")
    List<String> plans;

    @Option(names = "--topology", paramLabel = "NODESxDEVICES", required = true, converter = Converters.TopologySpec.class,
            description = "e.g. 2x4: nodes x devices per node.")
    Converters.Shape topology;

    @Option(names = "--scheme", paramLabel = "S", description = "two, exflow or both (default ${DEFAULT-VALUE}).")
    String scheme = "both";

    @Option(names = "--intra-link", paramLabel = "BW[,LAT]", converter = Converters.Link.class,
            description = "Link inside a node (default 450GB/s,3us: NVLink-class).")
    LinkModel intraLink = new LinkModel(450e9, 3_000);

    @Option(names = "--inter-link", paramLabel = "BW[,LAT]", converter = Converters.Link.class,
            description = "Link between nodes, per device (default 50GB/s,10us: 400 Gb/s).")
    LinkModel interLink = new LinkModel(50e9, 10_000);

    @Option(names = "--expert-time", paramLabel = "T", converter = Converters.Duration.class,
            description = "Compute per token through one expert (default 1us).")
    long expertNanos = 1_000;

    @Option(names = "--layer-time", paramLabel = "T", converter = Converters.Duration.class,
            description = "Attention and the rest of a layer, per token (default 2us).")
    long layerNanos = 2_000;

    @Option(names = "--layer-fixed-time", paramLabel = "T", converter = Converters.Duration.class,
            description = "An engine's fixed cost per MoE layer on each device with expert work (grouping rows, handing out and "
                    + "joining the device's task; default 0). `moe bench ep-calibrate` fits it with --expert-time for the in-process "
                    + "engine: about 10us and 17us on a 2-vCPU EPYC, held-out steps within 0-11%% of measured.")
    long layerFixedNanos = 0;

    @Option(names = "--hidden-bytes", paramLabel = "B", description = "Bytes of a token's activation (default ${DEFAULT-VALUE}: 4096 x bf16).")
    int hiddenBytes = 8192;

    @Option(names = "--expert-budget", paramLabel = "B", converter = Converters.Budget.class,
            description = "Experts each device keeps in fast memory (LRU): a number (24), a share of the experts its plan gives "
                    + "it (25%%) or memory (6GB); the others load over --host-link. Default: all resident.")
    Converters.ExpertBudget expertBudget;

    @Option(names = "--host-link", paramLabel = "BW[,LAT]", converter = Converters.Link.class,
            description = "Where cache misses load from (default 50GB/s,10us: PCIe 5).")
    LinkModel hostLink = new LinkModel(50e9, 10_000);

    @Option(names = "--expert-bytes", paramLabel = "B", converter = Converters.Bytes.class,
            description = "Bytes of one expert, for cache misses (default 88080384: DeepSeek-V3, 3 x 7168 x 2048 x bf16).")
    long expertBytes = 3L * 7168 * 2048 * 2;

    @Option(names = "--batch", paramLabel = "N", description = "Tokens per step (default ${DEFAULT-VALUE}).")
    int batch = 256;

    @Option(names = "--tokens", paramLabel = "N", description = "With --stats: tokens to draw (default ${DEFAULT-VALUE}).")
    long tokens = 100_000;

    @Option(names = "--json", paramLabel = "FILE", description = "Write every figure, per layer too, as JSON.")
    Path json;

    @Option(names = "--svg", paramLabel = "FILE", description = "Write per-layer all-to-all bytes of each plan and scheme as a chart.")
    Path svg;

    @Override
    public Integer call() throws IOException {
        RoutingInput in = RoutingInput.read(source.trace, source.stats);
        if (in.loadOnly()) {
            throw new IllegalArgumentException(source.stats + " has no transitions_top1: the simulator draws tokens' paths from "
                    + "transitions; give statistics with them, or a trace");
        }
        int nodes = topology.nodes(), perNode = topology.devicesPerNode();
        java.io.PrintStream tout = Output.table(json);
        List<Scheme> schemes = scheme.equalsIgnoreCase("both") ? List.of(Scheme.values()) : List.of(Scheme.parse(scheme));
        Map<String, PlacementPlan> planned = new LinkedHashMap<>();
        for (String p : plans) planned.put(Files.exists(Path.of(p)) ? Path.of(p).getFileName().toString() : p, plan(p, in, nodes, perNode));
        ObjectNode out = new ObjectMapper().createObjectNode().put("format", "moe-simulation/1").put("source", in.description())
                .put("topology", nodes + "x" + perNode).put("tokens", in.records() == null ? tokens : in.records().stream().mapToLong(TraceRecord::length).sum());
        ArrayNode runs = out.putArray("runs");
        tout.printf("simulating %s on %d node(s) x %d devices (%s inside a node, %s between), %d MoE layers x %d experts, top-%d%n",
                in.description(), nodes, perNode, Units.formatLink(intraLink), Units.formatLink(interLink), in.layers(), in.experts(), in.topK());
        tout.println("| plan | scheme | bytes per token | inter-node bytes per token | exposed all-to-all time per step | step time | tokens/s "
                + "| mean device utilisation | expert cache hit rate | simulated in |");
        tout.println("|---|---|---|---|---|---|---|---|---|---|");
        Map<String, List<double[]>> chart = new LinkedHashMap<>();
        for (Map.Entry<String, PlacementPlan> en : planned.entrySet()) {
            PlacementPlan plan = en.getValue();
            Topology topo = Topology.of(nodes, perNode, plan.slots());
            if (plan.layers() != in.layers()) {
                throw new IllegalArgumentException(en.getKey() + " has " + plan.layers() + " layers but the routing has " + in.layers());
            }
            Dispatch dispatch = new Dispatch(plan, topo, in.experts());
            int cacheExperts = expertBudget == null ? 0
                    : (int) Math.min(Integer.MAX_VALUE, expertBudget.bytes((long) plan.layers() * plan.slots(), expertBytes) / expertBytes);
            ClusterSimulator sim = new ClusterSimulator(new ClusterSimulator.Config(topo, intraLink, interLink,
                    expertNanos, layerNanos, hiddenBytes, cacheExperts, hostLink, expertBytes).withFixedCosts(layerFixedNanos, 0));
            for (Scheme s : schemes) {
                Iterable<ClusterSimulator.Step> steps = steps(in);
                long total = in.records() == null ? tokens : in.records().stream().mapToLong(TraceRecord::length).sum();
                long t0 = System.nanoTime();
                long[] shown = {0};
                ClusterSimulator.Result r = sim.run(dispatch, s, steps, in.layers(), done -> {
                    if (done * 10 / Math.max(1, total) > shown[0]) {
                        shown[0] = done * 10 / Math.max(1, total);
                        System.err.printf("  %s / %s: %d of %d tokens%n", en.getKey(), s.label(), done, total);
                    }
                });
                double secs = (System.nanoTime() - t0) / 1e9;
                double perStepA2a = r.allToAllNanos() / 1e3 / Math.max(1, r.steps()), perStep = r.totalNanos() / 1e3 / Math.max(1, r.steps());
                tout.printf(Locale.ROOT, "| %s | %s | %.0f | %.0f | %.1f us | %.1f us | %.0f | %.1f%% | %s | %.1f s |%n", en.getKey(),
                        s.label(), (double) r.traffic().totalBytes() / r.tokens(), (double) r.traffic().interNodeBytes() / r.tokens(), perStepA2a,
                        perStep, r.tokens() / (r.totalNanos() / 1e9), 100 * r.meanUtilisation(),
                        expertBudget == null ? "all resident" : String.format(Locale.ROOT, "%.1f%%", 100 * r.hitRate()), secs);
                ObjectNode run = runs.addObject().put("plan", en.getKey()).put("scheme", s.name()).put("tokens", r.tokens()).put("steps", r.steps())
                        .put("simulated_nanos", r.totalNanos()).put("all_to_all_nanos", r.allToAllNanos()).put("wall_seconds", secs)
                        .put("cache_hits", r.cacheHits()).put("cache_misses", r.cacheMisses());
                r.traffic().summary().forEach((k, v) -> run.put(k, (Long) v));
                ArrayNode lb = run.putArray("layer_bytes"), lt = run.putArray("layer_all_to_all_nanos"), ut = run.putArray("utilisation");
                List<double[]> series = new ArrayList<>();
                for (int l = 0; l < in.layers(); l++) {
                    lb.add(r.traffic().layerBytes(l));
                    lt.add(r.layerAllToAllNanos()[l]);
                    series.add(new double[]{l, (double) r.traffic().layerBytes(l) / r.tokens()});
                }
                for (double u : r.utilisation()) ut.add(u);
                chart.put(en.getKey() + " / " + s.label(), series);
            }
        }
        if (json != null) Output.json(json, out, "moe simulate");
        if (svg != null) {
            double max = 0;
            for (List<double[]> s : chart.values()) for (double[] p : s) max = Math.max(max, p[1]);
            for (List<double[]> s : chart.values()) for (double[] p : s) p[1] /= max == 0 ? 1 : max;
            Files.writeString(svg, Svg.lines(String.format(Locale.ROOT, "All-to-all bytes per token by MoE layer (1.0 = %.0f bytes)", max),
                    "MoE layer", "bytes per token, share of the largest", chart));
            System.err.println("moe simulate: wrote " + svg);
        }
        return 0;
    }

    private Iterable<ClusterSimulator.Step> steps(RoutingInput in) {
        if (in.records() == null) return new SyntheticRouting(in.load(), in.transitions(), in.topK(), tokens, batch, 64, 1);
        List<ClusterSimulator.Step> steps = new ArrayList<>();
        List<long[]> seq = new ArrayList<>();
        List<int[][]> ex = new ArrayList<>();
        int longest = in.records().stream().mapToInt(TraceRecord::length).max().orElse(0);
        for (int t = 0; t < longest; t++) { // position by position across the sequences, as a batch of decodes runs
            for (int i = 0; i < in.records().size(); i++) {
                TraceRecord rec = in.records().get(i);
                if (t >= rec.length()) continue;
                seq.add(new long[]{i});
                ex.add(rec.experts()[t]);
                if (ex.size() == batch) flush(steps, seq, ex);
            }
        }
        if (!ex.isEmpty()) flush(steps, seq, ex);
        return steps;
    }

    private static void flush(List<ClusterSimulator.Step> steps, List<long[]> seq, List<int[][]> ex) {
        long[] s = new long[seq.size()];
        for (int i = 0; i < s.length; i++) s[i] = seq.get(i)[0];
        steps.add(new ClusterSimulator.Step(s, ex.toArray(int[][][]::new)));
        seq.clear();
        ex.clear();
    }

    private PlacementPlan plan(String name, RoutingInput in, int nodes, int perNode) throws IOException {
        int devices = nodes * perNode;
        var baseline = switch (name) {
            case "contiguous" -> Baselines.contiguous();
            case "round-robin" -> Baselines.roundRobin();
            case "random" -> Baselines.random(1);
            case "eplb" -> Baselines.eplb(in.experts() % nodes == 0 ? nodes : 1);
            default -> null;
        };
        if (baseline == null) {
            Path f = Path.of(name);
            if (!Files.exists(f)) {
                throw new IllegalArgumentException("--plan " + name + ": no such file, and not a baseline (contiguous, round-robin, random, eplb)");
            }
            return PlacementPlan.read(f);
        }
        int slots = (in.experts() + devices - 1) / devices;
        return baseline.place(new PlacementProblem(in.description(), in.layers(), in.experts(), in.topK(),
                Topology.of(nodes, perNode, slots), in.load(), in.transitions(), hiddenBytes));
    }
}
