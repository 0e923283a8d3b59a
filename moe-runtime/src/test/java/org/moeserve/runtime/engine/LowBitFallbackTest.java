package org.moeserve.runtime.engine;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.moeserve.cache.Clock;
import org.moeserve.cache.ExpertCache;
import org.moeserve.cache.policy.Policies;
import org.moeserve.runtime.TestModels;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.GgufExport;
import org.moeserve.runtime.model.MoeModel;
import org.moeserve.units.LinkModel;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** HOBBIT's mixed precision: misses served from a low-bit copy at once, hits from the cache, nothing left pinned. */
class LowBitFallbackTest {
    @TempDir
    Path tmp;

    static final int[] PROMPT = "And it came to pass, when the king".chars().toArray();

    static int[] generate(Engine e) {
        return new Generator(e).generate(new Generator.Request(PROMPT, 40, SamplingParams.GREEDY, false), t -> { }).tokens();
    }

    static ExpertCache cache(MoeModel m, String policy) {
        int slots = 24;
        return new ExpertCache(new ExpertCache.Config(slots * m.expertBytes(), m.expertBytes(), new LinkModel(0.8e9, 10_000), true),
                CachedExpertStore.source(m), Policies.create(policy, 6, slots, 2, null, null), Clock.SYSTEM);
    }

    /**
     * With an exact copy as the "low-bit" model (the same BF16 weights as GGUF), serving misses from it changes no
     * token: the plumbing (which copy, acquire and release paired, the full loads started) is exact; every use is
     * served once, by the cache or the copy (how many by each depends on when loads arrive).
     */
    @Test
    void anExactCopyAsTheFallbackKeepsEveryTokenAndEveryUseIsServedOnce() throws Exception {
        Path copy = tmp.resolve("copy.gguf");
        try (MoeModel m = MoeModel.load(TestModels.dir("tiny-mixtral-kjv"))) {
            GgufExport.write(m, copy);
            long[] uses = {0};
            ExpertStore counting = new ExpertStore() {
                @Override
                public org.moeserve.runtime.model.ExpertWeights acquire(int layer, int expert) {
                    uses[0]++;
                    return m.expert(layer, expert);
                }
            };
            int[] resident = generate(new Engine(m, counting, Parallel.SERIAL));
            try (MoeModel low = MoeModel.load(copy); ExpertCache c = cache(m, "lru")) {
                LowBitFallbackStore store = new LowBitFallbackStore(m, c, low);
                assertArrayEquals(resident, generate(new Engine(m, store, Parallel.SERIAL)));
                assertEquals(uses[0], store.fullUses() + store.lowUses(), "every expert use served once, by one of the two");
                assertTrue(store.lowUses() > 0, store.summary());
                assertEquals(store.fullUses(), c.stats().accesses(), "only full-precision uses go through the cache");
                assertTrue(c.stats().prefetchIssued() > 0, "every miss started its full load: " + c.stats().summary());
                // nothing stayed pinned: the whole budget can be turned over by a plain cached run afterwards
                assertArrayEquals(resident, generate(new Engine(m, new CachedExpertStore(m, c), Parallel.SERIAL)));
                assertTrue(c.residentCount() <= 24);
            }
        }
    }

    /** A real low-bit copy (experts in Q4_0): misses never stall, so decode does not wait on the link; tokens may differ. */
    @Test
    void aQuantizedCopyServesMissesWithoutStalling() throws Exception {
        Path q4 = tmp.resolve("q4.gguf");
        try (MoeModel m = MoeModel.load(TestModels.dir("tiny-mixtral-kjv"))) {
            GgufExport.write(m, q4, new GgufExport.Quantization(GgufExport.Target.Q4_0, true));
            try (MoeModel low = MoeModel.load(q4); ExpertCache c = cache(m, "lru")) {
                LowBitFallbackStore store = new LowBitFallbackStore(m, c, low);
                int[] out = generate(new Engine(m, store, Parallel.SERIAL));
                assertEquals(40, out.length);
                assertEquals(0, c.stats().misses(), "no demand load: every miss went to the low-bit copy");
                assertTrue(store.lowUses() > 0, store.summary());
            }
            try (MoeModel other = MoeModel.load(TestModels.dir("tiny-qwen3moe-random")); ExpertCache c = cache(m, "lru")) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new LowBitFallbackStore(m, c, other));
                assertTrue(e.getMessage().contains("is not a copy of tiny-mixtral-kjv"), e.getMessage());
                assertFalse(e.getMessage().contains("\n"));
            }
        }
    }
}
