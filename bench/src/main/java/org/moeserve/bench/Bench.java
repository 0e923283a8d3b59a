package org.moeserve.bench;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * Entry point of {@code ./moe bench NAME [args]} (picocli, like the moe commands: --help everywhere, a bad value is
 * a usage error with exit 2). Each benchmark prints a Markdown table ready for BENCHMARKS.md, with the machine and
 * the medians; numbers measured side by side come from one process. Arguments stay positional, as the suite and
 * the scripts call them.
 */
@Command(name = "moe bench", mixinStandardHelpOptions = true,
        description = "moe-serve's benchmarks; 'suite' runs them all and regenerates BENCHMARKS.md.",
        subcommands = {Bench.Suite.class, Bench.Report.class, Bench.Bandwidth.class, Bench.Quant.class, Bench.Shape.class, Bench.Decode.class, Bench.Offload.class,
                Bench.Load.class, Bench.Placement.class, Bench.Simulate.class, Bench.Replay.class, Bench.EpCalibrate.class, Bench.Disk.class, Bench.JmhRun.class,
                Bench.JmhTable.class, Bench.ListSteps.class})
public final class Bench implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() { spec.commandLine().usage(System.out); }

    public static void main(String[] args) { System.exit(commandLine().execute(args)); }

    /** The command line, with refused values reported as usage errors (exit 2). */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Bench());
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            if (ex instanceof IllegalArgumentException) { // a value the benchmark refused: a usage error
                cmd.getErr().println(cmd.getCommandSpec().qualifiedName() + ": " + ex.getMessage());
                cmd.usage(cmd.getErr());
                return 2;
            }
            throw ex;
        });
        return cl;
    }

    /** A harness's main with its (validated) positional arguments, as it always took them. */
    interface Harness {
        void main(String[] args) throws Exception;
    }

    static Integer harness(Harness h, Object... args) throws Exception {
        List<String> a = new ArrayList<>();
        for (Object o : args) if (o != null) a.add(String.valueOf(o));
        h.main(a.toArray(String[]::new));
        return 0;
    }

    static int positive(int v, String what) {
        if (v < 1) throw new IllegalArgumentException(what + " is " + v + " but must be >= 1");
        return v;
    }

    static Double positive(Double v, String what) {
        if (v != null && !(v > 0)) throw new IllegalArgumentException(what + " is " + v + " but must be > 0");
        return v;
    }

    /** The repetitions most benchmarks take as their first argument. */
    static final class Reps {
        @Parameters(index = "0", arity = "0..1", paramLabel = "REPS", description = "Repetitions (default: the benchmark's own).")
        Integer reps;

        Integer value() { return reps == null ? null : positive(reps, "REPS"); }
    }

    @Command(name = "suite", mixinStandardHelpOptions = true,
            description = "Every benchmark, each as its own process, then BENCHMARKS.md and its plots from bench/results/*.json.")
    static final class Suite implements Callable<Integer> {
        @Option(names = "--quick", description = "Fewer reps and smaller sizes (everyday checks; quote the full run).")
        boolean quick;

        @Option(names = "--full", description = "The full run (default).")
        boolean full;

        @Option(names = "--only", paramLabel = "STEP", split = ",", description = "Run only these steps; the others keep their last results.")
        List<String> only = new ArrayList<>();

        @Option(names = "--skip", paramLabel = "STEP", split = ",", description = "Run all but these steps.")
        List<String> skip = new ArrayList<>();

        @Override
        public Integer call() throws Exception {
            if (quick && full) throw new IllegalArgumentException("--quick and --full exclude each other");
            return org.moeserve.bench.suite.Suite.main(quick, false, new LinkedHashSet<>(only), new LinkedHashSet<>(skip));
        }
    }

    @Command(name = "report", mixinStandardHelpOptions = true, description = "BENCHMARKS.md and its plots again from bench/results; nothing rerun.")
    static final class Report implements Callable<Integer> {
        @Override
        public Integer call() throws Exception { return org.moeserve.bench.suite.Suite.main(false, true, new LinkedHashSet<>(), new LinkedHashSet<>()); }
    }

    @Command(name = "list", mixinStandardHelpOptions = true, description = "The suite's steps.")
    static final class ListSteps implements Callable<Integer> {
        @Override
        public Integer call() {
            System.out.println("suite steps: " + String.join(", ", org.moeserve.bench.suite.Suite.stepNames()));
            System.out.println("benchmarks: ./moe bench --help");
            return 0;
        }
    }

    @Command(name = "shape", mixinStandardHelpOptions = true,
            description = "Warm prefill and decode tokens/s on a checkpoint of a real shape (moe synth): 1 and 2 threads, "
                    + "the bytes a decoded token reads, the GB/s it makes, and a bare read of the same bytes on the same "
                    + "threads between blocks of the decode (the roofline), with the share of the weights mapped huge.")
    static final class Shape implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "MODEL", description = "Model directory.")
        Path model;

        @Option(names = "--reps", paramLabel = "N", description = "Recorded repetitions after one warm-up (default ${DEFAULT-VALUE}).")
        int reps = 3;

        @Option(names = "--prompts", paramLabel = "P[,P...]", description = "Prompt lengths in tokens (default ${DEFAULT-VALUE}).")
        String prompts = "128,512";

        @Option(names = "--decode", paramLabel = "D", description = "Tokens decoded after each prompt (default ${DEFAULT-VALUE}).")
        int decode = 64;

        @Override
        public Integer call() throws Exception {
            return harness(ShapeThroughput::main, model, positive(reps, "--reps"), prompts, positive(decode, "--decode"));
        }
    }

    @Command(name = "bandwidth", mixinStandardHelpOptions = true,
            description = "Matrix-vector 4096x4096 BF16/F32 against a STREAM triad, 1 and 2 threads.")
    static final class Bandwidth implements Callable<Integer> {
        @CommandLine.Mixin
        Reps reps = new Reps();

        @Override
        public Integer call() throws Exception { return harness(KernelBandwidth::main, reps.value()); }
    }

    @Command(name = "quant", mixinStandardHelpOptions = true,
            description = "Matrix-vector 32768x4096 in BF16, Q8_0, Q6_K, Q4_K, Q4_0 (and Q8_0 with int8 activations) against a STREAM triad, 1 and 2 threads.")
    static final class Quant implements Callable<Integer> {
        @CommandLine.Mixin
        Reps reps = new Reps();

        @Override
        public Integer call() throws Exception { return harness(QuantThroughput::main, reps.value()); }
    }

    @Command(name = "decode", mixinStandardHelpOptions = true, description = "Decode tokens/s on the demo model: 1 and 8 streams, 1 and 2 threads.")
    static final class Decode implements Callable<Integer> {
        @CommandLine.Mixin
        Reps reps = new Reps();

        @Override
        public Integer call() throws Exception { return harness(DecodeThroughput::main, reps.value()); }
    }

    @Command(name = "offload", mixinStandardHelpOptions = true,
            description = "Live decode tokens/s with part of the experts resident: every policy and link against all-resident.")
    static final class Offload implements Callable<Integer> {
        @Parameters(index = "0", arity = "0..1", paramLabel = "REPS", description = "Repetitions (default 5).")
        Integer reps;

        @Parameters(index = "1", arity = "0..1", paramLabel = "BUDGETS", description = "Shares of all experts, e.g. 10%%,25%%,50%% (default 25%%).")
        String budgets;

        @Override
        public Integer call() throws Exception {
            if (budgets != null) {
                for (String b : budgets.split(",")) {
                    if (!b.strip().matches("[0-9.]+%")) throw new IllegalArgumentException("BUDGETS names " + b + "; give shares like 25%");
                }
            }
            return harness(OffloadThroughput::main, reps == null ? (budgets == null ? null : 5) : positive(reps, "REPS"), budgets);
        }
    }

    @Command(name = "disk", mixinStandardHelpOptions = true,
            description = "Direct-read bandwidth and latency of a file's disk by read size and queue depth (the disk tier's link).")
    static final class Disk implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "FILE", description = "A large file on the disk to measure, e.g. a checkpoint's shard.")
        java.nio.file.Path file;

        @CommandLine.Option(names = "--sizes", paramLabel = "B[,B...]", split = ",", description = "Read sizes (default 4KiB,64KiB,1MiB,4MiB,16MiB).")
        List<String> sizes = List.of("4KiB", "64KiB", "1MiB", "4MiB", "16MiB");

        @CommandLine.Option(names = "--depths", paramLabel = "D[,D...]", split = ",", description = "Reads in flight (default 1,4,16).")
        List<Integer> depths = List.of(1, 4, 16);

        @CommandLine.Option(names = "--seconds", paramLabel = "S", description = "Time per cell (default ${DEFAULT-VALUE}).")
        double seconds = 1.0;

        @Override
        public Integer call() throws Exception {
            if (!java.nio.file.Files.isRegularFile(file)) throw new IllegalArgumentException("FILE " + file + " is not a file");
            long[] b = new long[sizes.size()];
            for (int i = 0; i < b.length; i++) {
                b[i] = org.moeserve.units.Units.parseBytes(sizes.get(i));
                if (b[i] < 1) throw new IllegalArgumentException("--sizes names " + sizes.get(i) + "; sizes must be >= 1 byte");
            }
            for (int d : depths) positive(d, "--depths");
            positive(seconds, "--seconds");
            DiskBandwidth.run(file, b, depths.stream().mapToInt(Integer::intValue).toArray(), seconds);
            return 0;
        }
    }

    @Command(name = "load", mixinStandardHelpOptions = true, description = "Streaming load on a running moe serve (loopback).")
    static final class Load implements Callable<Integer> {
        @Parameters(index = "0", arity = "0..1", paramLabel = "URL", description = "The server (default http://127.0.0.1:8000).")
        String url;

        @Parameters(index = "1", arity = "0..1", paramLabel = "CLIENTS", description = "Concurrent clients per run, e.g. 1,8,32 (default).")
        String clients;

        @Parameters(index = "2", arity = "0..1", paramLabel = "REQUESTS", description = "Requests per client (default 3).")
        Integer requests;

        @Parameters(index = "3", arity = "0..1", paramLabel = "MAX_TOKENS", description = "max_tokens per request (default 64).")
        Integer maxTokens;

        @Parameters(index = "4", arity = "0..1", paramLabel = "WARMUP", description = "Warm-up requests (default 8).")
        Integer warmup;

        @Override
        public Integer call() throws Exception {
            if (clients != null) for (String c : clients.split(",")) {
                if (!c.strip().matches("[1-9][0-9]{0,4}")) throw new IllegalArgumentException("CLIENTS names " + c + "; give counts like 1,8,32");
            }
            if (requests != null) positive(requests, "REQUESTS");
            if (maxTokens != null) positive(maxTokens, "MAX_TOKENS");
            if (warmup != null && warmup < 0) throw new IllegalArgumentException("WARMUP is " + warmup + " but must be >= 0");
            return harness(LoadGenerator::main, url, clients, requests, maxTokens, warmup);
        }
    }

    @Command(name = "placement", mixinStandardHelpOptions = true,
            description = "Expert placement at DeepSeek-V3 size (256 experts x 58 layers, 64 devices).")
    static final class Placement implements Callable<Integer> {
        @Parameters(index = "0", arity = "0..1", paramLabel = "SECONDS", description = "Solver time limit (default 55).")
        Double seconds;

        @Override
        public Integer call() throws Exception {
            return harness(PlacementScale::main, positive(seconds, "SECONDS"));
        }
    }

    @Command(name = "simulate", mixinStandardHelpOptions = true,
            description = "The cluster simulator at DeepSeek-V3 size: 3 plans x 2 schemes on 64 devices.")
    static final class Simulate implements Callable<Integer> {
        @Parameters(index = "0", arity = "0..1", paramLabel = "TOKENS", description = "Tokens (default 100000).")
        Long tokens;

        @Parameters(index = "1", arity = "0..1", paramLabel = "SECONDS", description = "Placement time limit (default 30).")
        Double seconds;

        @Override
        public Integer call() throws Exception {
            if (tokens != null && tokens < 1) throw new IllegalArgumentException("TOKENS is " + tokens + " but must be >= 1");
            return harness(SimulateScale::main, tokens, positive(seconds, "SECONDS"));
        }
    }

    @Command(name = "replay", mixinStandardHelpOptions = true,
            description = "cache-sim's replay at production shape (26 layers x 64 experts x top-6): accesses/s per policy.")
    static final class Replay implements Callable<Integer> {
        @Parameters(index = "0", arity = "0..1", paramLabel = "TOKENS", description = "Tokens (default 100000).")
        Integer tokens;

        @Parameters(index = "1", arity = "0..1", paramLabel = "POLICIES", description = "Comma-separated (default: all).")
        String policies;

        @Override
        public Integer call() throws Exception {
            if (policies != null) {
                for (String p : policies.split(",")) {
                    if (!org.moeserve.cache.policy.Policies.known(p)) throw new IllegalArgumentException("POLICIES names " + p);
                }
            }
            return harness(ReplayScale::main, tokens == null ? 100_000 : positive(tokens, "TOKENS"), policies);
        }
    }

    @Command(name = "ep-calibrate", mixinStandardHelpOptions = true,
            description = "The simulator's step time against real in-process expert parallelism (2 devices).")
    static final class EpCalibrate implements Callable<Integer> {
        @CommandLine.Mixin
        Reps reps = new Reps();

        @Override
        public Integer call() throws Exception { return harness(EpCalibration::main, reps.value()); }
    }

    @Command(name = "jmh", description = "The JMH microbenchmarks (org.moeserve.bench.jmh.*); every argument goes to JMH (jmh -h lists them).")
    static final class JmhRun implements Callable<Integer> {
        @CommandLine.Unmatched
        List<String> args = new ArrayList<>();

        @Override
        public Integer call() throws Exception {
            org.openjdk.jmh.Main.main(args.toArray(String[]::new));
            return 0;
        }
    }

    @Command(name = "jmh-table", mixinStandardHelpOptions = true, description = "JMH's JSON result as the suite's Markdown table.")
    static final class JmhTable implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "FILE", description = "JMH's -rf json output.")
        String file;

        @Override
        public Integer call() throws Exception { return harness(org.moeserve.bench.suite.Jmh::main, file); }
    }

    static String machine() {
        return org.moeserve.bench.suite.Machine.describe();
    }

    static double median(double[] xs) {
        double[] s = xs.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
