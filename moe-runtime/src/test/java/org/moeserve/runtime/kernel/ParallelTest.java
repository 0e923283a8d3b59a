package org.moeserve.runtime.kernel;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class ParallelTest {
    @Test
    void runsEveryIndexExactlyOnceAndPropagatesFailures() {
        try (Parallel p = new Parallel(3)) {
            for (int n : new int[]{0, 1, 2, 7, 1000}) {
                AtomicIntegerArray hits = new AtomicIntegerArray(Math.max(1, n));
                p.forEach(n, i -> hits.incrementAndGet(i));
                for (int i = 0; i < n; i++) assertEquals(1, hits.get(i), "index " + i + " of " + n);
            }
            AtomicIntegerArray covered = new AtomicIntegerArray(10_000);
            p.forRange(10_000, 10, (lo, hi) -> { for (int i = lo; i < hi; i++) covered.incrementAndGet(i); });
            for (int i = 0; i < 10_000; i++) assertEquals(1, covered.get(i));
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> p.forEach(50, i -> {
                if (i == 17) throw new IllegalStateException("boom at 17");
            }));
            assertEquals("boom at 17", e.getMessage());
            // the pool still works after a failure
            AtomicIntegerArray again = new AtomicIntegerArray(5);
            p.forEach(5, again::incrementAndGet);
            assertEquals(1, again.get(4));
        }
        assertThrows(IllegalArgumentException.class, () -> new Parallel(0));
    }

    /**
     * Two callers forking on one pool at once (a server's scheduler beside another engine) each get every index of
     * their own job run exactly once, with workers busy and with workers idle between bursts.
     */
    @Test
    void concurrentForksEachRunEveryIndexOnce() throws Exception {
        try (Parallel p = new Parallel(3)) {
            int rounds = 2_000, n = 64;
            AtomicIntegerArray[] hits = {new AtomicIntegerArray(rounds * n), new AtomicIntegerArray(rounds * n)};
            Thread[] callers = new Thread[2];
            java.util.concurrent.atomic.AtomicReference<Throwable> failed = new java.util.concurrent.atomic.AtomicReference<>();
            for (int c = 0; c < 2; c++) {
                AtomicIntegerArray mine = hits[c];
                callers[c] = Thread.ofPlatform().start(() -> {
                    try {
                        for (int r = 0; r < rounds; r++) {
                            int base = r * n;
                            p.forEach(n, i -> mine.incrementAndGet(base + i));
                            if (r % 500 == 0) Thread.sleep(5); // idle workers between bursts
                        }
                    } catch (Throwable t) {
                        failed.compareAndSet(null, t);
                    }
                });
            }
            for (Thread t : callers) t.join(60_000);
            if (failed.get() != null) throw new AssertionError(failed.get());
            for (AtomicIntegerArray h : hits) for (int i = 0; i < rounds * n; i++) assertEquals(1, h.get(i), "index " + i);
        }
    }
}
