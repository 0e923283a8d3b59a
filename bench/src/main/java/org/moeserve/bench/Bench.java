package org.moeserve.bench;

import java.util.Arrays;

/**
 * Entry point of {@code ./moe bench NAME [args]}. Each benchmark prints a Markdown table ready for
 * BENCHMARKS.md, with the machine and the medians; numbers measured side by side come from one process.
 */
public final class Bench {
    public static void main(String[] args) throws Exception {
        String name = args.length == 0 ? "list" : args[0];
        String[] rest = Arrays.copyOfRange(args, Math.min(1, args.length), args.length);
        switch (name) {
            case "bandwidth" -> KernelBandwidth.main(rest);
            case "decode" -> DecodeThroughput.main(rest);
            case "offload" -> OffloadThroughput.main(rest);
            case "load" -> LoadGenerator.main(rest);
            case "placement" -> PlacementScale.main(rest);
            case "simulate" -> SimulateScale.main(rest);
            case "ep-calibrate" -> EpCalibration.main(rest);
            case "jmh" -> org.openjdk.jmh.Main.main(rest);
            case "suite" -> org.moeserve.bench.suite.Suite.main(rest);
            case "jmh-table" -> org.moeserve.bench.suite.Jmh.main(rest);
            case "report" -> org.moeserve.bench.suite.Suite.main(new String[]{"--report"});
            case "list" -> System.out.println("""
                    the whole suite (regenerates BENCHMARKS.md from bench/results/*.json):
                      suite [--quick|--full] [--only STEP,..] [--skip STEP,..]   run the benchmarks, then the report
                      report             BENCHMARKS.md and its plots again from bench/results, nothing rerun
                    benchmarks (./moe bench NAME):
                      bandwidth [reps]   matrix-vector 4096x4096 BF16/F32 vs a STREAM triad, 1 and 2 threads
                      decode [reps]      decode tokens/s on the demo model: 1 and 8 streams, 1 and 2 threads
                      offload [reps]     decode tokens/s with 25% of the experts resident: predictive vs LRU vs all
                      load [URL] [1,8,32] [requests] [max_tokens]   streaming load on a running moe serve (loopback)
                      placement [seconds]  expert placement at DeepSeek-V3 size (256 x 58 layers, 64 devices)
                      simulate [tokens] [s]  the cluster simulator at DeepSeek-V3 size: 100k tokens, 64 devices, 3 plans x 2 schemes
                      ep-calibrate [reps]  the simulator's step time against real in-process expert parallelism (2 devices)
                      jmh [JMH args]     the JMH microbenchmarks (org.moeserve.bench.jmh.*)""");
            default -> {
                System.err.println("moe bench: unknown benchmark " + name + "; ./moe bench list names them");
                System.exit(2);
            }
        }
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
