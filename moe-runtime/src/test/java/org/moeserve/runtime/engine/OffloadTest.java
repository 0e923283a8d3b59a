package org.moeserve.runtime.engine;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;
import org.moeserve.cache.CacheStats;
import org.moeserve.cache.Clock;
import org.moeserve.cache.ExpertCache;
import org.moeserve.cache.ExpertKey;
import org.moeserve.cache.policy.Policies;
import org.moeserve.cache.transfer.LinkModel;
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
        int[] moe = model.config().moeLayerIndex();
        ExpertStore recording = new ExpertStore() {
            @Override
            public ExpertWeights acquire(int layer, int expert) {
                accesses.add(new ExpertKey(moe[layer], expert));
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

    @ParameterizedTest
    @ValueSource(strings = {"lru", "lfu", "pin", "predictive", "belady"})
    void greedyOutputIsTokenIdenticalToAllResident(String policy) {
        try (ExpertCache cache = cache(policy, policy.equals("belady") ? accesses : null)) {
            Engine e = new Engine(model, new CachedExpertStore(model, cache), Parallel.SERIAL);
            if (policy.equals("predictive")) new Prefetcher(LookaheadGates.of(model), cache, model.config(), 2, 2).attach(e);
            assertArrayEquals(resident, generate(e), policy);
            CacheStats s = cache.stats();
            assertEquals(accesses.size(), s.accesses(), "every expert the layers used came through the cache");
            assertTrue(s.bytesMoved() > 0);
            assertTrue(cache.residentCount() <= 24, "the budget holds");
            if (policy.equals("predictive")) assertTrue(s.prefetchIssued() > 0 && s.prefetchUsed() > 0, s.summary());
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
            new Prefetcher(LookaheadGates.of(model), c, model.config(), 2, 2).attach(e);
            assertArrayEquals(resident, generate(e), "predictive, 2 threads");
        }
    }
}
