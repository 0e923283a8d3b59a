package org.moeserve.runtime.cli;

import org.moeserve.cache.Clock;
import org.moeserve.cache.ExpertCache;
import org.moeserve.cache.policy.Policies;
import org.moeserve.cache.policy.PredictivePolicy;
import org.moeserve.cache.transfer.LinkModel;
import org.moeserve.routing.predict.ExpertPredictor;
import org.moeserve.runtime.engine.CachedExpertStore;
import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.engine.Prefetcher;
import org.moeserve.runtime.model.MoeModel;
import picocli.CommandLine.Option;

/** Options of the expert cache shared by generate and cache-sim. */
final class OffloadOptions {
    @Option(names = "--link", paramLabel = "BW", description = "Modelled link bandwidth, e.g. 16GB/s (default ${DEFAULT-VALUE}).")
    String link = "16GB/s";

    @Option(names = "--link-latency", paramLabel = "T", description = "Modelled per-transfer latency (default ${DEFAULT-VALUE}).")
    String latency = "10us";

    @Option(names = "--policy", paramLabel = "NAME", split = ",",
            description = "lru, lfu, pin, predictive (default), belady and oracle (cache-sim only)")
    java.util.List<String> policies = java.util.List.of("predictive");

    @Option(names = "--horizon", paramLabel = "H", description = "Prefetch lookahead in layers (default ${DEFAULT-VALUE}).")
    int horizon = 2;

    @Option(names = "--prefetch-k", paramLabel = "K", description = "Experts prefetched per future layer (default: top-k).")
    Integer prefetchK;

    @Option(names = "--no-deadlines", description = "Prefetch even what the link cannot deliver before its layer needs it.")
    boolean noDeadlines;

    /** The expert cache over m's checkpoint: budget as --expert-budget reads; load profile for the pin policy. */
    ExpertCache cache(MoeModel m, String budgetSpec, long[][] load) {
        if (policies.size() != 1) throw new IllegalArgumentException("--policy takes one policy here, not " + policies);
        String policy = policies.getFirst();
        if (policy.equals("pin") && load == null) throw new IllegalArgumentException("--policy pin needs --fit TRACE for its load profile");
        long budget = budgetBytes(budgetSpec, GenerateCommand.totalExperts(m), m.expertBytes());
        int slots = (int) (budget / m.expertBytes());
        return new ExpertCache(new ExpertCache.Config(budget, m.expertBytes(), linkModel(), true), CachedExpertStore.source(m),
                Policies.create(policy, m.config().moeLayers(), slots, m.config().topK(), load, null), Clock.SYSTEM);
    }

    /** With the predictive policy, prefetches what {@code predictor} expects, as layers finish. */
    void attachPrefetcher(Engine engine, ExpertCache cache, MoeModel m, ExpertPredictor predictor) {
        if (!(cache.policy() instanceof PredictivePolicy)) return;
        new Prefetcher(predictor, cache, m.config(), horizon, prefetchK == null ? m.config().topK() : prefetchK, !noDeadlines)
                .attach(engine);
    }

    LinkModel linkModel() { return new LinkModel(LinkModel.parseBandwidth(link), LinkModel.parseDuration(latency)); }

    /** "25%" of all experts' bytes, "24" experts, or "6MB"/"2.5GiB" of memory, as bytes. */
    static long budgetBytes(String budget, long totalExperts, long expertBytes) {
        String b = budget.trim();
        try {
            if (b.endsWith("%")) {
                double pct = Double.parseDouble(b.substring(0, b.length() - 1));
                if (!(pct > 0 && pct <= 100)) throw new NumberFormatException();
                return Math.max(expertBytes, (long) Math.floor(totalExperts * pct / 100.0) * expertBytes);
            }
            if (b.matches("[0-9]+")) return Long.parseLong(b) * expertBytes;
            return (long) LinkModel.parseBandwidth(b + "/s");
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--expert-budget is \"" + budget + "\" but must be a share of the experts "
                    + "(25%), a number of experts (24) or an amount of memory (6MB, 2GiB)");
        }
    }
}
