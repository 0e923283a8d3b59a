package org.moeserve.cache.disk;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.file.Path;

/**
 * One read-only file read with direct I/O ({@code O_DIRECT}, through FFM: {@code open}, {@code pread}), so the
 * bytes bypass the kernel's page cache. Direct I/O wants the file offset, the length and the buffer aligned to the
 * device's block; a range that is not is read through an aligned superset in a per-thread bounce buffer. Where the
 * file system refuses direct I/O (tmpfs, some network file systems), the file is read buffered and each range is
 * dropped from the page cache after the read ({@code posix_fadvise(DONTNEED)}): {@link #direct()} says which, and
 * {@link #fallbackReason()} why. Thread-safe: {@code pread} has no file position, so many reads may be in flight.
 */
public final class DirectFile implements AutoCloseable {
    /** Alignment used for offsets, lengths and buffers: the page size, a multiple of every block size in use. */
    public static final int ALIGN = 4096;
    /** Largest read through a bounce buffer: what one reading thread holds besides the slots (8 MiB). */
    static final long WINDOW = 8L << 20;
    private static final int EINVAL = 22, EINTR = 4, POSIX_FADV_DONTNEED = 4;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final MethodHandle OPEN = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("open"),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT),
            Linker.Option.firstVariadicArg(2), Linker.Option.captureCallState("errno"));
    private static final MethodHandle PREAD = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("pread"),
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG),
            Linker.Option.captureCallState("errno"));
    private static final MethodHandle CLOSE = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("close"),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle FADVISE = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("posix_fadvise"),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));

    private static final MethodHandle MADVISE = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("madvise"),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
    private static final int MADV_RANDOM = 1, MADV_HUGEPAGE = 14, MADV_NOHUGEPAGE = 15;

    /**
     * Turns off read-ahead on a file mapping ({@code madvise(MADV_RANDOM)}, and {@code MADV_NOHUGEPAGE}, since a
     * huge-page mapping reads 2 MiB folios on a fault whatever the read-ahead): a fault reads its own page only, so
     * touching the resident weights (attention, norms) does not drag their neighbours, the experts, into the page
     * cache. False if the kernel refused (the mapping still works, with read-ahead).
     */
    public static boolean adviseRandom(MemorySegment mapping) {
        return advise(mapping, MADV_NOHUGEPAGE) & advise(mapping, MADV_RANDOM);
    }

    /**
     * Asks for huge pages on a file mapping of weights ({@code madvise(MADV_HUGEPAGE)}): where the kernel and the
     * file system support large folios in the page cache (ext4 and xfs on Linux 6.x), a fault then reads a 2 MiB
     * folio and maps it with one page-table entry. Decode streams every weight once per token, and with 4 KiB pages
     * that is a TLB miss per 4 KiB and a hardware prefetcher that stops at every page: a bare read of the same file
     * measured 3-10% faster through huge pages on this project's reference machine. Pages already in the page cache
     * as small folios stay small (`moe bench shape` reports the share actually mapped huge). False if refused
     * (older kernels, transparent huge pages off): harmless, the mapping works as before.
     */
    public static boolean adviseHugePages(MemorySegment mapping) {
        return advise(mapping, MADV_HUGEPAGE);
    }

    /** The advice numbers above are Linux's; elsewhere the same numbers mean other things or nothing. */
    private static final boolean LINUX = System.getProperty("os.name", "").startsWith("Linux");

    private static boolean advise(MemorySegment mapping, int advice) {
        if (!LINUX) return false;
        long start = mapping.address() & -ALIGN, end = mapping.address() + mapping.byteSize();
        try {
            return (int) MADVISE.invokeExact(MemorySegment.ofAddress(start), end - start, advice) == 0;
        } catch (Throwable t) {
            throw new IllegalStateException("madvise failed in FFM: " + t, t);
        }
    }

    /** Drops the file's cached pages in [offset, offset + length) ({@code posix_fadvise(DONTNEED)}): a cold start. */
    public void dropCached(long offset, long length) {
        try {
            int ignored = (int) FADVISE.invokeExact(fd, offset, length, POSIX_FADV_DONTNEED);
        } catch (Throwable t) {
            throw new IllegalStateException("posix_fadvise failed in FFM: " + t, t);
        }
    }

    /** O_DIRECT differs between architectures; 0 where we do not know it (then never direct). */
    static final int O_DIRECT = switch (System.getProperty("os.arch")) {
        case "amd64", "x86_64" -> 0x4000;
        case "aarch64", "arm" -> 0x10000;
        default -> 0;
    };

    private final Path path;
    private volatile int fd;
    private volatile boolean direct;
    private volatile String fallbackReason;
    /**
     * A reading thread's errno capture and bounce buffer, allocated once per thread (not per read, not per file):
     * at most {@link #WINDOW} bytes of bounce per thread, freed by the GC with the thread.
     */
    private static final ThreadLocal<Scratch> scratch = ThreadLocal.withInitial(Scratch::new);

    private static final class Scratch {
        final MemorySegment state = Arena.ofAuto().allocate(CAPTURE);
        MemorySegment bounce;

        /** An aligned buffer of at least n bytes (grown, never shrunk; at most {@link #WINDOW} is ever asked). */
        MemorySegment bounce(long n) {
            if (bounce == null || bounce.byteSize() < n) bounce = Arena.ofAuto().allocate(Math.max(n, Math.min(WINDOW, 1 << 20)), ALIGN);
            return bounce;
        }
    }

    private DirectFile(Path path, int fd, boolean direct, String fallbackReason) {
        this.path = path;
        this.fd = fd;
        this.direct = direct;
        this.fallbackReason = fallbackReason;
    }

    /** Opens {@code path} for direct reads, or buffered ones where direct I/O is refused (or {@code tryDirect} is false). */
    public static DirectFile open(Path path, boolean tryDirect) {
        String reason = tryDirect ? null : "direct I/O not asked for";
        if (tryDirect && O_DIRECT == 0) reason = "O_DIRECT unknown on " + System.getProperty("os.arch");
        if (reason == null) {
            int[] errno = new int[1];
            int fd = openRaw(path, O_DIRECT, errno);
            if (fd >= 0) return new DirectFile(path, fd, true, null);
            if (errno[0] != EINVAL) throw new UncheckedIOException(new IOException(path + ": cannot open: errno " + errno[0] + " (" + describe(errno[0]) + ")"));
            reason = "the file system refused O_DIRECT (EINVAL)";
        }
        int[] errno = new int[1];
        int fd = openRaw(path, 0, errno);
        if (fd < 0) throw new UncheckedIOException(new IOException(path + ": cannot open: errno " + errno[0] + " (" + describe(errno[0]) + ")"));
        return new DirectFile(path, fd, false, reason);
    }

    private static int openRaw(Path path, int flags, int[] errno) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment state = a.allocate(CAPTURE);
            int fd = (int) OPEN.invokeExact(state, a.allocateFrom(path.toAbsolutePath().toString()), flags /* O_RDONLY = 0 */, 0);
            errno[0] = (int) ERRNO.get(state, 0L);
            return fd;
        } catch (Throwable t) {
            throw new IllegalStateException("open(" + path + ") failed in FFM: " + t, t);
        }
    }

    private static String describe(int errno) {
        return switch (errno) {
            case 2 -> "no such file";
            case 13 -> "permission denied";
            case 22 -> "invalid argument";
            case 24 -> "too many open files";
            default -> "see errno(3)";
        };
    }

    public Path path() { return path; }

    /** True while reads bypass the page cache. */
    public boolean direct() { return direct; }

    /** Why reads are buffered (null while direct). */
    public String fallbackReason() { return fallbackReason; }

    /** Reads {@code dst.byteSize()} bytes at file offset {@code offset} into {@code dst}. */
    public void read(long offset, MemorySegment dst) {
        long len = dst.byteSize();
        if (len == 0) return;
        if (direct) {
            if ((offset | len | dst.address()) % ALIGN == 0) {
                if (preadFully(dst, offset, len, len, true)) return;
            } else if (readThroughBounce(offset, dst)) {
                return;
            }
        }
        preadFully(dst, offset, len, len, false);
        dropCached(offset, len);
    }

    /**
     * Reads without aligning anything: where the file is open for direct I/O, the kernel refuses a misaligned read
     * (EINVAL) and the file falls back to buffered reads, as it does on a file system without direct I/O. For tests.
     */
    void readUnaligned(long offset, MemorySegment dst) {
        if (!direct || !preadFully(dst, offset, dst.byteSize(), dst.byteSize(), true)) preadFully(dst, offset, dst.byteSize(), dst.byteSize(), false);
    }

    /**
     * Reads an unaligned range through the aligned superset, window by window ({@link #WINDOW} bytes at most), so
     * a reading thread's bounce buffer stays small whatever the tensor's size. False if direct reads were refused
     * (the caller then reads the whole range buffered).
     */
    private boolean readThroughBounce(long offset, MemorySegment dst) {
        long len = dst.byteSize(), start = offset & -ALIGN, end = (offset + len + ALIGN - 1) & -ALIGN;
        MemorySegment buf = scratch.get().bounce(Math.min(WINDOW, end - start));
        for (long w = start; w < end; w += WINDOW) {
            long wl = Math.min(WINDOW, end - w);
            long from = Math.max(offset, w), to = Math.min(offset + len, w + wl);
            if (!preadFully(buf, w, wl, to - w, true)) return false;
            MemorySegment.copy(buf, from - w, dst, from - offset, to - from);
        }
        return true;
    }

    /**
     * Reads up to len bytes at offset into buf; at least {@code need} must come back (an aligned superset may run past
     * the end of the file). False when direct I/O was refused at read time (EINVAL): from then on the file is
     * read buffered.
     */
    private boolean preadFully(MemorySegment buf, long offset, long len, long need, boolean asDirect) {
        long done = 0;
        MemorySegment state = scratch.get().state;
        try {
            while (done < len) {
                long n = (long) PREAD.invokeExact(state, fd, buf.asSlice(done), len - done, offset + done);
                if (n < 0) {
                    int errno = (int) ERRNO.get(state, 0L);
                    if (errno == EINTR) continue;
                    if (asDirect && errno == EINVAL && done == 0) {
                        fallBack("the file system refused a direct read (EINVAL)");
                        return false;
                    }
                    throw new UncheckedIOException(new IOException(path + ": read of " + len + " bytes at " + offset
                            + " failed: errno " + errno + " (" + describe(errno) + ")"));
                }
                if (n == 0) break; // end of file
                done += n;
            }
        } catch (UncheckedIOException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("pread failed in FFM: " + t, t);
        }
        if (done < need) {
            throw new UncheckedIOException(new IOException(path + ": short read: " + done + " of " + need
                    + " bytes at offset " + offset + "; was the file truncated while open?"));
        }
        return true;
    }

    /** Reopens the file buffered after direct reads were refused. */
    private synchronized void fallBack(String reason) {
        if (!direct) return;
        int[] errno = new int[1];
        int buffered = openRaw(path, 0, errno);
        if (buffered < 0) throw new UncheckedIOException(new IOException(path + ": cannot reopen buffered: errno " + errno[0]));
        int old = fd;
        fd = buffered;
        fallbackReason = reason;
        direct = false;
        closeFd(old);
    }

    private static void closeFd(int fd) {
        try {
            int ignored = (int) CLOSE.invokeExact(fd);
        } catch (Throwable t) {
            throw new IllegalStateException("close failed in FFM: " + t, t);
        }
    }

    @Override
    public void close() { closeFd(fd); }
}
