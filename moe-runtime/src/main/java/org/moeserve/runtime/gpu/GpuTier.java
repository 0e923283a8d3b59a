package org.moeserve.runtime.gpu;

import org.moeserve.cache.Clock;
import org.moeserve.cache.ExpertCache;
import org.moeserve.cache.ExpertKey;
import org.moeserve.cache.policy.EvictionPolicy;
import org.moeserve.comms.ExpertGroups;
import org.moeserve.runtime.engine.CachedExpertStore;
import org.moeserve.runtime.engine.ExpertExecutor;
import org.moeserve.runtime.model.DType;
import org.moeserve.runtime.model.ExpertWeights;
import org.moeserve.runtime.model.MoeModel;
import org.moeserve.units.LinkModel;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The GPU tier: routed experts computed on the GPU, from a fast tier of expert slots in GPU memory (the expert
 * cache's books, its policies and its prefetcher, with {@link ExpertCache.Slots} in device memory), filled over
 * PCIe from the slow tier: every expert in page-locked host memory. Each fill is an asynchronous copy on the
 * filling thread's own stream, timed with events; prefetches fill on the cache's reader threads while the engine's
 * thread computes, so prefetch overlaps compute for real. The link model that guides prefetching is the PCIe copy
 * measured at start-up, not a modelled one.
 *
 * <p>Attention, norms, routers and shared experts stay on the CPU; per MoE layer the tier uploads the layer's routed
 * rows once, runs each expert over its rows on one compute stream, and downloads the outputs once. BF16 and F32
 * experts; other dtypes stay on the CPU ({@link #unsupported}).
 */
public final class GpuTier implements AutoCloseable {
    /** Reader threads (streams) filling slots at once; the demand fill runs on the layer's own thread besides. */
    static final int READERS = 2;

    private final Cuda cuda;
    private final MoeModel model;
    private final long eb;
    private final MemorySegment mirror;  // pinned host copy of every expert, [layer][expert] order
    private final long slotsBase;        // device memory, slots * eb
    private final ExpertCache cache;
    private final LinkModel measured;
    private final double peakBytesPerSecond;
    private final ThreadLocal<long[]> fillStream;  // {stream, start event, end event}
    private final List<long[]> streams = java.util.Collections.synchronizedList(new ArrayList<>());
    private final AtomicLong fills = new AtomicLong(), fillBytes = new AtomicLong(), fillNanos = new AtomicLong();
    private final Executor executor;

    /** Why a model's experts cannot run on the GPU tier, or null if they can. */
    public static String unsupported(MoeModel m) {
        ExpertWeights w = m.expert(0, 0);
        DType d = w.gate().dtype();
        if (d != DType.BF16 && d != DType.F32 || w.up().dtype() != d || w.down().dtype() != d) {
            return "the GPU tier computes BF16 and F32 experts; this model's are " + d;
        }
        return null;
    }

    /**
     * @param budgetBytes GPU memory for expert slots (all experts: everything resident, filled before serving)
     * @param policy      the cache's eviction policy
     */
    public GpuTier(Cuda cuda, MoeModel m, long budgetBytes, EvictionPolicy policy) {
        this.cuda = cuda;
        this.model = m;
        this.eb = m.expertBytes();
        int layers = m.config().moeLayers(), experts = m.config().experts();
        long total = (long) layers * experts * eb;
        this.mirror = cuda.hostAlloc(total);
        var src = CachedExpertStore.source(m);
        for (int l = 0; l < layers; l++) {
            for (int e = 0; e < experts; e++) src.copyTo(new ExpertKey(l, e), mirror.asSlice(((long) l * experts + e) * eb, eb));
        }
        long slots = Math.max(1, Math.min(budgetBytes, total) / eb);
        this.slotsBase = cuda.malloc(slots * eb);
        this.fillStream = ThreadLocal.withInitial(() -> {
            long[] s = {cuda.stream(), cuda.event(), cuda.event()};
            streams.add(s);
            return s;
        });
        this.peakBytesPerSecond = measurePeak(Math.min(total, 256L << 20));
        this.measured = measureExpertCopy();
        this.cache = new ExpertCache(new ExpertCache.Config(slots * eb, eb, measured, true, READERS), null, policy,
                Clock.SYSTEM, this::fill);
        if (slots * eb >= total) { // all resident: fill every slot now, so that serving never waits on PCIe
            for (int l = 0; l < layers; l++) {
                for (int e = 0; e < experts; e++) {
                    ExpertKey k = new ExpertKey(l, e);
                    cache.acquireSlot(k);
                    cache.release(k);
                }
            }
            cache.resetStats();
        }
        this.executor = new Executor();
    }

    public ExpertCache cache() { return cache; }

    /** The engine's executor: {@code engine.setExecutor(tier.executor())}. */
    public ExpertExecutor executor() { return executor; }

    public LinkModel link() { return measured; }

    /** The slow tier and its measured link, one line. */
    public String describe() {
        return String.format(Locale.ROOT, "GPU %s; slow tier pinned host memory over PCIe: %.1f GB/s peak (256 MiB copy), "
                        + "one %.2f MiB expert %.1f us (%.1f GB/s) [measured]", cuda.describe(), peakBytesPerSecond / 1e9,
                eb / 1048576.0, measured.nanosFor(eb) / 1e3, eb / (measured.nanosFor(eb) / 1e9) / 1e9);
    }

    /** The fills so far: count, bytes and the bandwidth the copies achieved (event-timed), against the peak. */
    public String copySummary() {
        long n = fills.get(), b = fillBytes.get(), t = fillNanos.get();
        return String.format(Locale.ROOT, "PCIe fills: %d experts, %.1f MiB, %.1f GB/s achieved per copy (%.0f%% of the "
                + "%.1f GB/s peak)", n, b / 1048576.0, t == 0 ? 0 : b / (t / 1e9) / 1e9,
                t == 0 ? 0 : 100.0 * (b / (t / 1e9)) / peakBytesPerSecond, peakBytesPerSecond / 1e9);
    }

    /** Zeroes the fill counters (after a warm-up). */
    public void resetStats() {
        fills.set(0);
        fillBytes.set(0);
        fillNanos.set(0);
        cache.resetStats();
    }

    private long mirrorAddress(ExpertKey k) {
        return mirror.address() + ((long) k.layer() * model.config().experts() + k.expert()) * eb;
    }

    /** The cache's fill: one asynchronous PCIe copy on this thread's stream, waited for, timed by events. */
    private void fill(ExpertKey k, int slot) {
        float ms = copyMs(slotsBase + slot * eb, mirrorAddress(k), eb);
        fills.incrementAndGet();
        fillBytes.addAndGet(eb);
        fillNanos.addAndGet((long) (ms * 1e6));
    }

    /** One host-to-device copy on this thread's stream, waited for; its time by the stream's events, in ms. */
    private float copyMs(long dst, long src, long bytes) {
        long[] s = fillStream.get();
        cuda.record(s[1], s[0]);
        cuda.copy(dst, src, bytes, Cuda.H2D, s[0]);
        cuda.record(s[2], s[0]);
        return cuda.elapsedMs(s[1], s[2]); // waits for the end event, so for the copy
    }

    private double measurePeak(long bytes) {
        long dev = cuda.malloc(bytes);
        try {
            float best = Float.MAX_VALUE;
            for (int i = 0; i < 3; i++) best = Math.min(best, copyMs(dev, mirror.address(), bytes));
            return bytes / (best / 1e3);
        } finally {
            cuda.free(dev);
        }
    }

    /** One expert's copy and a 4 KiB copy (the latency), fastest of a few, as the link model. */
    private LinkModel measureExpertCopy() {
        float expert = Float.MAX_VALUE, small = Float.MAX_VALUE;
        for (int i = 0; i < 5; i++) {
            expert = Math.min(expert, copyMs(slotsBase, mirror.address(), eb));
            small = Math.min(small, copyMs(slotsBase, mirror.address(), Math.min(4096, eb)));
        }
        long latency = (long) (small * 1e6);
        double seconds = Math.max(1e-9, expert / 1e3 - latency / 1e9);
        return new LinkModel(eb / seconds, latency);
    }

    @Override
    public void close() {
        cache.close();
        executor.close();
        cuda.free(slotsBase);
        cuda.freeHost(mirror);
    }

    /** Runs each MoE layer's routed experts on the GPU (see the class comment). One step at a time. */
    private final class Executor implements ExpertExecutor, ExpertExecutor.StepRun {
        private final int h = model.config().hiddenSize(), inter = model.config().expertIntermediate();
        private final boolean bf16 = model.expert(0, 0).gate().dtype() == DType.BF16;
        private final boolean gemv = bf16 && h % 8 == 0 && inter % 8 == 0;
        private final long gateBytes = model.expert(0, 0).gate().data().byteSize(), upBytes = model.expert(0, 0).up().data().byteSize();
        // experts a layer may hold at once: every slot but the policy's fixed ones, less one for the next miss
        private final int cap = Math.max(1, cache.slots() - cache.policy().pinned().size() - 1);
        private final long compute = cuda.stream();
        private final long blas = cuda.blas(compute);
        private final long[] kernels;
        private final Arena arena = Arena.ofShared();
        private final MemorySegment scalars = arena.allocate(8, 8), vals = arena.allocate(64, 8), params = arena.allocate(64, 8);
        private int capacity;       // rows the buffers below hold
        private long dX, dY, dG, dU, dW = 0;
        private MemorySegment hX, hY;

        Executor() {
            scalars.set(JAVA_FLOAT, 0, 1f);
            scalars.set(JAVA_FLOAT, 4, 0f);
            for (int i = 0; i < 8; i++) params.set(JAVA_LONG, 8L * i, vals.address() + 8L * i);
            kernels = cuda.compile(GpuKernels.SOURCE, GpuKernels.NAMES);
        }

        @Override
        public StepRun begin(long[] sequences) { return this; }

        @Override
        public synchronized void run(int m, float[][] xb, int rows, int[][] idx, float[][][] contrib) {
            cuda.makeCurrent();
            List<ExpertGroups.Group> groups = ExpertGroups.of(idx, rows, model.config().experts());
            int total = 0;
            for (ExpertGroups.Group g : groups) total += g.size();
            ensure(total);
            // the layer's routed rows, gathered by expert, uploaded once
            int at = 0;
            for (ExpertGroups.Group g : groups) {
                for (int r : g.rows()) {
                    MemorySegment.copy(xb[r], 0, hX, JAVA_FLOAT, (long) at * h * 4, h);
                    at++;
                }
            }
            cuda.copy(dX, hX.address(), (long) total * h * 4, Cuda.H2D, compute);
            if (groups.size() <= cap) {
                List<ExpertKey> keys = new ArrayList<>(groups.size());
                for (ExpertGroups.Group g : groups) keys.add(new ExpertKey(m, g.expert()));
                cache.reserve(keys);
            }
            List<ExpertKey> held = new ArrayList<>();
            try {
                at = 0;
                for (ExpertGroups.Group g : groups) {
                    if (held.size() == cap) { // a layer wider than the fast tier: let the slots go in turns
                        cuda.sync(compute);
                        releaseAll(held);
                    }
                    ExpertKey k = new ExpertKey(m, g.expert());
                    int slot = cache.acquireSlot(k); // may wait for its PCIe fill; the stream keeps computing meanwhile
                    held.add(k);
                    ffn(slotsBase + slot * eb, dX + (long) at * h * 4, dY + (long) at * h * 4, g.size());
                    at += g.size();
                }
                cuda.copy(hY.address(), dY, (long) total * h * 4, Cuda.D2H, compute);
                cuda.sync(compute);
            } finally {
                releaseAll(held);
            }
            at = 0;
            for (ExpertGroups.Group g : groups) {
                float[][] y = new float[g.size()][h];
                for (int i = 0; i < g.size(); i++, at++) MemorySegment.copy(hY, JAVA_FLOAT, (long) at * h * 4, y[i], 0, h);
                g.scatter(y, contrib);
            }
        }

        private void releaseAll(List<ExpertKey> held) {
            for (ExpertKey k : held) cache.release(k);
            held.clear();
        }

        /** Y[rows x h] = down(silu(gate X) * up X) for the expert whose [gate | up | down] is at w. */
        private void ffn(long w, long x, long y, int rows) {
            long wg = w, wu = w + gateBytes, wd = w + gateBytes + upBytes;
            for (int r0 = 0; gemv && r0 < rows && rows <= 4 * GpuKernels.GEMV_ROWS; r0 += GpuKernels.GEMV_ROWS) {
                int n = Math.min(GpuKernels.GEMV_ROWS, rows - r0);
                long xr = x + (long) r0 * h * 4, yr = y + (long) r0 * h * 4;
                gemvLaunch(wg, xr, dG, inter, h, n);
                gemvLaunch(wu, xr, dU, inter, h, n);
                elementwise(kernels[2], dG, dU, (long) n * inter);
                gemvLaunch(wd, dG, yr, h, inter, n);
                if (r0 + n == rows) return;
            }
            long g32 = wg, u32 = wu, d32 = wd;
            if (bf16) { // widen the expert once into fp32 scratch, then cuBLAS
                if (dW == 0) dW = cuda.malloc(3L * inter * h * 4);
                elementwise(kernels[1], w, dW, (long) inter * h * 3);
                g32 = dW;
                u32 = dW + (long) inter * h * 4;
                d32 = dW + 2L * inter * h * 4;
            }
            // row-major W (out x in) is column-major (in x out): C(out x rows) = W^T' X, all column-major
            cuda.sgemm(blas, true, false, inter, rows, h, scalars, g32, h, x, h, dG, inter);
            cuda.sgemm(blas, true, false, inter, rows, h, scalars, u32, h, x, h, dU, inter);
            elementwise(kernels[2], dG, dU, (long) rows * inter);
            cuda.sgemm(blas, true, false, h, rows, inter, scalars, d32, inter, dG, inter, y, h);
        }

        private void gemvLaunch(long w, long x, long y, int out, int in, int rows) {
            vals.set(JAVA_LONG, 0, w);
            vals.set(JAVA_LONG, 8, x);
            vals.set(JAVA_LONG, 16, y);
            vals.set(JAVA_INT, 24, out);
            vals.set(JAVA_INT, 32, in);
            vals.set(JAVA_INT, 40, rows);
            int warpsPerBlock = GpuKernels.BLOCK / 32;
            cuda.launch(kernels[0], (out + warpsPerBlock - 1) / warpsPerBlock, GpuKernels.BLOCK, params, compute);
        }

        private void elementwise(long kernel, long a, long b, long n) {
            vals.set(JAVA_LONG, 0, a);
            vals.set(JAVA_LONG, 8, b);
            vals.set(JAVA_LONG, 16, n);
            int grid = (int) Math.min(4096, (n + GpuKernels.BLOCK - 1) / GpuKernels.BLOCK);
            cuda.launch(kernel, grid, GpuKernels.BLOCK, params, compute);
        }

        /** Device and pinned buffers for {@code rows} routed rows (grown, never shrunk). */
        private void ensure(int rows) {
            if (rows <= capacity) return;
            int n = Math.max(rows, Math.max(64, capacity * 2));
            cuda.sync(compute);
            cuda.free(dX);
            cuda.free(dY);
            cuda.free(dG);
            cuda.free(dU);
            cuda.freeHost(hX);
            cuda.freeHost(hY);
            dX = cuda.malloc((long) n * h * 4);
            dY = cuda.malloc((long) n * h * 4);
            dG = cuda.malloc((long) n * inter * 4);
            dU = cuda.malloc((long) n * inter * 4);
            hX = cuda.hostAlloc((long) n * h * 4);
            hY = cuda.hostAlloc((long) n * h * 4);
            capacity = n;
        }

        void close() {
            cuda.sync(compute);
            for (long p : new long[]{dX, dY, dG, dU, dW}) cuda.free(p);
            cuda.freeHost(hX);
            cuda.freeHost(hY);
        }
    }
}
