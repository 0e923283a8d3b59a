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
}
