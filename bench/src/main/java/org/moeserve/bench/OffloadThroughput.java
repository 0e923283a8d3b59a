package org.moeserve.bench;

import org.moeserve.cache.CacheStats;
import org.moeserve.cache.Clock;
import org.moeserve.cache.ExpertCache;
import org.moeserve.cache.policy.Policies;
import org.moeserve.units.LinkModel;
import org.moeserve.runtime.engine.CachedExpertStore;
import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.engine.Generator;
import org.moeserve.runtime.engine.LookaheadGates;
import org.moeserve.cache.prefetch.Prefetcher;
import org.moeserve.runtime.engine.LivePrefetch;
import org.moeserve.runtime.engine.SamplingParams;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.MoeModel;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Decode speed with a quarter of the experts in fast memory (issue 4's end-to-end target), on the demo model, one
 * stream, one compute thread (the other core copies experts). The link is set from a measurement made first in the
 * same process: bandwidth = expert bytes / (all-resident decode step time / layers), so loading one expert takes
 * about one layer's compute. Then, interleaved rep by rep: all resident; predictive (lookahead-gate prefetch,
 * H=2, K=2, deadlines); LRU loading on demand. The same three again on a 16 GB/s link (PCIe-class) for reference.
 * Medians of decode tokens/s; the link is modelled. Usage: {@code ./moe bench offload [reps] [budgets]}, budgets as
 * fractions of all experts (default 25%; e.g. 10%,25%,50%): every policy and link runs at each budget.
 */
final class OffloadThroughput {
    static final int[] PROMPT = "And it came to pass, when the king heard".chars().toArray();

    public static void main(String[] args) {
        int reps = args.length > 0 ? Integer.parseInt(args[0]) : 5, tokens = 128;
        String[] budgets = (args.length > 1 ? args[1] : "25%").split(",");
        Path dir = Path.of(System.getProperty("moe.home", ".")).resolve("models/tiny-mixtral-kjv");
        try (MoeModel m = MoeModel.load(dir); Parallel one = new Parallel(1)) {
            int layers = m.config().moeLayers();
            Engine resident = new Engine(m, one);
            for (int i = 0; i < 3; i++) decode(resident, tokens);
            double[] step = new double[5];
            for (int i = 0; i < step.length; i++) step[i] = 1e9 / decode(resident, tokens);
            double layerNanos = Bench.median(step) / layers;
            double matched = m.expertBytes() / (layerNanos / 1e9);
            System.out.println("machine: " + Bench.machine());
            System.out.printf(Locale.ROOT, "all-resident decode step %.0f us = %.1f us per layer; expert %d bytes; "
                    + "matched link %.2f GB/s (one expert per layer's compute)%n", Bench.median(step) / 1e3, layerNanos / 1e3,
                    m.expertBytes(), matched / 1e9);
            int all = layers * m.config().experts();
            List<Config> configs = new ArrayList<>(List.of(new Config("100%", all, "resident", 0, "resident")));
            for (String b : budgets) {
                double f = Double.parseDouble(b.strip().replace("%", "")) / 100;
                if (!(f > 0 && f < 1)) throw new IllegalArgumentException("budget " + b + ": give a share of the experts between 0% and 100%, e.g. 25%");
                int slots = Math.max(m.config().topK(), (int) (f * all));
                for (String policy : List.of("predictive", "lru")) configs.add(new Config(b.strip(), slots, policy, matched, "matched"));
                for (String policy : List.of("predictive", "lru")) configs.add(new Config(b.strip(), slots, policy, 16e9, "16GB/s"));
            }
            Map<Config, double[]> tps = new LinkedHashMap<>();
            Map<Config, CacheStats> stats = new LinkedHashMap<>();
            for (Config c : configs) tps.put(c, new double[reps]);
            for (int r = -1; r < reps; r++) {
                for (Config c : configs) {
                    if (c.policy().equals("resident")) {
                        double v = decode(resident, tokens);
                        if (r >= 0) tps.get(c)[r] = v;
                        continue;
                    }
                    try (ExpertCache cache = new ExpertCache(new ExpertCache.Config(c.slots() * m.expertBytes(), m.expertBytes(),
                            new LinkModel(c.linkBw(), 0), true), CachedExpertStore.source(m),
                            Policies.create(c.policy(), layers, c.slots(), m.config().topK(), null, null), Clock.SYSTEM)) {
                        Engine e = new Engine(m, new CachedExpertStore(m, cache), one);
                        if (c.policy().equals("predictive")) {
                            new LivePrefetch(new Prefetcher(LookaheadGates.of(m), cache, layers, 2, m.config().topK(), 0, true)).attach(e);
                        }
                        decode(e, 16); // fill the cache
                        cache.resetStats();
                        double v = decode(e, tokens);
                        if (r >= 0) {
                            tps.get(c)[r] = v;
                            stats.put(c, cache.stats());
                        }
                    }
                }
            }
            double base = Bench.median(tps.get(configs.getFirst()));
            System.out.println("| budget (slots) | configuration | decode tokens/s (median of " + reps + ") | vs all-resident | vs LRU, same link "
                    + "| hit rate | stall per token | prefetch precision | link GB/s | bytes over link per token |");
            System.out.println("|---|---|---|---|---|---|---|---|---|---|");
            Map<String, double[]> byLabel = new LinkedHashMap<>();
            for (Config c : configs) {
                double v = Bench.median(tps.get(c));
                byLabel.put(c.budgetLabel() + " " + c.label(), tps.get(c));
                String vsLru = c.policy().equals("predictive")
                        ? String.format(Locale.ROOT, "%.2fx", v / Bench.median(tps.get(new Config(c.budget(), c.slots(), "lru", c.linkBw(), c.linkName()))))
                        : "";
                CacheStats s = stats.get(c);
                System.out.printf(Locale.ROOT, "| %s | %s | %.0f | %.2fx | %s | %s | %s | %s | %s | %s |%n", c.budgetLabel(), c.label(), v, v / base, vsLru,
                        s == null ? "1" : String.format(Locale.ROOT, "%.3f", s.hitRate()),
                        s == null ? "0" : String.format(Locale.ROOT, "%.0f us", s.stallNanos() / 1e3 / tokens),
                        s == null || s.prefetchIssued() == 0 ? "-" : String.format(Locale.ROOT, "%.3f", s.prefetchPrecision()),
                        s == null ? "-" : String.format(Locale.ROOT, "%.2f", c.linkBw() / 1e9),
                        s == null ? "0" : String.format(Locale.ROOT, "%.0f", (double) s.bytesMoved() / tokens));
            }
            System.out.println("(spread of decode tokens/s per configuration: " + spread(byLabel) + ")");
        }
    }

    static String spread(Map<String, double[]> tps) {
        StringBuilder sb = new StringBuilder();
        tps.forEach((k, v) -> {
            double[] s = v.clone();
            Arrays.sort(s);
            sb.append(String.format(Locale.ROOT, "%s %.0f-%.0f; ", k, s[0], s[s.length - 1]));
        });
        return sb.toString();
    }

    /** One configuration of the run: a budget of {@code slots} experts, a policy, a modelled link. */
    record Config(String budget, int slots, String policy, double linkBw, String linkName) {
        String budgetLabel() { return policy.equals("resident") ? budget : budget + " (" + slots + ")"; }

        String label() { return policy.equals("resident") ? policy : policy + "@" + linkName; }
    }

    /** Decode tokens/s of one greedy generation. */
    static double decode(Engine e, int tokens) {
        Generator g = new Generator(e);
        g.generate(new Generator.Request(PROMPT, tokens, SamplingParams.GREEDY, false), t -> { });
        return g.lastTiming().decodeTokensPerSecond();
    }
}
