package org.moeserve.runtime.engine;

import org.moeserve.cache.ExpertKey;
import org.moeserve.cache.ExpertSource;
import org.moeserve.cache.disk.DirectFile;
import org.moeserve.cache.disk.DiskProbe;
import org.moeserve.runtime.model.Checkpoint;
import org.moeserve.runtime.model.ExpertWeights;
import org.moeserve.runtime.model.MoeModel;
import org.moeserve.runtime.model.Tensor;
import org.moeserve.units.LinkModel;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The disk tier: experts read from the checkpoint's files with direct I/O ({@link DirectFile}) into the fast tier's
 * slots, bypassing the page cache, so an engine that knows which experts come next decides what stays in memory
 * (not the kernel's LRU over pages). Each expert is its gate, up and down tensors, read where the checkpoint stores
 * them. Everything else in the model (attention, norms, embeddings, routers) stays in the memory-mapped file.
 */
public final class DiskExpertSource implements ExpertSource, AutoCloseable {
    private final MoeModel model;
    private final Map<Path, DirectFile> files = new LinkedHashMap<>();

    /**
     * Opens the checkpoint's files for expert reads, turns read-ahead off on their mappings (so paging in the resident
     * weights does not pull experts into the page cache) and drops the experts' bytes from the page cache: the disk
     * tier starts cold, and only the fast tier holds experts.
     */
    public DiskExpertSource(MoeModel model, boolean tryDirect) {
        this.model = model;
        for (MemorySegment mapping : model.mappings()) DirectFile.adviseRandom(mapping);
        for (int l = 0; l < model.config().moeLayers(); l++) {
            for (int e = 0; e < model.config().experts(); e++) {
                for (Tensor t : tensors(model.expert(l, e))) {
                    Checkpoint.FileRange r = model.locate(t);
                    files.computeIfAbsent(r.file(), f -> DirectFile.open(f, tryDirect)).dropCached(r.offset(), r.length());
                }
            }
        }
    }

    private static Tensor[] tensors(ExpertWeights w) { return new Tensor[]{w.gate(), w.up(), w.down()}; }

    @Override
    public long expertBytes() { return model.expertBytes(); }

    @Override
    public void copyTo(ExpertKey k, MemorySegment dst) {
        long off = 0;
        for (Tensor t : tensors(model.expert(k.layer(), k.expert()))) {
            Checkpoint.FileRange r = model.locate(t);
            files.get(r.file()).read(r.offset(), dst.asSlice(off, r.length()));
            off += r.length();
        }
    }

    /** True when every file is read with direct I/O. */
    public boolean direct() { return files.values().stream().allMatch(DirectFile::direct); }

    /** One line: how the files are read (and why not directly, where they are not). */
    public String describe() {
        for (DirectFile f : files.values()) {
            if (!f.direct()) {
                return "buffered reads with posix_fadvise(DONTNEED) of " + f.path().getFileName() + ": " + f.fallbackReason();
            }
        }
        return "direct I/O (O_DIRECT) of " + files.size() + " file(s)";
    }

    /**
     * The disk measured as a link for whole experts: the latency of a small read, and a bandwidth such that one
     * expert's load time is the median of real expert reads (an expert is three tensor reads, each paying the
     * latency, so a probe of single reads would make a load look cheaper than it is).
     */
    public LinkModel measure(int experts, int reps) {
        List<DiskProbe.Range> ranges = new ArrayList<>();
        List<ExpertKey> keys = new ArrayList<>();
        int layers = model.config().moeLayers(), n = model.config().experts();
        for (int i = 0; i < experts; i++) {
            int l = (int) ((long) i * layers / experts), e = (int) ((i * 7L + 3) % n);
            keys.add(new ExpertKey(l, e));
            Checkpoint.FileRange r = model.locate(model.expert(l, e).up());
            ranges.add(new DiskProbe.Range(files.get(r.file()), r.offset(), r.length()));
        }
        long latency = DiskProbe.measure(ranges, reps).latencyNanos();
        long[] times = new long[experts * reps];
        try (java.lang.foreign.Arena a = java.lang.foreign.Arena.ofConfined()) {
            MemorySegment slot = a.allocate(expertBytes(), DirectFile.ALIGN);
            int i = 0;
            for (int r = 0; r < reps; r++) {
                for (ExpertKey k : keys) {
                    long t0 = System.nanoTime();
                    copyTo(k, slot);
                    times[i++] = System.nanoTime() - t0;
                }
            }
        }
        java.util.Arrays.sort(times);
        long load = times[times.length / 2];
        double transfer = Math.max(load - latency, expertBytes() * 1e-3); // at most 1 TB/s
        return new LinkModel(expertBytes() / transfer * 1e9, latency);
    }

    public static String describe(LinkModel link) {
        return String.format(Locale.ROOT, "%.2f GB/s, %.0f us per read (measured)", link.bytesPerSecond() / 1e9, link.latencyNanos() / 1e3);
    }

    @Override
    public void close() { files.values().forEach(DirectFile::close); }
}
