package org.moeserve.cache.disk;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.moeserve.units.LinkModel;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Direct reads of real files: unaligned ranges come back byte-exact, directly or through the buffered fallback. */
class DirectFileTest {
    static final int SIZE = 19 * 1024 * 1024 + 1234; // not a multiple of the alignment: the last superset runs past the end

    static byte[] randomFile(Path f) throws IOException {
        byte[] bytes = new byte[SIZE];
        new SplittableRandom(7).nextBytes(bytes);
        Files.write(f, bytes);
        return bytes;
    }

    /** Ranges of every alignment case: aligned, unaligned start, unaligned end, tiny, up to the last byte. */
    static final long[][] RANGES = {{0, 4096}, {4096, 65536}, {1, 100}, {4095, 2}, {12345, 200_001}, {SIZE - 77, 77},
            {SIZE - 300_000, 300_000}, {8192, 1}, {1 << 20, 1 << 20},
            {12345, 17 << 20}, {SIZE - (9 << 20) - 5, (9 << 20) + 5}}; // beyond one bounce window, to the last byte

    static void readsExactly(DirectFile f, byte[] bytes) {
        try (Arena a = Arena.ofConfined()) {
            for (long[] r : RANGES) {
                MemorySegment dst = a.allocate(r[1] + 8).asSlice(3, r[1]); // an unaligned destination too
                f.read(r[0], dst);
                byte[] want = java.util.Arrays.copyOfRange(bytes, (int) r[0], (int) (r[0] + r[1]));
                assertArrayEquals(want, dst.toArray(ValueLayout.JAVA_BYTE), "range " + r[0] + "+" + r[1]);
            }
            MemorySegment aligned = a.allocate(1 << 20, DirectFile.ALIGN); // the no-bounce path
            f.read(1 << 20, aligned);
            assertArrayEquals(java.util.Arrays.copyOfRange(bytes, 1 << 20, 2 << 20), aligned.toArray(ValueLayout.JAVA_BYTE));
        }
    }

    /** A folder on the checkout's file system (where checkpoints live), not /tmp, which may be a RAM file system. */
    @TempDir(factory = InTarget.class)
    Path dir;

    /** Temp folders under the module's target/. */
    static final class InTarget implements org.junit.jupiter.api.io.TempDirFactory {
        @Override
        public Path createTempDirectory(org.junit.jupiter.api.extension.AnnotatedElementContext e,
                                        org.junit.jupiter.api.extension.ExtensionContext c) throws IOException {
            Path target = Files.createDirectories(Path.of("target"));
            return Files.createTempDirectory(target, "direct-");
        }
    }

    @Test
    void directReadsOfUnalignedRangesAreByteExact() throws IOException {
        Path p = dir.resolve("data.bin");
        byte[] bytes = randomFile(p);
        try (DirectFile f = DirectFile.open(p, true)) {
            assertTrue(f.direct(), "the checkout's file system takes direct I/O: " + f.fallbackReason());
            readsExactly(f, bytes);
        }
        try (DirectFile f = DirectFile.open(p, false)) {
            assertFalse(f.direct());
            readsExactly(f, bytes);
        }
    }

    @Test
    void aRefusedDirectReadFallsBackToBufferedReadsAndSaysWhy() throws IOException {
        Path p = dir.resolve("data.bin");
        byte[] bytes = randomFile(p);
        try (DirectFile f = DirectFile.open(p, true); Arena a = Arena.ofConfined()) {
            assertTrue(f.direct(), "the checkout's file system takes direct I/O: " + f.fallbackReason());
            MemorySegment dst = a.allocate(1000).asSlice(1, 999);
            f.readUnaligned(1, dst); // misaligned: the kernel answers EINVAL, as a file system without O_DIRECT does
            assertFalse(f.direct());
            assertTrue(f.fallbackReason().contains("refused a direct read (EINVAL)"), f.fallbackReason());
            assertArrayEquals(java.util.Arrays.copyOfRange(bytes, 1, 1000), dst.toArray(ValueLayout.JAVA_BYTE));
            readsExactly(f, bytes); // and every later read is buffered, and right
        }
    }

    @Test
    void measuresTheDiskAndNamesMissingFilesAndShortReads() throws IOException {
        Path p = dir.resolve("data.bin");
        randomFile(p);
        try (DirectFile f = DirectFile.open(p, true)) {
            LinkModel link = DiskProbe.measure(List.of(new DiskProbe.Load(List.of(new DiskProbe.Range(f, 5000, 500_000))),
                    new DiskProbe.Load(List.of(new DiskProbe.Range(f, 1 << 21, 200_000), new DiskProbe.Range(f, 1 << 22, 300_000)))), 2);
            assertTrue(link.bytesPerSecond() > 1e6 && link.latencyNanos() > 0, link.toString());
            try (Arena a = Arena.ofConfined()) {
                UncheckedIOException e = assertThrows(UncheckedIOException.class, () -> f.read(SIZE - 10, a.allocate(100)));
                assertTrue(e.getMessage().contains("short read"), e.getMessage());
            }
        }
        UncheckedIOException e = assertThrows(UncheckedIOException.class, () -> DirectFile.open(dir.resolve("nope.bin"), true));
        assertTrue(e.getMessage().contains("nope.bin") && e.getMessage().contains("no such file"), e.getMessage());
    }
}
