package org.moeserve.runtime.gpu;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * CUDA through FFM: the runtime (memory, streams, events, copies), the driver (modules and launches of the kernels
 * NVRTC compiles from {@link GpuKernels}' source at start-up) and cuBLAS, all opened with {@code dlopen} at run time.
 * No JNI and no native build step: a machine without a GPU, a driver or the libraries gets a {@link Probe} with the
 * reason instead. Device pointers and streams are plain longs; pinned host memory is a {@link MemorySegment}.
 *
 * <p>Libraries are looked up by soname first (LD_LIBRARY_PATH, the loader's cache), then in {@code MOE_CUDA_PATH}
 * (directories, colon-separated), {@code CUDA_HOME}, /usr/local/cuda and the NVIDIA wheels of a Python
 * environment. One device (ordinal 0).
 */
public final class Cuda {
    /** The outcome of opening CUDA: {@code cuda} when it answered, else null and a one-line reason. */
    public record Probe(Cuda cuda, String reason) {}

    public static final int H2D = 1, D2H = 2;
    private static final int ATTR_SMS = 16, ATTR_MAJOR = 75, ATTR_MINOR = 76;
    private static final Linker LINKER = Linker.nativeLinker();

    private final Arena arena = Arena.ofShared(); // the libraries stay loaded for the process
    private final List<String> libs = new ArrayList<>();
    // runtime
    private MethodHandle getErrorString, setDevice, malloc, free, hostAlloc, freeHost, memcpyAsync, streamCreate,
            streamSync, eventCreate, eventRecord, eventSync, eventElapsed, memGetInfo, deviceSync, attribute;
    // driver
    private MethodHandle cuGetErrorString, ctxSetCurrent, moduleLoadData, moduleGetFunction, launchKernel;
    // cuBLAS, NVRTC
    private MethodHandle blasCreate, blasSetStream, sgemm;
    private MethodHandle rtcCreate, rtcCompile, rtcLogSize, rtcLog, rtcPtxSize, rtcPtx, rtcError;
    private SymbolLookup driver;
    private long context;
    private String description;
    private int major, minor;

    private Cuda() {}

    /** Opens CUDA on device 0; never throws: a reason says what is missing. */
    public static Probe open() {
        Cuda c = new Cuda();
        try {
            c.bind();
            c.start();
            return new Probe(c, null);
        } catch (Unavailable e) {
            return new Probe(null, e.getMessage());
        } catch (RuntimeException | LinkageError e) {
            return new Probe(null, "CUDA did not start: " + e);
        }
    }

    /** Why CUDA cannot be used here (a missing library, no device, a driver older than the runtime). */
    static final class Unavailable extends RuntimeException {
        Unavailable(String m) { super(m); }
    }

    private void bind() {
        SymbolLookup rt = library("libcudart.so", "13", "12");
        // versions: a driver older than the runtime cannot run it
        MethodHandle drvVersion = fn(rt, "cudaDriverGetVersion", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        MethodHandle rtVersion = fn(rt, "cudaRuntimeGetVersion", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        int d = outInt(drvVersion, "cudaDriverGetVersion"), r = outInt(rtVersion, "cudaRuntimeGetVersion");
        if (d == 0) throw new Unavailable("no NVIDIA driver here (the CUDA " + version(r) + " runtime " + libs.getLast() + " found none)");
        if (d < r) {
            throw new Unavailable("the NVIDIA driver supports CUDA " + version(d) + " but the runtime found is CUDA "
                    + version(r) + "; update the driver or point MOE_CUDA_PATH at an older toolkit");
        }
        description = "driver CUDA " + version(d) + ", runtime " + version(r);
        SymbolLookup drv = driver = library("libcuda.so", "1");
        library("libcublasLt.so", "13", "12"); // cuBLAS's own dependency, loaded first where no RUNPATH finds it
        SymbolLookup blas = library("libcublas.so", "13", "12");
        SymbolLookup rtc = library("libnvrtc.so", "13", "12");
        getErrorString = fn(rt, "cudaGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        setDevice = fn(rt, "cudaSetDevice", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        malloc = fn(rt, "cudaMalloc", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
        free = fn(rt, "cudaFree", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
        hostAlloc = fn(rt, "cudaHostAlloc", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
        freeHost = fn(rt, "cudaFreeHost", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
        memcpyAsync = fn(rt, "cudaMemcpyAsync", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_LONG));
        streamCreate = fn(rt, "cudaStreamCreateWithFlags", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        streamSync = fn(rt, "cudaStreamSynchronize", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
        eventCreate = fn(rt, "cudaEventCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        eventRecord = fn(rt, "cudaEventRecord", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
        eventSync = fn(rt, "cudaEventSynchronize", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
        eventElapsed = fn(rt, new String[]{"cudaEventElapsedTime", "cudaEventElapsedTime_v2"},
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG));
        memGetInfo = fn(rt, "cudaMemGetInfo", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        deviceSync = fn(rt, "cudaDeviceSynchronize", FunctionDescriptor.of(JAVA_INT));
        attribute = fn(rt, "cudaDeviceGetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        cuGetErrorString = fn(drv, "cuGetErrorString", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
        ctxSetCurrent = fn(drv, "cuCtxSetCurrent", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
        moduleLoadData = fn(drv, "cuModuleLoadData", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        moduleGetFunction = fn(drv, "cuModuleGetFunction", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS));
        launchKernel = fn(drv, "cuLaunchKernel", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS));
        blasCreate = fn(blas, "cublasCreate_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        blasSetStream = fn(blas, "cublasSetStream_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
        sgemm = fn(blas, "cublasSgemm_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
        rtcCreate = fn(rtc, "nvrtcCreateProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
        rtcCompile = fn(rtc, "nvrtcCompileProgram", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT, ADDRESS));
        rtcLogSize = fn(rtc, "nvrtcGetProgramLogSize", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS));
        rtcLog = fn(rtc, "nvrtcGetProgramLog", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS));
        rtcPtxSize = fn(rtc, "nvrtcGetPTXSize", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS));
        rtcPtx = fn(rtc, "nvrtcGetPTX", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS));
        rtcError = fn(rtc, "nvrtcGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
    }

    private void start() {
        check("cudaSetDevice", call(setDevice, 0));
        check("cudaDeviceSynchronize", call(deviceSync)); // creates the primary context on this thread
        MethodHandle getCurrent = fn(driver, "cuCtxGetCurrent", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            checkDriver("cuCtxGetCurrent", call(getCurrent, p));
            context = p.get(JAVA_LONG, 0);
            MemorySegment freeBytes = a.allocate(JAVA_LONG), total = a.allocate(JAVA_LONG);
            check("cudaMemGetInfo", call(memGetInfo, freeBytes, total));
            major = attr(ATTR_MAJOR);
            minor = attr(ATTR_MINOR);
            MethodHandle name = fn(driver, "cuDeviceGetName", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
            MemorySegment buf = a.allocate(256);
            checkDriver("cuDeviceGetName", call(name, buf, 256, 0));
            description = String.format(Locale.ROOT, "%s (compute %d.%d, %d SMs, %.1f GiB, %.1f GiB free; %s)",
                    buf.getString(0), major, minor, attr(ATTR_SMS), total.get(JAVA_LONG, 0) / (double) (1L << 30),
                    freeBytes.get(JAVA_LONG, 0) / (double) (1L << 30), description);
        }
    }

    /** The device and the CUDA versions, one line. */
    public String describe() { return description; }

    /** Libraries opened, as paths or sonames. */
    public List<String> libraries() { return List.copyOf(libs); }

    int computeCapability() { return major * 10 + minor; }

    /** Makes the device's context current on this thread (driver calls need it; runtime calls find it themselves). */
    public void makeCurrent() { checkDriver("cuCtxSetCurrent", call(ctxSetCurrent, context)); }

    public long malloc(long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            int rc = call(malloc, p, bytes);
            if (rc != 0) {
                throw new IllegalStateException(String.format(Locale.ROOT, "cudaMalloc of %.1f MiB failed: %s; lower "
                        + "--expert-budget", bytes / 1048576.0, error(rc)));
            }
            return p.get(JAVA_LONG, 0);
        }
    }

    public void free(long ptr) { if (ptr != 0) check("cudaFree", call(free, ptr)); }

    /** Page-locked host memory (the slow tier the device copies from at full PCIe speed). */
    public MemorySegment hostAlloc(long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            int rc = call(hostAlloc, p, bytes, 0);
            if (rc != 0) {
                throw new IllegalStateException(String.format(Locale.ROOT, "cudaHostAlloc of %.1f MiB of pinned memory "
                        + "failed: %s", bytes / 1048576.0, error(rc)));
            }
            return p.get(ADDRESS, 0).reinterpret(bytes);
        }
    }

    public void freeHost(MemorySegment m) { if (m != null) check("cudaFreeHost", call(freeHost, m.address())); }

    /** A non-blocking stream. */
    public long stream() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check("cudaStreamCreateWithFlags", call(streamCreate, p, 1));
            return p.get(JAVA_LONG, 0);
        }
    }

    public void sync(long stream) {
        int rc;
        try {
            rc = (int) streamSync.invokeExact(stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        check("cudaStreamSynchronize", rc);
    }

    /** Asynchronous copy of {@code bytes} between addresses (kind {@link #H2D} or {@link #D2H}) on a stream. */
    public void copy(long dst, long src, long bytes, int kind, long stream) {
        if (bytes <= 0) return;
        int rc;
        try {
            rc = (int) memcpyAsync.invokeExact(dst, src, bytes, kind, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        check("cudaMemcpyAsync", rc);
    }

    public long event() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check("cudaEventCreate", call(eventCreate, p));
            return p.get(JAVA_LONG, 0);
        }
    }

    public void record(long event, long stream) {
        int rc;
        try {
            rc = (int) eventRecord.invokeExact(event, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        check("cudaEventRecord", rc);
    }

    /** Milliseconds between two recorded events, after waiting for the second. */
    public float elapsedMs(long start, long end) {
        check("cudaEventSynchronize", call(eventSync, end));
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(JAVA_FLOAT);
            check("cudaEventElapsedTime", call(eventElapsed, p, start, end));
            return p.get(JAVA_FLOAT, 0);
        }
    }

    /** A cuBLAS handle whose work goes on {@code stream}. */
    public long blas(long stream) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            checkBlas("cublasCreate", call(blasCreate, p));
            long h = p.get(JAVA_LONG, 0);
            checkBlas("cublasSetStream", call(blasSetStream, h, stream));
            return h;
        }
    }

    /** cuBLAS SGEMM, column-major; alpha and beta are host floats in {@code scalars} (offsets 0 and 4). */
    public void sgemm(long h, boolean transA, boolean transB, int m, int n, int k, MemorySegment scalars, long a, int lda,
                      long b, int ldb, long c, int ldc) {
        int rc;
        try {
            rc = (int) sgemm.invokeExact(h, transA ? 1 : 0, transB ? 1 : 0, m, n, k, scalars, a, lda, b, ldb,
                    scalars.asSlice(4), c, ldc);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        checkBlas("cublasSgemm", rc);
    }

    /** Compiles CUDA C with NVRTC for this device and loads it; returns the named kernels' handles. */
    public long[] compile(String source, String... kernels) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            checkRtc("nvrtcCreateProgram", call(rtcCreate, p, a.allocateFrom(source), a.allocateFrom("moe_kernels.cu"), 0,
                    MemorySegment.NULL, MemorySegment.NULL));
            long prog = p.get(JAVA_LONG, 0);
            MemorySegment opts = a.allocate(ADDRESS, 1);
            opts.setAtIndex(ADDRESS, 0, a.allocateFrom("--gpu-architecture=compute_" + major + minor));
            int rc = call(rtcCompile, prog, 1, opts);
            if (rc != 0) {
                MemorySegment n = a.allocate(JAVA_LONG);
                call(rtcLogSize, prog, n);
                MemorySegment log = a.allocate(Math.max(1, n.get(JAVA_LONG, 0)));
                call(rtcLog, prog, log);
                throw new IllegalStateException("NVRTC could not compile the kernels: " + rtcError(rc) + "\n" + log.getString(0));
            }
            MemorySegment n = a.allocate(JAVA_LONG);
            checkRtc("nvrtcGetPTXSize", call(rtcPtxSize, prog, n));
            MemorySegment ptx = a.allocate(n.get(JAVA_LONG, 0));
            checkRtc("nvrtcGetPTX", call(rtcPtx, prog, ptx));
            makeCurrent();
            checkDriver("cuModuleLoadData", call(moduleLoadData, p, ptx));
            long module = p.get(JAVA_LONG, 0);
            long[] out = new long[kernels.length];
            for (int i = 0; i < kernels.length; i++) {
                checkDriver("cuModuleGetFunction " + kernels[i], call(moduleGetFunction, p, module, a.allocateFrom(kernels[i])));
                out[i] = p.get(JAVA_LONG, 0);
            }
            return out;
        }
    }

    /** Launches a kernel on a 1-D grid; {@code params} is an array of pointers to the argument values. */
    public void launch(long kernel, int grid, int block, MemorySegment params, long stream) {
        int rc;
        try {
            rc = (int) launchKernel.invokeExact(kernel, grid, 1, 1, block, 1, 1, 0, stream, params, MemorySegment.NULL);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        checkDriver("cuLaunchKernel", rc);
    }

    // ---- errors ----

    private void check(String what, int rc) {
        if (rc != 0) throw new IllegalStateException(what + " failed: " + error(rc));
    }

    private String error(int rc) {
        try {
            return ((MemorySegment) getErrorString.invokeExact(rc)).reinterpret(256).getString(0) + " (cudaError " + rc + ")";
        } catch (Throwable t) {
            return "cudaError " + rc;
        }
    }

    private void checkDriver(String what, int rc) {
        if (rc == 0) return;
        String msg = "CUresult " + rc;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            if ((int) cuGetErrorString.invokeExact(rc, p) == 0) msg = p.get(ADDRESS, 0).reinterpret(256).getString(0) + " (" + msg + ")";
        } catch (Throwable ignored) {
            // the code alone
        }
        throw new IllegalStateException(what + " failed: " + msg);
    }

    private static void checkBlas(String what, int rc) {
        if (rc != 0) throw new IllegalStateException(what + " failed: cublasStatus " + rc);
    }

    private void checkRtc(String what, int rc) {
        if (rc != 0) throw new IllegalStateException(what + " failed: " + rtcError(rc));
    }

    private String rtcError(int rc) {
        try {
            return ((MemorySegment) rtcError.invokeExact(rc)).reinterpret(256).getString(0);
        } catch (Throwable t) {
            return "nvrtcResult " + rc;
        }
    }

    private int attr(int which) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(JAVA_INT);
            check("cudaDeviceGetAttribute", call(attribute, p, which, 0));
            return p.get(JAVA_INT, 0);
        }
    }

    private static int outInt(MethodHandle h, String what) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(JAVA_INT);
            int rc = call(h, p);
            if (rc != 0) throw new Unavailable(what + " failed (error " + rc + "): no usable NVIDIA driver or device");
            return p.get(JAVA_INT, 0);
        }
    }

    private static String version(int v) { return v / 1000 + "." + (v % 1000) / 10; }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new IllegalStateException(t);
    }

    /** Every binding returns a status int. */
    private static int call(MethodHandle h, Object... args) {
        try {
            return (int) h.invokeWithArguments(args);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    // ---- finding the libraries ----

    private SymbolLookup library(String base, String... versions) {
        List<String> names = new ArrayList<>();
        for (String v : versions) names.add(base + "." + v);
        names.add(base);
        for (String n : names) {
            try {
                SymbolLookup l = SymbolLookup.libraryLookup(n, arena);
                libs.add(n);
                return l;
            } catch (IllegalArgumentException notThere) {
                // next
            }
        }
        for (Path dir : searchDirs()) {
            for (String n : names) {
                Path p = dir.resolve(n);
                if (!Files.isRegularFile(p)) continue;
                try {
                    SymbolLookup l = SymbolLookup.libraryLookup(p, arena);
                    libs.add(p.toString());
                    return l;
                } catch (IllegalArgumentException unusable) {
                    // next
                }
            }
        }
        throw new Unavailable(base + ".{" + String.join(",", versions) + "} not found (looked up by name and in "
                + searchDirs().size() + " CUDA folders; set MOE_CUDA_PATH to the folder that holds it)");
    }

    static List<Path> searchDirs() {
        Set<Path> dirs = new LinkedHashSet<>();
        for (String env : new String[]{"MOE_CUDA_PATH", "LD_LIBRARY_PATH"}) {
            String v = System.getenv(env);
            if (v != null) for (String d : v.split(":")) if (!d.isBlank()) dirs.add(Path.of(d));
        }
        for (String env : new String[]{"CUDA_HOME", "CUDA_PATH"}) {
            String v = System.getenv(env);
            if (v != null) {
                dirs.add(Path.of(v, "lib64"));
                dirs.add(Path.of(v, "targets", "x86_64-linux", "lib"));
            }
        }
        for (String d : new String[]{"/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib", "/usr/local/nvidia/lib64",
                "/usr/local/nvidia/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib64"}) {
            dirs.add(Path.of(d));
        }
        // NVIDIA's Python wheels: <venv>/lib/python3.X/site-packages/nvidia/<pkg>/lib
        for (String root : new String[]{"/opt", "/usr/local/lib", "/usr/lib"}) globWheels(Path.of(root), dirs, 0);
        dirs.removeIf(d -> !Files.isDirectory(d));
        return new ArrayList<>(dirs);
    }

    private static void globWheels(Path dir, Set<Path> out, int depth) {
        if (depth > 5 || !Files.isDirectory(dir)) return;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            for (Path p : ds) {
                String n = p.getFileName().toString();
                if (n.equals("nvidia") && dir.getFileName() != null && dir.getFileName().toString().endsWith("-packages")) {
                    try (DirectoryStream<Path> pkgs = Files.newDirectoryStream(p)) {
                        for (Path pkg : pkgs) out.add(pkg.resolve("lib"));
                    }
                } else if (Files.isDirectory(p) && (n.startsWith(".venv") || n.startsWith("python3") || n.equals("lib")
                        || n.endsWith("-packages") || depth == 0)) {
                    globWheels(p, out, depth + 1);
                }
            }
        } catch (java.io.IOException | SecurityException ignored) {
            // unreadable: not a CUDA folder
        }
    }

    private static MethodHandle fn(SymbolLookup lib, String name, FunctionDescriptor fd) {
        return fn(lib, new String[]{name}, fd);
    }

    private static MethodHandle fn(SymbolLookup lib, String[] names, FunctionDescriptor fd) {
        for (String n : names) {
            var s = lib.find(n);
            if (s.isPresent()) return LINKER.downcallHandle(s.get(), fd);
        }
        throw new Unavailable("the CUDA library has no " + names[0] + "; it is too old or not NVIDIA's");
    }
}
