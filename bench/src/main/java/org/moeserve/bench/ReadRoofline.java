package org.moeserve.bench;

import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorSpecies;
import org.moeserve.runtime.kernel.Parallel;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The bandwidth roofline of a given set of bytes: bare vector reads of exactly those segments (an integer add per
 * vector, nothing else), split over a pool's threads in contiguous pieces, as one stream per piece, two streams half
 * a piece apart and four a quarter apart (the patterns decode's kernels read with, {@code ReadPattern}); the fastest
 * pass is the roofline. Decode reads the same bytes, in the same process
 * and the same minute, so decode GB/s over this says how close the kernels come to what the memory gives those
 * bytes, whatever the page size they are mapped with and whatever the host's neighbours take that minute (this
 * project's reference VM moved its triad 20-50% between runs, so a roofline from another run says little).
 */
final class ReadRoofline {
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
    private static final int VEC = I.vectorByteSize(), CHUNK = 1 << 16;
    private final List<MemorySegment> chunks = new ArrayList<>();
    /** Bytes one pass reads: every segment, less any tail shorter than a vector. */
    final long bytes;
    private static volatile int sink;

    ReadRoofline(List<MemorySegment> segments) {
        long b = 0;
        for (MemorySegment s : segments) {
            long whole = s.byteSize() - s.byteSize() % VEC;
            for (long o = 0; o < whole; o += CHUNK) chunks.add(s.asSlice(o, Math.min(CHUNK, whole - o)));
            b += whole;
        }
        bytes = b;
    }

    /** A new series of passes: one pass of each pattern per {@link Samples#take}. */
    Samples samples() { return new Samples(); }

    /**
     * Passes of both patterns, taken between blocks of the work they are a roofline for (one pass is tens of
     * milliseconds: a roofline from one moment catches bursts the host gives for a moment and the work never sees).
     */
    final class Samples {
        private final List<Double> one = new ArrayList<>(), two = new ArrayList<>(), four = new ArrayList<>();

        void take(Parallel par) {
            one.add(pass(par, 1));
            two.add(pass(par, 2));
            four.add(pass(par, 4));
        }

        /** GB/s of the fastest pattern, each pattern's pass time the median of its samples. */
        double gbPerSecond() {
            return bytes / Math.min(median(one), Math.min(median(two), median(four))) / 1e9;
        }

        private static double median(List<Double> xs) {
            return Bench.median(xs.stream().mapToDouble(Double::doubleValue).toArray());
        }
    }

    private double pass(Parallel par, int streams) {
        int n = chunks.size(), pieces = Math.max(1, Math.min(n, par.threads() * 4));
        long t0 = System.nanoTime();
        par.forEach(pieces, p -> {
            int lo = (int) ((long) n * p / pieces), hi = (int) ((long) n * (p + 1) / pieces), s = 0, i = lo;
            if (streams == 4) {
                int q = (hi - lo) / 4;
                for (int k = 0; k < q; k++) {
                    s += readFour(chunks.get(lo + k), chunks.get(lo + q + k), chunks.get(lo + 2 * q + k), chunks.get(lo + 3 * q + k));
                }
                i = lo + 4 * q;
            } else if (streams == 2) {
                int half = (hi - lo) / 2;
                for (int k = 0; k < half; k++) s += readTwo(chunks.get(lo + k), chunks.get(lo + half + k));
                i = lo + 2 * half;
            }
            for (; i < hi; i++) s += read(chunks.get(i));
            sink += s;
        });
        return (System.nanoTime() - t0) / 1e9;
    }

    private static int read(MemorySegment c) {
        return readFrom(c, 0);
    }

    /** Chunk c from byte {@code from} to its end: one stream, and the tails of the multi-stream reads. */
    private static int readFrom(MemorySegment c, long from) {
        IntVector acc = IntVector.zero(I);
        for (long o = from, n = c.byteSize(); o < n; o += VEC) acc = acc.add(IntVector.fromMemorySegment(I, c, o, ByteOrder.LITTLE_ENDIAN));
        return acc.lane(0);
    }

    /** Two chunks at once: two streams. */
    private static int readTwo(MemorySegment a, MemorySegment b) {
        IntVector x = IntVector.zero(I), y = x;
        long n = Math.min(a.byteSize(), b.byteSize());
        for (long o = 0; o < n; o += VEC) {
            x = x.add(IntVector.fromMemorySegment(I, a, o, ByteOrder.LITTLE_ENDIAN));
            y = y.add(IntVector.fromMemorySegment(I, b, o, ByteOrder.LITTLE_ENDIAN));
        }
        return x.lane(0) + y.lane(0) + readFrom(a, n) + readFrom(b, n);
    }

    /** Four chunks at once: four streams. */
    private static int readFour(MemorySegment a, MemorySegment b, MemorySegment c, MemorySegment d) {
        IntVector x = IntVector.zero(I), y = x, z = x, w = x;
        long n = Math.min(Math.min(a.byteSize(), b.byteSize()), Math.min(c.byteSize(), d.byteSize()));
        for (long o = 0; o < n; o += VEC) {
            x = x.add(IntVector.fromMemorySegment(I, a, o, ByteOrder.LITTLE_ENDIAN));
            y = y.add(IntVector.fromMemorySegment(I, b, o, ByteOrder.LITTLE_ENDIAN));
            z = z.add(IntVector.fromMemorySegment(I, c, o, ByteOrder.LITTLE_ENDIAN));
            w = w.add(IntVector.fromMemorySegment(I, d, o, ByteOrder.LITTLE_ENDIAN));
        }
        return x.lane(0) + y.lane(0) + z.lane(0) + w.lane(0) + readFrom(a, n) + readFrom(b, n) + readFrom(c, n) + readFrom(d, n);
    }

    /**
     * The share of the mappings' resident bytes mapped with huge pages (the sum of FilePmdMapped over Rss of every
     * area of /proc/self/smaps inside them); -1 where smaps cannot be read (not Linux).
     */
    static double hugeMappedShare(List<MemorySegment> mappings) {
        List<String> lines;
        try {
            lines = Files.readAllLines(Path.of("/proc/self/smaps"));
        } catch (IOException | UnsupportedOperationException e) {
            return -1;
        }
        long rss = 0, pmd = 0;
        boolean inside = false;
        for (String line : lines) {
            int dash = line.indexOf('-'), space = line.indexOf(' ');
            if (dash > 0 && space > dash && line.substring(0, dash).matches("[0-9a-f]+")) {
                long start = Long.parseUnsignedLong(line.substring(0, dash), 16), end = Long.parseUnsignedLong(line.substring(dash + 1, space), 16);
                inside = false;
                for (MemorySegment m : mappings) inside |= start < m.address() + m.byteSize() && m.address() < end;
            } else if (inside && line.startsWith("Rss:")) {
                rss += kilobytes(line);
            } else if (inside && line.startsWith("FilePmdMapped:")) {
                pmd += kilobytes(line);
            }
        }
        return rss == 0 ? 0 : (double) pmd / rss;
    }

    private static long kilobytes(String line) {
        return Long.parseLong(line.replaceAll("[^0-9]", ""));
    }
}
