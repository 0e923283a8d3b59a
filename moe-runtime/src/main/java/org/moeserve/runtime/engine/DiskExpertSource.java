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
 * them (located once, at start). Everything else in the model (attention, norms, embeddings, routers) stays in the
 * memory-mapped file.
 */
public final class DiskExpertSource implements ExpertSource, AutoCloseable {
    private final MoeModel model;
    private final Map<Path, DirectFile> files = new LinkedHashMap<>();
    private final DiskProbe.Load[][] loads; // [MoE layer][expert]: the three tensor ranges, in slot order

    /**
     * Opens the checkpoint's files for expert reads, turns read-ahead off on their mappings (so paging in the resident
     * weights does not pull experts into the page cache) and drops the experts' bytes from the page cache: the disk
     * tier starts cold, and only the fast tier holds experts.
     */
    public DiskExpertSource(MoeModel model, boolean tryDirect) {
        this.model = model;
        for (MemorySegment mapping : model.mappings()) DirectFile.adviseRandom(mapping);
        loads = new DiskProbe.Load[model.config().moeLayers()][model.config().experts()];
        for (int l = 0; l < loads.length; l++) {
            for (int e = 0; e < loads[l].length; e++) {
                ExpertWeights w = model.expert(l, e);
                List<DiskProbe.Range> parts = new ArrayList<>(3);
                for (Tensor t : new Tensor[]{w.gate(), w.up(), w.down()}) {
                    Checkpoint.FileRange r = model.locate(t);
                    DirectFile f = files.computeIfAbsent(r.file(), p -> DirectFile.open(p, tryDirect));
                    f.dropCached(r.offset(), r.length());
                    parts.add(new DiskProbe.Range(f, r.offset(), r.length()));
                }
                loads[l][e] = new DiskProbe.Load(List.copyOf(parts));
            }
        }
    }

    @Override
    public long expertBytes() { return model.expertBytes(); }

    @Override
    public void copyTo(ExpertKey k, MemorySegment dst) { loads[k.layer()][k.expert()].readInto(dst); }

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

    /** The disk measured as a link for whole experts ({@link DiskProbe#measure}) over a few experts spread across layers. */
    public LinkModel measure(int experts, int reps) {
        List<DiskProbe.Load> sample = new ArrayList<>();
        int layers = loads.length, n = loads[0].length;
        for (int i = 0; i < experts; i++) sample.add(loads[(int) ((long) i * layers / experts)][(int) ((i * 7L + 3) % n)]);
        return DiskProbe.measure(sample, reps);
    }

    public static String describe(LinkModel link) {
        return String.format(Locale.ROOT, "%.2f GB/s, %.0f us per read (measured)", link.bytesPerSecond() / 1e9, link.latencyNanos() / 1e3);
    }

    @Override
    public void close() { files.values().forEach(DirectFile::close); }
}
