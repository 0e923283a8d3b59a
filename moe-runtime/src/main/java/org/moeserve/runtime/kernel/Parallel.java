package org.moeserve.runtime.kernel;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed set of worker threads for data-parallel loops: {@link #forEach(int, Body)} runs body(0..n-1) on the
 * caller plus {@code threads - 1} workers, pulling indices from a shared counter, and returns when all are done.
 * Each index writes only its own outputs, so results do not depend on the thread count or on scheduling. Not
 * re-entrant: a body must not call forEach on the same pool (kernels take a {@code Parallel} or {@link #SERIAL}).
 */
public final class Parallel implements AutoCloseable {
    @FunctionalInterface
    public interface Body { void run(int index); }

    /** Runs everything on the caller. */
    public static final Parallel SERIAL = new Parallel(1);

    /**
     * How long an idle worker (and a caller waiting for its fork to finish) spins before it parks. Waking a parked
     * thread costs tens of microseconds here, and decode forks every few hundred microseconds (53 forks a token on
     * V2-Lite's shape: about 2.5 ms a token in wake-ups when every worker parked); a spin that outlasts the gap
     * between forks keeps the workers awake through a token. 0 parks at once. {@code -Dmoe.spin.us=N}.
     */
    static final long SPIN_NANOS = Long.getLong("moe.spin.us", 2000) * 1000;

    private final int threads;
    private final Thread[] workers;
    private final AtomicIntegerArray parked;     // 1 while worker i is (about to be) parked
    private volatile Job current;                // the latest fork; workers help with each job once

    private static final class Job {
        final Body body;
        final int n;
        final AtomicInteger next = new AtomicInteger();
        final AtomicInteger done = new AtomicInteger();
        final AtomicReference<Throwable> error = new AtomicReference<>();
        final Thread owner = Thread.currentThread();

        Job(Body body, int n) { this.body = body; this.n = n; }

        boolean finished() { return done.get() >= n; }

        void work() {
            int i;
            while ((i = next.getAndIncrement()) < n) {
                try {
                    if (error.get() == null) body.run(i);
                } catch (Throwable t) {
                    error.compareAndSet(null, t);
                } finally {
                    if (done.incrementAndGet() == n) LockSupport.unpark(owner);
                }
            }
        }
    }

    public Parallel(int threads) {
        if (threads < 1) throw new IllegalArgumentException("threads is " + threads + " but must be >= 1");
        this.threads = threads;
        this.workers = new Thread[threads - 1];
        this.parked = new AtomicIntegerArray(Math.max(1, threads - 1));
        for (int i = 0; i < workers.length; i++) {
            int id = i;
            workers[i] = Thread.ofPlatform().daemon().name("moe-kernel-" + (i + 1)).start(() -> loop(id));
        }
    }

    public int threads() { return threads; }

    /** A worker: helps with each new job once; between jobs it spins for {@link #SPIN_NANOS}, then parks. */
    private void loop(int id) {
        Job seen = null;
        while (true) {
            Job j = current;
            long spinUntil = System.nanoTime() + SPIN_NANOS;
            while (j == seen) {
                if (System.nanoTime() < spinUntil) {
                    Thread.onSpinWait();
                } else { // announce the park, then look again: a fork either sees the flag or is seen here
                    parked.set(id, 1);
                    if ((j = current) == seen) LockSupport.park(this);
                    parked.set(id, 0);
                    spinUntil = System.nanoTime() + SPIN_NANOS;
                }
                j = current;
            }
            seen = j;
            if (j.body == null) return;
            j.work();
        }
    }

    /** Runs body(i) for i in [0, n); blocks until all are done; rethrows the first failure. */
    public void forEach(int n, Body body) {
        if (n <= 0) return;
        if (threads == 1 || n == 1) {
            for (int i = 0; i < n; i++) body.run(i);
            return;
        }
        Job job = new Job(body, n);
        publish(job);
        job.work();
        long spinUntil = System.nanoTime() + SPIN_NANOS;
        while (!job.finished()) {
            if (System.nanoTime() < spinUntil) Thread.onSpinWait();
            else LockSupport.park(this);
        }
        Throwable t = job.error.get();
        if (t instanceof RuntimeException re) throw re;
        if (t instanceof Error er) throw er;
        if (t != null) throw new RuntimeException(t);
    }

    /**
     * Chunks per thread of a range: the last chunk a thread takes decides when a fork ends, so a chunk is at most a
     * sixteenth of a thread's share (4 per thread left 2 threads 92% of the read roofline on V2-Lite-shaped decode,
     * 16 gave 95%, alternating rep by rep in one process; one thread does not split).
     */
    private static final int CHUNKS_PER_THREAD = 16;

    /** Splits [0, n) into about 16 chunks per thread of at least {@code grain} and runs body(lo, hi) on each. */
    public void forRange(int n, int grain, RangeBody body) {
        int chunks = Math.max(1, Math.min(threads * CHUNKS_PER_THREAD, n / Math.max(1, grain)));
        if (threads == 1 || chunks == 1) {
            body.run(0, n);
            return;
        }
        forEach(chunks, c -> body.run((int) ((long) n * c / chunks), (int) ((long) n * (c + 1) / chunks)));
    }

    @FunctionalInterface
    public interface RangeBody { void run(int lo, int hi); }

    /**
     * Makes job the one workers help with, waking the parked ones. A second caller forking at the same time replaces
     * it: the first job loses help, not work (its caller runs every index nobody else took).
     */
    private void publish(Job job) {
        current = job;
        for (int i = 0; i < workers.length; i++) if (parked.get(i) == 1) LockSupport.unpark(workers[i]);
    }

    @Override
    public void close() {
        if (this == SERIAL) return;
        publish(new Job(null, 0));
    }
}
