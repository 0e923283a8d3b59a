package org.moeserve.bench;

import org.moeserve.cache.disk.DirectFile;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The disk as the disk tier sees it: direct reads ({@link DirectFile}) of one size at random aligned offsets of a
 * file, by D threads at once (queue depth D, each thread one synchronous pread at a time), for a fixed time per cell.
 * Reports MB/s and the median and p99 latency per read, by read size and depth. Direct reads bypass the page
 * cache, so every read reaches the device; where the file system refuses direct I/O the table says "buffered".
 */
final class DiskBandwidth {
    static void run(Path file, long[] sizes, int[] depths, double seconds) throws Exception {
        long fileSize = Files.size(file);
        try (DirectFile f = DirectFile.open(file, true)) {
            System.out.println("machine: " + Bench.machine());
            System.out.printf(Locale.ROOT, "file: %s (%.2f GB), %s, %.1f s per cell%n", file, fileSize / 1e9,
                    f.direct() ? "direct I/O" : "buffered (" + f.fallbackReason() + ")", seconds);
            System.out.println("| read size | depth | MB/s | reads/s | median latency (us) | p99 latency (us) |");
            System.out.println("|---|---|---|---|---|---|");
            for (long size : sizes) {
                if (size > fileSize) throw new IllegalArgumentException("read size " + size + " exceeds the file's " + fileSize + " bytes");
                for (int depth : depths) {
                    ExecutorService pool = Executors.newFixedThreadPool(depth);
                    long end = System.nanoTime() + (long) (seconds * 1e9), t0 = System.nanoTime();
                    List<Future<long[]>> parts = new ArrayList<>();
                    for (int d = 0; d < depth; d++) {
                        int seed = d;
                        parts.add(pool.submit(() -> {
                            SplittableRandom rng = new SplittableRandom(seed * 31L + size);
                            long[] lat = new long[1 << 16];
                            int n = 0;
                            try (Arena a = Arena.ofConfined()) {
                                MemorySegment buf = a.allocate(size, DirectFile.ALIGN);
                                long slots = (fileSize - size) / DirectFile.ALIGN + 1;
                                while (System.nanoTime() < end) {
                                    long off = rng.nextLong(slots) * DirectFile.ALIGN, s = System.nanoTime();
                                    f.read(off, buf);
                                    if (n == lat.length) lat = Arrays.copyOf(lat, n * 2);
                                    lat[n++] = System.nanoTime() - s;
                                }
                            }
                            return Arrays.copyOf(lat, n);
                        }));
                    }
                    List<Long> all = new ArrayList<>();
                    for (Future<long[]> p : parts) for (long l : p.get()) all.add(l);
                    double wall = (System.nanoTime() - t0) / 1e9;
                    pool.shutdown();
                    long[] lat = all.stream().mapToLong(Long::longValue).sorted().toArray();
                    System.out.printf(Locale.ROOT, "| %s | %d | %.0f | %.0f | %.0f | %.0f |%n", human(size), depth,
                            lat.length * (double) size / wall / 1e6, lat.length / wall,
                            lat[lat.length / 2] / 1e3, lat[Math.min(lat.length - 1, (int) (lat.length * 0.99))] / 1e3);
                }
            }
        }
    }

    static String human(long b) {
        return b >= 1 << 20 && b % (1 << 20) == 0 ? (b >> 20) + " MiB" : b >= 1024 && b % 1024 == 0 ? (b >> 10) + " KiB" : b + " B";
    }
}
