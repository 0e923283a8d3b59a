package org.moeserve.runtime.kernel;

/**
 * How a pool's threads read decode's weight rows: one row at a time each, or two rows half a chunk apart (two memory
 * streams a thread), chosen from the decode steps' own times. Which is faster moves with this project's 2-vCPU VM
 * from second to second. V2-Lite-shaped decode on two threads, the patterns alternating every 16 tokens in one
 * process for a minute: while the two threads share the memory's bandwidth (a bare read of 31-35 GB/s) both read
 * 30-33 GB/s; in the stretches when each thread gets a core's bandwidth (a bare read of 50-55 GB/s), one row each
 * read 38-41 GB/s and two rows 43-46, since one stream is what limits a thread there (as it does one thread alone).
 * Earlier, with coarser chunks, two rows each had measured 4-8% slower in memory-bound minutes. So every
 * {@value #EXPLORE_EVERY}th single-row decode step reads the other way and is timed against the step before it (a
 * ratio, so the host's drift between the two cancels); when the average ratio says the other way is at least 3%
 * faster, it becomes the pattern. An output's bits are the same either way ({@link Kernels#rowsBf16}), so the choice
 * changes speed only.
 */
public final class ReadPattern {
    static final int EXPLORE_EVERY = 8;
    private static final double ALPHA = 0.3, SWITCH = 0.97;
    private static final int MIN_SAMPLES = 3;

    private volatile boolean pairs;
    private boolean best, exploring;
    private long steps, lastBest = -1;
    private double ratio;
    private int samples;

    /** Whether the kernels read two rows at a time per thread now. */
    public boolean pairs() { return pairs; }

    /** Before a decode step: the pattern it reads with (the faster one, or now and then the other to time it). */
    public synchronized void beginStep() {
        exploring = ++steps % EXPLORE_EVERY == 0 && lastBest > 0;
        pairs = exploring != best;
    }

    /** After the step begun last: its wall time, which updates the comparison and maybe the choice. */
    public synchronized void endStep(long nanos) {
        if (exploring) {
            double r = (double) nanos / lastBest;
            ratio = samples == 0 ? r : ratio + ALPHA * (r - ratio);
            if (++samples >= MIN_SAMPLES && ratio < SWITCH) {
                best = !best;
                samples = 0;
                lastBest = nanos;
            }
        } else {
            lastBest = nanos;
        }
        exploring = false;
        pairs = best;
    }

    /** The pattern in use now: true when each thread reads two rows at a time. */
    public synchronized boolean favoursPairs() { return best; }
}
