package org.moeserve.runtime.engine;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;
import org.moeserve.cache.CacheStats;
import org.moeserve.cache.Clock;
import org.moeserve.cache.prefetch.Prefetcher;
import org.moeserve.cache.sim.CacheSimulator;
import org.moeserve.routing.predict.TokenSample;
import org.moeserve.cache.ExpertCache;
import org.moeserve.cache.ExpertKey;
import org.moeserve.cache.policy.Policies;
import org.moeserve.units.LinkModel;
import org.moeserve.runtime.TestModels;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.ExpertWeights;
import org.moeserve.runtime.model.MoeModel;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The correctness contract of offload: with a quarter of the experts in fast memory, loaded over a modelled link
 * by any policy, greedy output is token-identical to the all-resident run; the cache really served every expert.
 */
class OffloadTest {
    static final int[] PROMPT = "And it came to pass, when the king".chars().toArray();
    static final int TOKENS = 40;
    static MoeModel model;
    static int[] resident;
    static List<ExpertKey> accesses = new ArrayList<>();

    @BeforeAll
    static void allResident() {
        model = MoeModel.load(TestModels.dir("tiny-mixtral-kjv"));
        // the reference, recording the exact order the MoE block asks for experts (serial: deterministic order)
        ExpertStore recording = new ExpertStore() {
            @Override
            public ExpertWeights acquire(int layer, int expert) {
                accesses.add(new ExpertKey(layer, expert));
                return model.expert(layer, expert);
            }
        };
        resident = generate(new Engine(model, recording, Parallel.SERIAL));
    }

    @AfterAll
    static void close() { model.close(); }

    static int[] generate(Engine e) {
        return new Generator(e).generate(new Generator.Request(PROMPT, TOKENS, SamplingParams.GREEDY, false), t -> { })
                .tokens();
    }

    static ExpertCache cache(String policy, List<ExpertKey> future) {
        long[][] load = new long[6][16];
        for (ExpertKey k : accesses) load[k.layer()][k.expert()]++;
        int slots = 24;
        return new ExpertCache(new ExpertCache.Config(slots * model.expertBytes(), model.expertBytes(),
                new LinkModel(16e9, 10_000), true), CachedExpertStore.source(model),
                Policies.create(policy, 6, slots, 2, load, future), Clock.SYSTEM);
    }

    /** The live prefetcher: expert-cache's, driven by the lookahead gate, layer time measured. */
    static Prefetcher prefetch(ExpertCache cache, Engine e) {
        Prefetcher p = new Prefetcher(LookaheadGates.of(model), cache, model.config().moeLayers(), 2, 2, 0, true);
        new LivePrefetch(p).attach(e);
        return p;
    }

    @Test
    void liveAndReplayedRunsMakeTheSamePrefetchDecisions() {
        // one token per step (a one-token prompt, then decode), so live and replay visit tokens in the same order
        int[] prompt = {PROMPT[0]};
        List<Prefetcher.Decision> live = new ArrayList<>(), replayed = new ArrayList<>();
        int[] tokens;
        try (ExpertCache c = cache("predictive", null)) {
            Engine e = new Engine(model, new CachedExpertStore(model, c), Parallel.SERIAL);
            prefetch(c, e).setLog(live::add);
            int[] out = new Generator(e).generate(new Generator.Request(prompt, 30, SamplingParams.GREEDY, false), t -> { }).tokens();
            tokens = new int[out.length]; // the tokens that ran: the prompt, then every output but the last
            tokens[0] = prompt[0];
            System.arraycopy(out, 0, tokens, 1, out.length - 1);
        }
        // the same tokens, recorded (paths and hidden states), replayed through cache-sim's simulator
        List<TokenSample> samples = new PathRecorder(new Engine(model, Parallel.SERIAL))
                .record(List.of(new PathRecorder.Input("live", tokens)), true, n -> { });
        CacheSimulator.run(samples, 6, Policies.create("predictive", 6, 24, 2, null, null), LookaheadGates.of(model), false,
                new CacheSimulator.Options(24 * model.expertBytes(), model.expertBytes(), new LinkModel(16e9, 10_000), 80_000, 2, 2, true),
                replayed::add);
        assertTrue(live.size() > 100, "prefetches were made: " + live.size());
        assertEquals(live, replayed, "the same decisions, in the same order");
    }

    @ParameterizedTest
    @ValueSource(strings = {"lru", "lfu", "pin", "predictive", "belady"})
    void greedyOutputIsTokenIdenticalToAllResident(String policy) {
        try (ExpertCache cache = cache(policy, policy.equals("belady") ? accesses : null)) {
            Engine e = new Engine(model, new CachedExpertStore(model, cache), Parallel.SERIAL);
            if (policy.equals("predictive")) prefetch(cache, e);
            assertArrayEquals(resident, generate(e), policy);
            CacheStats s = cache.stats();
            assertEquals(accesses.size(), s.accesses(), "every expert the layers used came through the cache");
            assertTrue(s.bytesMoved() > 0);
            assertTrue(cache.residentCount() <= 24, "the budget holds");
            if (policy.equals("predictive")) assertTrue(s.prefetchIssued() > 0 && s.prefetchUsed() > 0, s.summary());
        }
    }

    /**
     * The disk tier: a quarter of the experts in memory, the rest read from the checkpoint file with direct I/O (the
     * disk measured first), by LRU and by the predictive policy with its prefetcher: token-identical output.
     */
    @ParameterizedTest
    @ValueSource(strings = {"lru", "predictive"})
    void diskTierWithDirectIoIsTokenIdenticalToAllResident(String policy) {
        DiskExpertSource disk = new DiskExpertSource(model, true);
        assertTrue(disk.direct() || disk.describe().contains("EINVAL"), disk.describe());
        LinkModel measured = disk.measure(6, 2);
        assertTrue(measured.bytesPerSecond() > 1e6, measured.toString());
        try (ExpertCache cache = new ExpertCache(new ExpertCache.Config(24 * model.expertBytes(), model.expertBytes(), measured,
                true, 4), disk, Policies.create(policy, 6, 24, 2, null, null), Clock.SYSTEM)) {
            Engine e = new Engine(model, new CachedExpertStore(model, cache), Parallel.SERIAL);
            if (policy.equals("predictive")) prefetch(cache, e);
            assertArrayEquals(resident, generate(e), policy + " from disk (" + disk.describe() + ")");
            CacheStats s = cache.stats();
            assertEquals(accesses.size(), s.accesses(), "every expert the layers used came through the cache");
            assertTrue(s.misses() + s.late() > 0 && s.demandBytes() > 0, s.summary());
            assertTrue(cache.residentCount() <= 24, "the budget holds");
        }
    }

    @Test
    void beladyBeatsLruOnTheSameRunAndTwoThreadsChangeNothing() {
        CacheStats lru, belady;
        try (ExpertCache c = cache("lru", null)) {
            generate(new Engine(model, new CachedExpertStore(model, c), Parallel.SERIAL));
            lru = c.stats();
        }
        try (ExpertCache c = cache("belady", accesses)) {
            generate(new Engine(model, new CachedExpertStore(model, c), Parallel.SERIAL));
            belady = c.stats();
        }
        assertTrue(belady.hits() >= lru.hits(), "Belady " + belady.hits() + " vs LRU " + lru.hits());
        try (ExpertCache c = cache("predictive", null); Parallel two = new Parallel(2)) {
            Engine e = new Engine(model, new CachedExpertStore(model, c), two);
            prefetch(c, e);
            assertArrayEquals(resident, generate(e), "predictive, 2 threads");
        }
    }
}
