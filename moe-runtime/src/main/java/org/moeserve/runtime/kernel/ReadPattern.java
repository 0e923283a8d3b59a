package org.moeserve.runtime.kernel;

import java.util.Arrays;

/**
 * How a pool's threads read decode's weight rows: one, two or four rows at once per thread, each a fraction of the
 * thread's piece apart (that many sequential memory streams a thread). On this project's 2-vCPU VM, V2-Lite-shaped
 * decode on two threads, the three patterns alternating every 16 tokens in one process for four minutes: in the
 * stretches when each thread gets a core's bandwidth (a bare read of about 50 GB/s), four rows and two read 87-88% of
 * a bare read and one row 77%, since one stream is what limits a thread there (as it does one thread alone); while
 * the threads share the memory's bandwidth (a bare read of about 33 GB/s), four rows 96%, one 94%, two 93%. So a pool
 * of several threads starts with four rows, one thread with two (four measured the same there). Another host may
 * rank them otherwise, so one single-row decode step in {@value #EXPLORE_EVERY} reads another way (the other two
 * patterns in turn) and is timed against the step before it (a ratio, so the host's drift between the two cancels);
 * when a pattern's average ratio says it is at least 3% faster, it becomes the pattern (one step in 32: exploring one row in a fast stretch
 * costs 13% of that step, and at one in 16 the tuned pool read 0.5-1% below a pool held to four rows). An output's bits are the same
 * every way ({@link Kernels#rowsBf16}), so the choice changes speed only.
 */
public final class ReadPattern {
    static final int EXPLORE_EVERY = 32;
    /** The patterns: rows (streams) a thread reads at once. */
    static final int[] STREAMS = {1, 2, 4};
    private static final double ALPHA = 0.3, SWITCH = 0.97;
    private static final int MIN_SAMPLES = 3;

    private volatile int streams;
    private int best, exploring = -1, turn, pinned = -1;
    private long steps, lastBest = -1;
    private final double[] ratio = new double[STREAMS.length];
    private final int[] samples = new int[STREAMS.length];

    /** Starts with four rows a thread for a pool of several threads, two rows for one thread. */
    public ReadPattern(int threads) {
        best = threads > 1 ? 2 : 1;
        streams = STREAMS[best];
    }

    /** Rows (memory streams) each thread reads at once now: 1, 2 or 4. */
    public int streams() { return streams; }

    /** Holds the pattern at {@code rows} (1, 2 or 4) and stops tuning: for benchmarks that compare patterns. */
    public synchronized void pin(int rows) {
        int i = Arrays.binarySearch(STREAMS, rows);
        if (i < 0) throw new IllegalArgumentException("rows at once is " + rows + " but must be 1, 2 or 4");
        pinned = best = i;
        streams = rows;
    }

    /** Before a decode step: the pattern it reads with (the fastest, or now and then another to time it). */
    public synchronized void beginStep() {
        if (pinned >= 0) return;
        exploring = -1;
        if (++steps % EXPLORE_EVERY == 0 && lastBest > 0) {
            turn ^= 1;
            exploring = (best + 1 + turn) % STREAMS.length;
        }
        streams = STREAMS[exploring >= 0 ? exploring : best];
    }

    /** After the step begun last: its wall time, which updates the comparison and maybe the choice. */
    public synchronized void endStep(long nanos) {
        if (pinned >= 0) return;
        if (exploring >= 0) {
            double r = (double) nanos / lastBest;
            int e = exploring;
            ratio[e] = samples[e] == 0 ? r : ratio[e] + ALPHA * (r - ratio[e]);
            if (++samples[e] >= MIN_SAMPLES && ratio[e] < SWITCH) {
                best = e;
                Arrays.fill(samples, 0);
                lastBest = nanos;
            }
        } else {
            lastBest = nanos;
        }
        exploring = -1;
        streams = STREAMS[best];
    }

    /** The pattern in use between explorations: rows a thread reads at once. */
    public synchronized int favoured() { return STREAMS[best]; }
}
