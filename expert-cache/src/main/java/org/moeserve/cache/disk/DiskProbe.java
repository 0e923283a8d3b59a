package org.moeserve.cache.disk;

import org.moeserve.units.LinkModel;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;

/**
 * Measures a disk as a link: the latency of a small read and the bandwidth of reads of one expert's size, from
 * real reads of the file. Cheap enough for start-up (a few experts' worth of bytes).
 */
public final class DiskProbe {
    private DiskProbe() {}

    /** A byte range of a file to read while measuring. */
    public record Range(DirectFile file, long offset, long length) {}

    /**
     * The link {@code ranges} measure: latency = median time of a 4 KiB read at each range's start; bandwidth =
     * bytes over (median time of reading each whole range, less that latency). Reads the ranges {@code reps} times
     * (direct reads are cold each time; buffered ones are dropped from the page cache after each read).
     */
    public static LinkModel measure(List<Range> ranges, int reps) {
        if (ranges.isEmpty()) throw new IllegalArgumentException("nothing to measure: no ranges");
        long max = ranges.stream().mapToLong(Range::length).max().orElseThrow();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(max, DirectFile.ALIGN);
            long[] small = new long[ranges.size() * reps];
            double[] perByte = new double[ranges.size() * reps];
            int i = 0;
            for (int r = 0; r < reps; r++) {
                for (Range g : ranges) {
                    long t0 = System.nanoTime();
                    g.file().read(g.offset() & -DirectFile.ALIGN, buf.asSlice(0, Math.min(DirectFile.ALIGN, max)));
                    long t1 = System.nanoTime();
                    g.file().read(g.offset(), buf.asSlice(0, g.length()));
                    long t2 = System.nanoTime();
                    small[i] = t1 - t0;
                    perByte[i++] = (double) (t2 - t1) / g.length();
                }
            }
            Arrays.sort(small);
            Arrays.sort(perByte);
            long latency = small[small.length / 2];
            double nanosPerByte = perByte[perByte.length / 2];
            double transfer = Math.max(nanosPerByte * max - latency, max * 1e-3); // at most 1 TB/s: a sane floor
            return new LinkModel(max / transfer * 1e9, latency);
        }
    }
}
