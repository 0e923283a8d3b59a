package org.moeserve.runtime.cli;

import org.moeserve.cache.Clock;
import org.moeserve.cache.ExpertCache;
import org.moeserve.cache.policy.Policies;
import org.moeserve.cache.policy.PredictivePolicy;
import org.moeserve.cache.prefetch.Prefetcher;
import org.moeserve.routing.predict.ExpertPredictor;
import org.moeserve.runtime.engine.CachedExpertStore;
import org.moeserve.runtime.engine.DiskExpertSource;
import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.engine.LivePrefetch;
import org.moeserve.runtime.model.MoeModel;
import org.moeserve.units.LinkModel;
import picocli.CommandLine.Option;

import java.util.List;

/** The expert cache's options, the same flags in generate, serve and cache-sim. */
final class OffloadOptions {
    @Option(names = "--expert-budget", paramLabel = "B", split = ",", converter = Converters.Budget.class,
            description = "Experts kept in fast memory: 25%%, 24 (experts) or 6MB; the rest load over the link. "
                    + "cache-sim takes several (a sweep); default all resident (cache-sim: 25%%).")
    List<Converters.ExpertBudget> budgets;

    @Option(names = "--link", paramLabel = "BW[,LAT]", converter = Converters.Link.class,
            description = "Modelled link to the slow tier: bandwidth and per-transfer latency (default 16GB/s,10us); "
                    + "cache-sim takes 'measured': the disk under --model, measured as the disk tier measures it.")
    LinkModel link = new LinkModel(16e9, Converters.Link.DEFAULT_LATENCY);

    @Option(names = "--offload", paramLabel = "TIER", description = "Where experts outside the budget live: link (default: "
            + "host memory over the modelled --link) or disk (read from the checkpoint's files with direct I/O, bypassing "
            + "the page cache; the disk is measured at start-up and the measured link guides prefetching).")
    String tier = "link";

    /** Readers in flight at once on the disk tier (the demand read runs on the layer's own thread besides). */
    static final int DISK_READERS = 4;

    private String linkLine;

    @Option(names = "--policy", paramLabel = "NAME", split = ",",
            description = "lru, lfu, pin, predictive (default); cache-sim only: belady, oracle (Belady's eviction with the true "
                    + "future prefetched) belady:N (Belady seeing only N steps ahead: what perfect foresight of N tokens buys) and oracle:N (belady:N, "
                    + "the true experts of the next --horizon layers prefetched)")
    List<String> policies = List.of("predictive");

    @Option(names = "--horizon", paramLabel = "H", description = "Prefetch lookahead in layers (default ${DEFAULT-VALUE}).")
    int horizon = 2;

    @Option(names = "--prefetch-k", paramLabel = "K", description = "Experts prefetched (predicted) per future layer (default: top-k).")
    Integer prefetchK;

    @Option(names = "--no-deadlines", description = "Prefetch even what the link cannot deliver before its layer needs it.")
    boolean noDeadlines;

    @Option(names = "--low-bit", paramLabel = "FILE.gguf", description = "Serve a missed expert at once from this quantized "
            + "copy of the model (moe quantize --type q4_0 --experts-only) while its full bytes load (HOBBIT's mixed "
            + "precision): no stall on a miss, but that step computes with the low-bit expert, so the output can differ "
            + "from all-resident. Needs --expert-budget.")
    java.nio.file.Path lowBit;

    private org.moeserve.runtime.engine.LowBitFallbackStore fallback;

    @Option(names = "--device", paramLabel = "DEV", description = "Where routed experts run: cpu (default) or gpu (CUDA "
            + "through FFM: expert slots in GPU memory, all experts or --expert-budget of them, filled over PCIe from "
            + "pinned host memory; the expert cache's policy and prefetcher decide what stays). Without a usable GPU, "
            + "one INFO line says why and the CPU runs.")
    String device = "cpu";

    /** Checks what picocli cannot (exit 2 through the caller). */
    void validate(boolean sweep) {
        if (horizon < 1) throw new UsageError("--horizon is " + horizon + " but must be >= 1");
        if (prefetchK != null && prefetchK < 1) throw new UsageError("--prefetch-k is " + prefetchK + " but must be >= 1");
        for (String p : policies) {
            if (!Policies.known(p)) {
                throw new UsageError("--policy is " + p + " but must be one of " + String.join(", ", Policies.NAMES)
                        + " (N: steps of foresight, a whole number >= 0)");
            }
        }
        if (!tier.equals("link") && !tier.equals("disk")) throw new UsageError("--offload is " + tier + " but must be link or disk");
        if (link == Converters.Link.MEASURED && !sweep) {
            throw new UsageError("--link measured is for cache-sim; --offload disk measures the disk by itself");
        }
        if (tier.equals("disk") && budgets == null && !sweep) throw new UsageError("--offload disk needs --expert-budget (e.g. 25% or 4GB): the experts kept in memory");
        if (!sweep && budgets != null && budgets.size() != 1) throw new UsageError("--expert-budget takes one budget here, not " + budgets);
        if (!device.equals("cpu") && !device.equals("gpu")) throw new UsageError("--device is " + device + " but must be cpu or gpu");
        if (device.equals("gpu") && (sweep || tier.equals("disk") || lowBit != null)) {
            throw new UsageError("--device gpu runs live from pinned host memory; it does not combine with "
                    + (sweep ? "cache-sim" : tier.equals("disk") ? "--offload disk" : "--low-bit") + " yet");
        }
        if (lowBit != null && (sweep || budgets == null)) {
            throw new UsageError(sweep ? "--low-bit runs live (generate, serve, eval), not in cache-sim"
                    : "--low-bit serves misses of the expert cache: give --expert-budget too");
        }
    }

    boolean offloading() { return budgets != null; }

    Converters.ExpertBudget budget() { return budgets.getFirst(); }

    /** The expert cache over m's checkpoint (one policy); load profile for the pin policy. */
    ExpertCache cache(MoeModel m, long[][] load) {
        String policy = livePolicy();
        long budget = budget().bytes(totalExperts(m), m.expertBytes());
        var evictionPolicy = evictionPolicy(m, load, policy, budget);
        if (tier.equals("disk")) {
            DiskExpertSource disk = new DiskExpertSource(m, true);
            LinkModel measured = disk.measure(Math.min(8, (int) totalExperts(m)), 3);
            linkLine = "disk, " + disk.describe() + "; " + DiskExpertSource.describe(measured);
            return new ExpertCache(new ExpertCache.Config(budget, m.expertBytes(), measured, true, DISK_READERS), disk,
                    evictionPolicy, Clock.SYSTEM);
        }
        linkLine = "link " + link + " [modelled link]";
        return new ExpertCache(new ExpertCache.Config(budget, m.expertBytes(), link, true), CachedExpertStore.source(m),
                evictionPolicy, Clock.SYSTEM);
    }

    /** The one policy a live run takes (cache-sim's foresight policies need the future). */
    private String livePolicy() {
        if (policies.size() != 1) throw new UsageError("--policy takes one policy here, not " + policies);
        String policy = policies.getFirst();
        if (policy.startsWith("belady") || policy.startsWith("oracle")) {
            throw new IllegalArgumentException("--policy " + policy + " needs the future; it runs only in cache-sim");
        }
        return policy;
    }

    private static org.moeserve.cache.policy.EvictionPolicy evictionPolicy(MoeModel m, long[][] load, String policy, long budget) {
        if (policy.equals("pin") && load == null) throw new IllegalArgumentException("--policy pin needs --fit-trace TRACE for its load profile");
        int slots = (int) (budget / m.expertBytes());
        return Policies.create(policy, m.config().moeLayers(), slots, m.config().topK(), load, null);
    }

    /**
     * --device gpu: the GPU tier over m (every expert resident, or --expert-budget of them under --policy), or null
     * for the CPU: --device cpu, or no usable GPU, which one INFO line on stderr explains.
     */
    org.moeserve.runtime.gpu.GpuTier gpu(MoeModel m, long[][] load) {
        if (!device.equals("gpu")) return null;
        String why = org.moeserve.runtime.gpu.GpuTier.unsupported(m);
        org.moeserve.runtime.gpu.Cuda.Probe probe = why == null ? org.moeserve.runtime.gpu.Cuda.open() : null;
        if (probe != null && probe.cuda() == null) why = probe.reason();
        if (why != null) {
            System.err.println("INFO moe: --device gpu: " + why + "; routed experts run on the CPU");
            return null;
        }
        long total = totalExperts(m) * m.expertBytes();
        String policy = offloading() ? livePolicy() : "lru";
        long budget = offloading() ? budget().bytes(totalExperts(m), m.expertBytes()) : total;
        var tier = new org.moeserve.runtime.gpu.GpuTier(probe.cuda(), m, budget, evictionPolicy(m, load, policy, budget));
        linkLine = tier.describe();
        return tier;
    }

    /** An engine as the flags ask: {@code gpu} and {@code cache} null where not used. */
    record Built(Engine engine, ExpertCache cache, org.moeserve.runtime.gpu.GpuTier gpu) {}

    /**
     * The engine the flags ask for: routed experts on the GPU tier (--device gpu), from the expert cache
     * (--expert-budget), or all resident; with the predictive policy, prefetching what {@code predictor} expects.
     */
    Built engine(MoeModel m, org.moeserve.runtime.kernel.Parallel par, long[][] load,
                 java.util.function.Supplier<ExpertPredictor> predictor) {
        org.moeserve.runtime.gpu.GpuTier gpu = gpu(m, load);
        if (gpu != null) {
            Engine e = new Engine(m, par);
            e.setExecutor(gpu.executor());
            if (offloading()) attachPrefetcher(e, gpu.cache(), m, predictor.get());
            return new Built(e, offloading() ? gpu.cache() : null, gpu);
        }
        if (!offloading()) return new Built(new Engine(m, par), null, null);
        ExpertCache cache = cache(m, load);
        Engine e = new Engine(m, store(m, cache), par);
        attachPrefetcher(e, cache, m, predictor.get());
        return new Built(e, cache, null);
    }

    /** The engine's expert store over the cache: the cache itself, or (--low-bit) the cache with a low-bit copy serving misses. */
    org.moeserve.runtime.engine.ExpertStore store(MoeModel m, ExpertCache cache) {
        if (lowBit == null) return new CachedExpertStore(m, cache);
        fallback = new org.moeserve.runtime.engine.LowBitFallbackStore(m, cache, MoeModel.load(lowBit)); // open for the process
        return fallback;
    }

    /** The low-bit store built by {@link #store}, or null. */
    org.moeserve.runtime.engine.LowBitFallbackStore fallback() { return fallback; }

    /** The slow tier in one line, once {@link #cache} has built it: the modelled link, or the disk as read and measured. */
    String slowTier() { return linkLine; }

    /** The link: as given, or (--link measured) the disk under m measured now; null m with measured is an error. */
    LinkModel link(MoeModel m) {
        if (link != Converters.Link.MEASURED) return link;
        if (m == null) throw new UsageError("--link measured measures the disk under --model DIR; give --model");
        try (DiskExpertSource disk = new DiskExpertSource(m, true)) {
            return disk.measure(Math.min(8, (int) totalExperts(m)), 3);
        }
    }

    int k(int topK) { return prefetchK == null ? topK : prefetchK; }

    /** With the predictive policy, prefetches what {@code predictor} expects, as layers finish (layer time measured). */
    void attachPrefetcher(Engine engine, ExpertCache cache, MoeModel m, ExpertPredictor predictor) {
        if (!(cache.policy() instanceof PredictivePolicy)) return;
        new LivePrefetch(new Prefetcher(predictor, cache, m.config().moeLayers(), horizon, k(m.config().topK()), 0, !noDeadlines))
                .attach(engine);
    }

    static long totalExperts(MoeModel m) { return (long) m.config().moeLayers() * m.config().experts(); }
}
