package org.moeserve.cache;

import java.util.concurrent.locks.LockSupport;

/**
 * Time for the cache and its link: the system clock when experts really move, a virtual clock when a trace is
 * replayed ({@code moe cache-sim}), so both run the same cache and link code.
 */
public interface Clock {
    long nanoTime();

    /** Returns once {@link #nanoTime()} >= t (a virtual clock jumps there). */
    void waitUntil(long t);

    Clock SYSTEM = new Clock() {
        @Override
        public long nanoTime() { return System.nanoTime(); }

        /** Parks while far off, then spins: parkNanos alone oversleeps by the timer slack (~50 us). */
        @Override
        public void waitUntil(long t) {
            long left;
            while ((left = t - System.nanoTime()) > 0) {
                if (left > 200_000) LockSupport.parkNanos(left - 100_000);
                else Thread.onSpinWait();
            }
        }
    };

    /** A clock that moves only when told to: by {@link #advance} (modelled compute) or by waiting. */
    final class Virtual implements Clock {
        private long now;

        @Override
        public long nanoTime() { return now; }

        @Override
        public void waitUntil(long t) { now = Math.max(now, t); }

        public void advance(long nanos) { now += nanos; }
    }
}
