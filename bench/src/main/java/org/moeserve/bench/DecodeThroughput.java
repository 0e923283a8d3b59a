package org.moeserve.bench;

import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.engine.Generator;
import org.moeserve.runtime.engine.SamplingParams;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.MoeModel;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Decode tokens/s on the demo model (tiny-mixtral-kjv, all experts resident): S streams decoding together
 * (batched decode steps), T compute threads. Each rep prefills S distinct 32-byte prompts, then decodes 128
 * tokens per stream greedily with EOS ignored; tokens/s = S * decode steps / decode time. Medians over reps,
 * the four configurations interleaved rep by rep.
 */
final class DecodeThroughput {
    static final String[] PROMPTS = {"In the beginning God created the", "hacker n. [originally, someone wh",
            "A fool and his money are soon pa", "def main():\n    import sys\n    pr", "And it came to pass, when the ki",
            "kludge /kluhj/ n. 1. A clever pr", "Q: How many programmers does it ", "class Foo(object):\n    def __ini"};

    public static void main(String[] args) {
        int reps = args.length > 0 ? Integer.parseInt(args[0]) : 7;
        Path dir = Path.of(System.getProperty("moe.home", ".")).resolve("models/tiny-mixtral-kjv");
        int[][] configs = {{1, 1}, {8, 1}, {1, 2}, {8, 2}}; // streams, threads
        double[][] tps = new double[configs.length][reps];
        try (MoeModel m = MoeModel.load(dir); Parallel one = new Parallel(1); Parallel two = new Parallel(2)) {
            for (int r = -2; r < reps; r++) { // 2 warm-up reps
                for (int c = 0; c < configs.length; c++) {
                    Generator g = new Generator(new Engine(m, configs[c][1] == 1 ? one : two));
                    List<Generator.Request> reqs = new ArrayList<>();
                    for (int s = 0; s < configs[c][0]; s++) {
                        reqs.add(new Generator.Request(PROMPTS[s].chars().toArray(), 128, SamplingParams.GREEDY, false));
                    }
                    g.generate(reqs, (i, t) -> { });
                    if (r >= 0) tps[c][r] = g.lastTiming().decodeTokensPerSecond();
                }
            }
        }
        System.out.println("machine: " + Bench.machine());
        System.out.println("| streams | threads | decode tokens/s (median of " + reps + ") | min | max |");
        System.out.println("|---|---|---|---|---|");
        for (int c = 0; c < configs.length; c++) {
            double[] s = tps[c].clone();
            java.util.Arrays.sort(s);
            System.out.printf(Locale.ROOT, "| %d | %d | %.0f | %.0f | %.0f |%n", configs[c][0], configs[c][1],
                    Bench.median(tps[c]), s[0], s[s.length - 1]);
        }
    }
}
