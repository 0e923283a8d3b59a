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

    /** A byte range of a file. */
    public record Range(DirectFile file, long offset, long length) {}

    /** One load: ranges read back to back into one buffer (an expert is its gate, up and down tensors). */
    public record Load(List<Range> parts) {
        public long bytes() { return parts.stream().mapToLong(Range::length).sum(); }

        /** Reads every part into dst, one after another: what the disk tier does for one expert. */
        public void readInto(MemorySegment dst) {
            long off = 0;
            for (Range r : parts) {
                r.file().read(r.offset(), dst.asSlice(off, r.length()));
                off += r.length();
            }
        }
    }

    /**
     * The link the loads measure, such that one load of the largest size takes the median measured time: latency =
     * median time of a 4 KiB read at each load's first byte; bandwidth = bytes / (median load time - latency). Each
     * part of a load pays the disk's latency, so a load of three tensors costs more than one read of its bytes. Reads
     * every load {@code reps} times (direct reads are cold each time; buffered ones are dropped from the page cache).
     */
    public static LinkModel measure(List<Load> loads, int reps) {
        if (loads.isEmpty()) throw new IllegalArgumentException("nothing to measure: no loads");
        long max = loads.stream().mapToLong(Load::bytes).max().orElseThrow();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(max, DirectFile.ALIGN);
            long[] small = new long[loads.size() * reps];
            double[] perByte = new double[loads.size() * reps];
            int i = 0;
            for (int r = 0; r < reps; r++) {
                for (Load l : loads) {
                    Range first = l.parts().getFirst();
                    long t0 = System.nanoTime();
                    first.file().read(first.offset() & -DirectFile.ALIGN, buf.asSlice(0, Math.min(DirectFile.ALIGN, max)));
                    long t1 = System.nanoTime();
                    l.readInto(buf);
                    long t2 = System.nanoTime();
                    small[i] = t1 - t0;
                    perByte[i++] = (double) (t2 - t1) / l.bytes();
                }
            }
            Arrays.sort(small);
            Arrays.sort(perByte);
            long latency = small[small.length / 2];
            double transfer = Math.max(perByte[perByte.length / 2] * max - latency, max * 1e-3); // at most 1 TB/s
            return new LinkModel(max / transfer * 1e9, latency);
        }
    }
}
