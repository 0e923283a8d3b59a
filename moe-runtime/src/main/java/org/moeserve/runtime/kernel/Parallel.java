package org.moeserve.runtime.kernel;

import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.atomic.AtomicInteger;
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

    private final int threads;
    private final Thread[] workers;
    private final BlockingQueue<Job> queue;

    private static final class Job {
        final Body body;
        final int n;
        final AtomicInteger next = new AtomicInteger();
        final AtomicInteger done = new AtomicInteger();
        final AtomicReference<Throwable> error = new AtomicReference<>();
        final Thread owner = Thread.currentThread();

        Job(Body body, int n) { this.body = body; this.n = n; }

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

    /** How long a caller whose own chunks are done spins for the workers' before it parks. */
    private static final long CALLER_SPIN_NS = 100_000;

    public Parallel(int threads) {
        if (threads < 1) throw new IllegalArgumentException("threads is " + threads + " but must be >= 1");
        this.threads = threads;
        this.reads = new ReadPattern(threads);
        this.workers = new Thread[threads - 1];
        this.queue = new ArrayBlockingQueue<>(Math.max(1, threads * 4));
        for (int i = 0; i < workers.length; i++) {
            workers[i] = Thread.ofPlatform().daemon().name("moe-kernel-" + (i + 1)).start(this::loop);
        }
    }

    public int threads() { return threads; }

    private volatile boolean awake;

    /**
     * Keeps the workers spinning for the next fork instead of parking, from now until {@link #sleep}: for a decode
     * step, whose forks come tens of microseconds apart, while waking a parked worker costs tens of microseconds on a
     * VM. Outside such a stretch idle workers park, so they take no CPU from the rest of the process. Measured
     * against a pool whose workers park (one process, alternating every 32 tokens of V2-Lite-shaped decode, two
     * threads): +2% in the stretches when each thread gets a core's bandwidth, +0.5% while the memory binds.
     */
    public void wake() { awake = threads > 1; }

    /** Ends {@link #wake}: idle workers park again. */
    public void sleep() { awake = false; }

    private final ReadPattern reads;

    /** How this pool's threads read decode's weight rows (tuned by decode steps' times). */
    public ReadPattern reads() { return reads; }

    private void loop() {
        try {
            while (true) {
                Job j = null;
                while (awake && (j = queue.poll()) == null) Thread.onSpinWait();
                if (j == null) j = queue.take();
                if (j.body == null) return;
                j.work();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
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
        for (int w = 0; w < Math.min(workers.length, n - 1); w++) queue.offer(job);
        job.work();
        // the workers' last chunks are short (tens of microseconds): spin for them before parking, since a parked
        // caller's wake-up costs as much again on a VM
        for (long until = System.nanoTime() + CALLER_SPIN_NS; job.done.get() < n; ) {
            if (System.nanoTime() < until) Thread.onSpinWait();
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

    @Override
    public void close() {
        if (this == SERIAL) return;
        for (Thread ignored : workers) queue.offer(new Job(null, 0));
    }
}
