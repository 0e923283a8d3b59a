package org.moeserve.cache;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.junit.jupiter.api.Test;
import org.moeserve.cache.policy.BeladyPolicy;
import org.moeserve.cache.policy.LfuPolicy;
import org.moeserve.cache.policy.LruPolicy;
import org.moeserve.cache.policy.PinPolicy;
import org.moeserve.cache.policy.PredictivePolicy;
import org.moeserve.cache.transfer.Link;
import org.moeserve.units.LinkModel;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The cache and its link on a virtual clock, where every time is exact. */
class ExpertCacheTest {
    // 1000 bytes per expert over 1 GB/s = 1000 ns, plus 100 ns latency: 1100 ns per transfer
    static final LinkModel LINK = new LinkModel(1e9, 100);
    static final long EXPERT = 1000;

    static ExpertCache cache(int slots, org.moeserve.cache.policy.EvictionPolicy p, Clock clock) {
        return new ExpertCache(new ExpertCache.Config(slots * EXPERT, EXPERT, LINK, false), null, p, clock);
    }

    static ExpertKey k(int l, int e) { return new ExpertKey(l, e); }

    @Test
    void linkModelTimesATransfer() {
        assertEquals(1100, LINK.nanosFor(EXPERT));
    }

    @Test
    void demandLoadsOvertakePrefetchesAtTheNextChunkBoundary() {
        Link link = new Link(LINK);                      // a load takes 1100 ns: 3 chunks of 367
        Link.Transfer a = link.submit(EXPERT, 2, 0);     // starts at once: on the wire
        Link.Transfer b = link.submit(EXPERT, 2, 0);     // waits: 1100..2200
        Link.Transfer c = link.submit(EXPERT, 0, 10);    // demand: a finishes its first chunk (367), then c, then a's rest
        assertEquals(367 + 1100, c.readyAt());
        assertEquals(367 + 1100 + 733, a.readyAt());
        assertEquals(2200 + 1100, b.readyAt());
        assertTrue(link.cancel(b, 20), "b has not started");
        assertFalse(link.cancel(a, 20), "a is on the wire");
        Link.Transfer d = link.submit(EXPERT, 1, 30);    // a prefetch nearer than a: after c, before a's rest
        assertEquals(1467 + 1100, d.readyAt(), "b's time was given back");
        assertEquals(2567 + 733, a.readyAt());
        assertTrue(link.projectedReady(EXPERT, 0, 30) == 1467 + 1100, "a new demand would follow c");
    }

    @Test
    void hitsMissesAndStallsOnDemand() {
        Clock.Virtual clock = new Clock.Virtual();
        try (ExpertCache c = cache(2, new LruPolicy(), clock)) {
            c.acquire(k(0, 0));                 // miss: 1100 ns stall
            c.release(k(0, 0));
            assertEquals(1100, clock.nanoTime());
            c.acquire(k(0, 0));                 // hit
            c.release(k(0, 0));
            c.acquire(k(0, 1));                 // miss
            c.release(k(0, 1));
            c.acquire(k(0, 2));                 // miss, evicts (0,0): least recently used
            c.release(k(0, 2));
            assertFalse(c.isResident(k(0, 0)));
            assertTrue(c.isResident(k(0, 1)));
            CacheStats s = c.stats();
            assertEquals(4, s.accesses());
            assertEquals(1, s.hits());
            assertEquals(3, s.misses());
            assertEquals(3 * 1100, s.stallNanos());
            assertEquals(3 * EXPERT, s.demandBytes());
        }
    }

    @Test
    void prefetchInTimeIsAHitTooLateStallsLessAndUnusedIsWasted() {
        Clock.Virtual clock = new Clock.Virtual();
        try (ExpertCache c = cache(3, new PredictivePolicy(2), clock)) {
            assertTrue(c.prefetch(k(1, 0), 1));   // ready at 1100
            assertTrue(c.prefetch(k(1, 1), 1));   // ready at 2200
            clock.advance(1500);
            c.acquire(k(1, 0));                   // ready: hit, no stall
            c.acquire(k(1, 1));                   // on the wire: late, stalls 700
            assertEquals(2200, clock.nanoTime());
            c.release(k(1, 0));
            c.release(k(1, 1));
            assertTrue(c.prefetch(k(0, 5), 1));   // never used
            clock.advance(5000);
            c.acquire(k(0, 1));                   // miss: evicts the unused prefetch (furthest next use... or LFU)
            c.release(k(0, 1));
            CacheStats s = c.stats();
            assertEquals(1, s.hits());
            assertEquals(1, s.late());
            assertEquals(1, s.misses());
            assertEquals(700 + 1100, s.stallNanos());
            assertEquals(3, s.prefetchIssued());
            assertEquals(2, s.prefetchUsed());
            assertEquals(1, s.prefetchWasted() + (c.isResident(k(0, 5)) ? 1 : 0), "the unused prefetch left or is idle");
        }
    }

    @Test
    void stalePrefetchesAreCancelledAndGiveTheirTimeBack() {
        Clock.Virtual clock = new Clock.Virtual();
        try (ExpertCache c = cache(4, new LruPolicy(), clock)) {
            c.prefetch(k(2, 0), 1);               // on the wire at once
            c.prefetch(k(2, 1), 1);               // waiting
            c.cancelStale(2);
            CacheStats s = c.stats();
            assertEquals(1, s.prefetchCancelled(), "only the waiting one can be cancelled");
            assertEquals(EXPERT, s.prefetchBytes());
            c.acquire(k(3, 0));                   // demand: the first prefetch has copied nothing yet, so it goes first
            assertEquals(1100, clock.nanoTime());
        }
    }

    @Test
    void pinPolicyKeepsTheHottestResident() {
        long[][] load = {{9, 1, 1, 8}, {1, 7, 1, 1}};
        Clock.Virtual clock = new Clock.Virtual();
        try (ExpertCache c = cache(4, new PinPolicy(load, 3), clock)) {
            for (ExpertKey hot : List.of(k(0, 0), k(0, 3), k(1, 1))) assertTrue(c.isResident(hot));
            for (int i = 0; i < 5; i++) {         // cycling cold experts never displaces the pinned ones
                c.acquire(k(1, i % 4 == 1 ? 2 : i % 4));
                c.release(k(1, i % 4 == 1 ? 2 : i % 4));
            }
            for (ExpertKey hot : List.of(k(0, 0), k(0, 3), k(1, 1))) assertTrue(c.isResident(hot));
            assertEquals(0, c.stats().demandBytes() % EXPERT);
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> cache(3, new PinPolicy(load, 3), new Clock.Virtual()));
        assertTrue(e.getMessage().contains("pins 3"), e.getMessage());
    }

    /**
     * A layer acquires its experts one at a time. Those its router chose and that are resident stay (reserve) while a
     * miss earlier in the same layer loads: under LRU the oldest, which is the one about to be used, would leave.
     */
    @Test
    void reservedExpertsOfTheRunningLayerSurviveItsOwnMisses() {
        for (boolean reserve : new boolean[]{false, true}) {
            try (ExpertCache c = cache(3, new LruPolicy(), new Clock.Virtual())) {
                for (int e = 0; e < 3; e++) { // resident, oldest first: 0, 1, 2
                    c.acquire(k(0, e));
                    c.release(k(0, e));
                }
                if (reserve) c.reserve(List.of(k(0, 3), k(0, 0)));
                c.acquire(k(0, 3)); // a miss: LRU's victim would be expert 0, which this layer uses next
                c.acquire(k(0, 0));
                c.release(k(0, 3));
                c.release(k(0, 0));
                assertEquals(reserve ? 1 : 0, c.stats().hits(), "reserve " + reserve);
                assertEquals(reserve ? 4 : 5, c.stats().misses(), "reserve " + reserve);
                assertFalse(c.isResident(k(0, 1)), "expert 1, the oldest not reserved, left");
            }
        }
    }

    @Test
    void beladyIsNeverBeatenByLruOrLfuOnDemand() {
        SplittableRandom r = new SplittableRandom(11);
        for (int trial = 0; trial < 30; trial++) {
            List<ExpertKey> seq = new ArrayList<>();
            for (int i = 0; i < 300; i++) seq.add(k(r.nextInt(3), (int) Math.min(7, Math.abs(r.nextGaussian() * 3))));
            int slots = 2 + r.nextInt(6);
            long belady = hits(seq, slots, new BeladyPolicy(seq));
            assertTrue(belady >= hits(seq, slots, new LruPolicy()), "trial " + trial);
            assertTrue(belady >= hits(seq, slots, new LfuPolicy()), "trial " + trial);
        }
    }

    static long hits(List<ExpertKey> seq, int slots, org.moeserve.cache.policy.EvictionPolicy p) {
        try (ExpertCache c = cache(slots, p, new Clock.Virtual())) {
            for (ExpertKey key : seq) {
                c.acquire(key);
                c.release(key);
            }
            return c.stats().hits();
        }
    }

    /**
     * A real slow tier (readers > 0): an expert is there when its bytes are, whatever the link model says (here it
     * says "instant"); prefetches not yet read are cancelled as stale; a demand read runs on the caller's thread.
     */
    @Test
    void aRealTierArrivesWhenTheBytesDoAndStaleReadsAreCancelled() throws Exception {
        java.util.concurrent.CountDownLatch gate = new java.util.concurrent.CountDownLatch(1);
        java.util.Set<String> readers = java.util.concurrent.ConcurrentHashMap.newKeySet();
        ExpertSource slow = new ExpertSource() {
            public long expertBytes() { return EXPERT; }

            public void copyTo(ExpertKey key, MemorySegment dst) {
                readers.add(Thread.currentThread().getName());
                if (key.layer() == 1) { // prefetches of layer 1 block until the gate opens: a slow disk
                    try {
                        gate.await();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
                dst.fill((byte) (key.layer() * 16 + key.expert()));
            }
        };
        try (ExpertCache c = new ExpertCache(new ExpertCache.Config(8 * EXPERT, EXPERT, new LinkModel(1e15, 0), true, 1),
                slow, new PredictivePolicy(2), Clock.SYSTEM)) {
            for (int e = 0; e < 3; e++) assertTrue(c.prefetch(k(1, e), 1));
            Thread.sleep(50); // the one reader has taken (1,0) and blocks on it; (1,1) and (1,2) wait in its queue
            assertFalse(c.isResident(k(1, 0)), "modelled as instant, but its bytes have not come");
            MemorySegment m = c.acquire(k(0, 5)); // demand: read on this thread, not queued behind the blocked reader
            assertEquals((byte) 5, m.get(ValueLayout.JAVA_BYTE, EXPERT - 1));
            c.release(k(0, 5));
            assertTrue(readers.contains(Thread.currentThread().getName()), readers.toString());
            c.cancelStale(1);
            assertEquals(2, c.stats().prefetchCancelled(), "the two not yet read are cancelled; the one being read is not");
            gate.countDown();
            m = c.acquire(k(1, 0));
            assertEquals((byte) 16, m.get(ValueLayout.JAVA_BYTE, 0));
            c.release(k(1, 0));
            m = c.acquire(k(1, 2)); // cancelled before, so read again now
            assertEquals((byte) 18, m.get(ValueLayout.JAVA_BYTE, 0));
            c.release(k(1, 2));
        }
    }

    /** A real tier's readers take the nearest layer's prefetch first, whatever order they were queued in. */
    @Test
    void readersTakeTheMostUrgentCopyFirst() throws Exception {
        java.util.concurrent.CountDownLatch gate = new java.util.concurrent.CountDownLatch(1), begun = new java.util.concurrent.CountDownLatch(1);
        List<ExpertKey> order = java.util.Collections.synchronizedList(new ArrayList<>());
        ExpertSource slow = new ExpertSource() {
            public long expertBytes() { return EXPERT; }

            public void copyTo(ExpertKey key, MemorySegment dst) {
                begun.countDown();
                try {
                    gate.await(); // the one reader blocks on its first copy while the others queue
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                order.add(key);
                dst.fill((byte) key.expert());
            }
        };
        try (ExpertCache c = new ExpertCache(new ExpertCache.Config(8 * EXPERT, EXPERT, new LinkModel(1e15, 0), true, 1),
                slow, new LruPolicy(), Clock.SYSTEM)) {
            assertTrue(c.prefetch(k(5, 0), 3));
            assertTrue(begun.await(10, java.util.concurrent.TimeUnit.SECONDS), "the reader has taken (5,0)");
            assertTrue(c.prefetch(k(5, 1), 3));
            assertTrue(c.prefetch(k(4, 2), 2));
            assertTrue(c.prefetch(k(3, 3), 1));
            gate.countDown();
            long deadline = System.nanoTime() + 10_000_000_000L; // the one reader does all four; nobody else copies
            while (order.size() < 4 && System.nanoTime() < deadline) Thread.sleep(1);
            assertEquals(List.of(k(5, 0), k(3, 3), k(4, 2), k(5, 1)), order, "nearest layer first after the one begun");
            for (ExpertKey key : List.of(k(5, 1), k(4, 2), k(3, 3))) {
                assertEquals((byte) key.expert(), c.acquire(key).get(ValueLayout.JAVA_BYTE, 0));
                c.release(key);
            }
        }
    }

    @Test
    void copiesBytesIntoFastMemoryAndMeters() {
        ExpertSource src = new ExpertSource() {
            public long expertBytes() { return EXPERT; }

            public void copyTo(ExpertKey key, MemorySegment dst) {
                for (long i = 0; i < EXPERT; i++) dst.set(ValueLayout.JAVA_BYTE, i, (byte) (key.layer() * 16 + key.expert()));
            }
        };
        try (ExpertCache c = new ExpertCache(new ExpertCache.Config(2 * EXPERT, EXPERT, new LinkModel(100e9, 0), true), src,
                new LruPolicy(), Clock.SYSTEM)) {
            SimpleMeterRegistry reg = new SimpleMeterRegistry();
            c.bindTo(reg);
            for (int e = 0; e < 3; e++) {
                MemorySegment m = c.acquire(k(1, e));
                assertEquals((byte) (16 + e), m.get(ValueLayout.JAVA_BYTE, 0));
                assertEquals((byte) (16 + e), m.get(ValueLayout.JAVA_BYTE, EXPERT - 1));
                c.release(k(1, e));
            }
            assertEquals(3.0, reg.get("moe.cache.accesses").tag("result", "miss").functionCounter().count());
            assertEquals(3.0 * EXPERT, reg.get("moe.cache.bytes").tag("kind", "demand").functionCounter().count());
            assertEquals(2.0, reg.get("moe.cache.resident").gauge().value());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new ExpertCache.Config(10, EXPERT, LINK, false));
        assertTrue(e.getMessage().contains("at least one expert"), e.getMessage());
        try (Arena ignored = Arena.ofConfined()) {
            assertThrows(IllegalStateException.class, () -> cache(1, new LruPolicy(), new Clock.Virtual()).release(k(0, 0)));
        }
    }

    /**
     * Slots outside host memory (a GPU's): the cache keeps the books and asks the slots to fill; an expert's slot
     * holds it from its fill until it is evicted, and a pinned expert's slot is never refilled under it.
     */
    @Test
    void externalSlotsAreFilledAndNamedByTheCache() throws Exception {
        ExpertKey[] held = new ExpertKey[3];              // what each slot holds, as the "device" sees it
        java.util.concurrent.atomic.AtomicInteger fills = new java.util.concurrent.atomic.AtomicInteger();
        ExpertCache.Slots device = (key, slot) -> {
            synchronized (held) { held[slot] = key; }
            fills.incrementAndGet();
        };
        try (ExpertCache c = new ExpertCache(new ExpertCache.Config(3 * EXPERT, EXPERT, new LinkModel(100e9, 0), true, 2),
                null, new LruPolicy(), Clock.SYSTEM, device)) {
            int pinned = c.acquireSlot(k(0, 7));           // stays pinned throughout
            for (int round = 0; round < 2; round++) {
                for (int e = 0; e < 5; e++) {
                    int slot = c.acquireSlot(k(1, e));
                    assertTrue(slot != pinned, "a pinned expert's slot was given to another");
                    synchronized (held) {
                        assertEquals(k(1, e), held[slot]);
                        assertEquals(k(0, 7), held[pinned]);
                    }
                    assertEquals(null, c.acquire(k(1, e)), "slots outside host memory have no host view");
                    c.release(k(1, e));
                    c.release(k(1, e));
                }
            }
            assertEquals(1 + 10, fills.get(), "two slots cycle five experts: every access a miss, one fill each");
            assertEquals(11, c.stats().misses());
            c.release(k(0, 7));
        }
        assertThrows(IllegalArgumentException.class, () -> new ExpertCache(new ExpertCache.Config(3 * EXPERT, EXPERT,
                LINK, true), null, new LruPolicy(), Clock.SYSTEM, null), "host slots need a source");
    }
}
