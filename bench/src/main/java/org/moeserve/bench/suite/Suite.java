package org.moeserve.bench.suite;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * {@code ./moe bench suite [--quick] [--only a,b] [--skip a,b]}: runs every benchmark of the product, one process per
 * command (so one benchmark's JIT and heap do not colour the next), keeps each step's tables as JSON in
 * bench/results/STEP.json, then regenerates BENCHMARKS.md and the plots from all the JSON there ({@link Report}).
 * A failing step is recorded with its exit code and the end of its log and the others still run; the suite then
 * exits 1. Steps left out keep their last results, each stamped with its own date and mode.
 */
public final class Suite {
    static final String TRACE = "../shared/traces/tiny-mixtral-kjv-heldout.trace.jsonl";
    static final String STATS = "../shared/data/olmoe-paper-stats";
    static final String PLAN = "bench/target/suite/plan-tiny.json";

    /** One benchmark of the suite: shell commands run from the project root, quick and full variants. */
    record Step(String name, String title, String what, List<String> quick, List<String> full) {}

    /** What one command printed, parsed; {@code exit} != 0 means it failed, {@code log} then holds its stderr's end. */
    public record Run(String command, int exit, double seconds, List<Table> tables, List<String> text, String log) {}

    /** One step's results: the JSON file bench/results/NAME.json. */
    public record StepResult(String name, String title, String what, String mode, String date, String machine,
                             double seconds, List<Run> runs) {
        boolean failed() { return runs.stream().anyMatch(r -> r.exit() != 0); }
    }

    static final List<Step> STEPS = List.of(
            new Step("bandwidth", "Memory bandwidth and the matrix-vector product",
                    "A STREAM-style triad (three 128 MB fp32 arrays; 12 bytes per element, write-allocate not counted) "
                            + "interleaved rep by rep with `Kernels.matvec` over a 4096x4096 matrix in BF16 and F32, 1 and "
                            + "2 threads. The triad is the machine's memory bandwidth: every roofline below divides by it.",
                    List.of("./moe bench bandwidth 5"), List.of("./moe bench bandwidth 15")),
            new Step("shape", "Speed at a real shape: prefill and decode against llama.cpp",
                    "A random-weight Mixtral-layout checkpoint of 2.4 GB (`moe synth` of bench/configs/mixtral-layout-2.4gb"
                            + ".config.json: hidden 2048, 8 layers, 8 experts of 2816, top-2, BF16; 722.7 MB read per "
                            + "decoded token, far past the last-level cache): warm prefill and decode tokens/s, 1 and 2 "
                            + "threads (`moe bench shape`), then llama.cpp on the same weights (BF16 GGUF). Needs the "
                            + "npm registry once for llama.cpp; not part of CI.",
                    List.of("QUICK=1 bench/scripts/shape.sh"), List.of("bench/scripts/shape.sh")),
            new Step("quant", "Quantized GGUF: accuracy and speed against llama.cpp",
                    "The demo model quantized by `moe quantize` (q8_0, q4_0, q4_k_m): bits per byte of the held-out trace "
                            + "against BF16, logits against the dequantized fp32 file, greedy continuations of 64 held-out "
                            + "prompts against llama.cpp on the same file; `moe bench quant` (matrix-vector per format "
                            + "against the triad); decode and prefill of the 2.4 GB Mixtral-layout checkpoint in BF16, q8_0 "
                            + "and q4_k_m, moe-serve and llama.cpp on the same GGUF files. Needs the npm registry once for "
                            + "llama.cpp; not part of CI.",
                    List.of("QUICK=1 bench/scripts/quant.sh"), List.of("bench/scripts/quant.sh")),
            new Step("disk", "The disk tier under a memory cap, against the page cache and llama.cpp",
                    "A random-weight Mixtral-layout checkpoint of 3.6 GB (`moe synth` of bench/configs/mixtral-layout-16x-3.6gb"
                            + ".config.json: 12 layers, 16 experts of 17.3 MB, top-2) under cgroup caps that hold about 50% "
                            + "and 25% of the expert bytes (page cache counted): the disk tier with LRU and predictive, under "
                            + "the gates' own routing and under `--routing-replay` of the demo model's held-out trace; "
                            + "moe-serve on mmap alone; llama.cpp on the same weights (50% cap). Needs root and, for "
                            + "llama.cpp, the npm registry once; not part of CI.",
                    List.of("QUICK=1 bench/scripts/disk-tier.sh"), List.of("bench/scripts/disk-tier.sh")),
            new Step("kernels", "Kernel microbenchmark (JMH)",
                    "`Kernels.matvec` (Vector API) against `Kernels.matvecScalar`, 4096x4096, per dtype and thread count; "
                            + "JMH average time per product.",
                    List.of(jmh("-wi 1 -i 3 -w 1 -r 1 -f 1")), List.of(jmh("-wi 3 -i 5 -w 2 -r 2 -f 1"))),
            new Step("decode", "Decode throughput on the demo model",
                    "tiny-mixtral-kjv (BF16, all experts resident), greedy, 128 decode tokens per stream after a 32-byte "
                            + "prompt; S streams decode together in batched steps; medians of interleaved reps.",
                    List.of("./moe bench decode 3"), List.of("./moe bench decode 7")),
            new Step("predictors", "Expert-path predictors",
                    "Traces of text the model was trained on (Debian packages), the learned predictor trained on them, "
                            + "then every predictor asked for the next layers' experts on the held-out trace and on "
                            + "FOLDOC (text the model never saw). Precision = recall at K = top-k. Statistics-only "
                            + "predictors on the OLMoE paper's published routing.",
                    List.of("QUICK=1 bench/scripts/predictors.sh"), List.of("bench/scripts/predictors.sh")),
            new Step("offload", "Expert offload: hit rate, Belady's bound, decode speed",
                    "25% of the experts resident. The cache simulator replays the held-out trace through every policy "
                            + "against Belady's optimal hit rate over a modelled link; a budget sweep; then live decode "
                            + "with the cache in the engine.",
                    List.of("QUICK=1 bench/scripts/offload.sh"), List.of("bench/scripts/offload.sh")),
            new Step("regimes", "Offload regimes: where loading an expert costs more than a layer",
                    "cache-sim on the held-out trace and on FOLDOC (never trained on): every policy at 10/25/50% of the "
                            + "experts resident, one load costing 0.1, 1, 3, 8 and 50 layers of compute, batch 1 and 8; "
                            + "the predictive policy prefetches by the lookahead gate. Belady's hit rate bounds demand "
                            + "loading; the oracle prefetcher's stall bounds prefetching; belady:1 (demand loading knowing the "
                            + "next token's routing) and oracle:0 (a perfect within-token predictor) bound what foresight "
                            + "an online predictor could have buys.",
                    List.of("QUICK=1 bench/scripts/regimes.sh"), List.of("bench/scripts/regimes.sh")),
            new Step("placement", "Expert placement: transitions crossing devices per solver",
                    "Experts of consecutive layers placed on devices so that a token's path crosses devices as little "
                            + "as possible, load balanced; every baseline and the affinity solver (CP-SAT, exact DP "
                            + "where small).",
                    List.of("./moe plan --trace " + TRACE + " --topology 1x4 --time-limit 5s",
                            "./moe plan --stats " + STATS + "/mistral-arxiv.json --topology 1x4"),
                    List.of("bench/scripts/plan-heldout.sh 20",
                            "./moe plan --stats " + STATS + "/mistral-arxiv.json --topology 1x4",
                            "./moe plan --stats " + STATS + "/olmoe-arxiv.json --topology 2x4 --time-limit 20s",
                            "./moe bench placement 50")),
            new Step("serving", "Serving under load",
                    "`moe serve` on loopback, a load generator in another process streaming completions from 1, 8 "
                            + "and 32 concurrent clients; then expert-aware batching off and on with 25% of the "
                            + "experts resident.",
                    List.of("QUICK=1 bench/scripts/serve-load.sh"), List.of("bench/scripts/serve-load.sh")),
            new Step("simulator", "Expert parallelism: the cluster simulator",
                    "All-to-all bytes and step time per plan and dispatch scheme: the tiny model's trace on 4 devices, "
                            + "then DeepSeek-V3 size (256 experts x 58 layers, 64 devices); the full mode also checks the "
                            + "simulator's step time against real in-process expert parallelism.",
                    List.of(planThen("./moe simulate --trace " + TRACE + " --plan round-robin --plan " + PLAN
                                    + " --topology 1x4 --hidden-bytes 512 --svg \"$MOE_RESULTS/simulator-tiny.svg\""),
                            "./moe bench simulate 20000 10"),
                    List.of(planThen("./moe simulate --trace " + TRACE + " --plan round-robin --plan " + PLAN
                                    + " --topology 1x4 --hidden-bytes 512 --svg \"$MOE_RESULTS/simulator-tiny.svg\""),
                            "./moe bench simulate", "./moe bench ep-calibrate")),
            new Step("peers", "Peers: llama.cpp and Jlama on the same model and machine",
                    "Decode tokens/s, one stream: moe-serve's decode benchmark, llama.cpp (node-llama-cpp's prebuilt "
                            + "binaries) on the demo model exported by `moe export-gguf`, and Jlama on the safetensors "
                            + "checkpoint. Needs the npm registry and Maven Central once; not part of CI.",
                    List.of("bench/scripts/peers.sh 3"), List.of("bench/scripts/peers.sh 7")));

    /** JMH's own report goes to a file; its JSON becomes the step's table. */
    private static String jmh(String options) {
        return "./moe bench jmh MatVecBenchmark " + options + " -o bench/target/suite/jmh.txt -rf json -rff bench/target/suite/jmh.json"
                + " && ./moe bench jmh-table bench/target/suite/jmh.json";
    }

    private static String planThen(String command) {
        return "./moe plan --trace " + TRACE + " --topology 1x4 --time-limit 5s --out " + PLAN + " >/dev/null && " + command;
    }

    /** The step names, in order. */
    public static List<String> stepNames() { return STEPS.stream().map(Step::name).toList(); }

    /**
     * Runs the steps (all, or {@code only}, less {@code skip}) then writes BENCHMARKS.md; with {@code reportOnly}
     * just the report. Returns the exit code: 1 if a step failed.
     */
    public static int main(boolean quick, boolean reportOnly, Set<String> only, Set<String> skip) throws Exception {
        for (String n : only) if (!stepNames().contains(n)) throw new IllegalArgumentException("no step named " + n + "; steps: " + stepNames());
        for (String n : skip) if (!stepNames().contains(n)) throw new IllegalArgumentException("no step named " + n + "; steps: " + stepNames());
        Path root = Path.of(System.getProperty("moe.home", ".")).toAbsolutePath().normalize();
        Path results = root.resolve("bench/results");
        if (reportOnly) {
            Report.write(root);
            System.out.println("suite: regenerated BENCHMARKS.md from bench/results/*.json");
            return 0;
        }
        boolean ok = run(root, results, quick, only, skip);
        Report.write(root);
        System.out.println("suite: wrote " + root.relativize(root.resolve("BENCHMARKS.md")) + " and bench/results/");
        if (!ok) {
            System.err.println("suite: some steps failed; their logs are in bench/target/suite/ and their sections say so");
            return 1;
        }
        return 0;
    }

    static boolean run(Path root, Path results, boolean quick, Set<String> only, Set<String> skip) throws IOException, InterruptedException {
        Files.createDirectories(results);
        Path logs = root.resolve("bench/target/suite");
        Files.createDirectories(logs);
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        boolean ok = true;
        long t0 = System.nanoTime();
        for (Step step : STEPS) {
            if ((!only.isEmpty() && !only.contains(step.name())) || skip.contains(step.name())) continue;
            System.out.printf(Locale.ROOT, "== %s (%s mode) ==%n", step.name(), quick ? "quick" : "full");
            long s0 = System.nanoTime();
            List<Run> runs = new ArrayList<>();
            Path log = logs.resolve(step.name() + ".log");
            Files.deleteIfExists(log);
            for (String cmd : quick ? step.quick() : step.full()) {
                Run r = command(root, results, cmd, log, quick);
                runs.add(r);
                if (r.exit() != 0) {
                    System.out.println("  FAILED (exit " + r.exit() + "): " + r.log().lines().reduce((a, b) -> b).orElse(""));
                    break;
                }
            }
            StepResult res = new StepResult(step.name(), step.title(), step.what(), quick ? "quick" : "full",
                    DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm 'UTC'").format(Instant.now().atOffset(ZoneOffset.UTC)),
                    Machine.describe(), (System.nanoTime() - s0) / 1e9, runs);
            json.writeValue(results.resolve(step.name() + ".json").toFile(), res);
            ok &= !res.failed();
            System.out.printf(Locale.ROOT, "   %s: %.0f s%n", step.name(), res.seconds());
        }
        System.out.printf(Locale.ROOT, "suite: %.1f minutes%n", (System.nanoTime() - t0) / 60e9);
        return ok;
    }

    private static Run command(Path root, Path results, String cmd, Path log, boolean quick) throws IOException, InterruptedException {
        System.out.println("  $ " + cmd);
        ProcessBuilder pb = new ProcessBuilder("bash", "-c", cmd).directory(root.toFile())
                .redirectError(ProcessBuilder.Redirect.appendTo(log.toFile()));
        pb.environment().put("MOE_RESULTS", results.toString());
        if (quick) pb.environment().put("QUICK", "1");
        else pb.environment().remove("QUICK");
        long t0 = System.nanoTime();
        Process p = pb.start();
        StringBuilder out = new StringBuilder();
        try (var r = p.inputReader(StandardCharsets.UTF_8)) {
            String line;
            while ((line = r.readLine()) != null) {
                out.append(line).append('\n');
                System.out.println("    " + line);
            }
        }
        int exit = p.waitFor();
        double secs = (System.nanoTime() - t0) / 1e9;
        Table.Parsed parsed = Table.parse(out.toString().replace(root + "/", "")); // paths relative to the project
        String tail = "";
        if (exit != 0 && Files.exists(log)) {
            List<String> ls = Files.readAllLines(log);
            tail = String.join("\n", ls.subList(Math.max(0, ls.size() - 5), ls.size()));
        }
        return new Run(cmd, exit, secs, parsed.tables(), parsed.text(), tail);
    }
}
