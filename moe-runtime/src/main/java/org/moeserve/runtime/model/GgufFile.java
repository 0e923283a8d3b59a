package org.moeserve.runtime.model;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One GGUF file (v2 or v3, llama.cpp's format), memory-mapped read-only like a safetensors file. Layout, all
 * little-endian: magic "GGUF", version u32, tensor count u64, metadata count u64; the metadata (key string, value
 * type u32, value); the tensor table (name, dimension count u32, dimensions u64 fastest first, ggml type u32, offset
 * u64 from the data section); padding to {@code general.alignment} (32 by default); the data section. Strings are a
 * u64 length and UTF-8 bytes. Every length and offset is checked against the file before it is used, so a damaged
 * file fails with one line that names the file, what is wrong and where.
 */
public final class GgufFile {
    public static final int MAGIC = 0x46554747;
    public static final int T_UINT8 = 0, T_INT8 = 1, T_UINT16 = 2, T_INT16 = 3, T_UINT32 = 4, T_INT32 = 5, T_FLOAT32 = 6,
            T_BOOL = 7, T_STRING = 8, T_ARRAY = 9, T_UINT64 = 10, T_INT64 = 11, T_FLOAT64 = 12;

    /** A tensor as the table lists it: dims fastest first (ggml's ne), the ggml type, the offset in the data section. */
    public record Info(String name, long[] dims, int type, long offset) {
        /** The element count; Long.MAX_VALUE if the dimensions overflow (a damaged table: refused at open). */
        public long elements() {
            long n = 1;
            try {
                for (long d : dims) n = Math.multiplyExact(n, d);
            } catch (ArithmeticException e) {
                return Long.MAX_VALUE;
            }
            return n;
        }
    }

    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path path;
    private final MemorySegment all;
    private final Map<String, Object> meta;
    private final Map<String, Info> tensors;
    private final long dataStart;

    private GgufFile(Path path, MemorySegment all, Map<String, Object> meta, Map<String, Info> tensors, long dataStart) {
        this.path = path;
        this.all = all;
        this.meta = meta;
        this.tensors = tensors;
        this.dataStart = dataStart;
    }

    public Path path() { return path; }

    public MemorySegment mapping() { return all; }

    /** Metadata values: Long for integers, Double for floats, Boolean, String, or a List of those. */
    public Map<String, Object> metadata() { return meta; }

    public Map<String, Info> tensors() { return tensors; }

    /** True if the file starts with GGUF's magic (how {@code --model} tells a GGUF file from anything else). */
    public static boolean looksLikeGguf(Path p) {
        if (!Files.isRegularFile(p)) return false;
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
            return ch.read(b, 0) == 4 && b.getInt(0) == MAGIC;
        } catch (IOException e) {
            return false;
        }
    }

    public static GgufFile open(Path given, Arena arena) {
        Path path = given.toAbsolutePath().normalize();
        if (!Files.isRegularFile(path)) throw new CheckpointException(path + ": file not found; pass a .gguf file or a model directory");
        MemorySegment all;
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            all = SafetensorsFile.nativeView(ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena), arena);
        } catch (IOException e) {
            throw new CheckpointException(path + ": cannot map: " + e.getMessage(), e);
        }
        Reader r = new Reader(path, all);
        if (all.byteSize() < 24 || all.get(U32, 0) != MAGIC) {
            throw new CheckpointException(path + ": not a GGUF file (no \"GGUF\" magic in the first 4 bytes)");
        }
        r.pos = 4;
        int version = r.u32("version");
        if (version != 2 && version != 3) {
            throw new CheckpointException(path + ": GGUF version " + version + " is not supported; versions 2 and 3 are (re-convert with a current llama.cpp)");
        }
        long nTensors = r.u64("tensor count"), nKv = r.u64("metadata count");
        if (nTensors < 0 || nTensors > 1 << 20) throw r.bad("tensor count " + nTensors + " is not plausible");
        if (nKv < 0 || nKv > 1 << 20) throw r.bad("metadata count " + nKv + " is not plausible");
        Map<String, Object> meta = new LinkedHashMap<>();
        for (long i = 0; i < nKv; i++) {
            String key = r.string("metadata key " + i);
            meta.put(key, r.value(r.u32("type of " + key), key, 0));
        }
        Map<String, Info> tensors = new LinkedHashMap<>();
        for (long i = 0; i < nTensors; i++) {
            String name = r.string("tensor name " + i);
            int nd = r.u32("dimension count of " + name);
            if (nd < 1 || nd > 4) throw r.bad("tensor " + name + " has " + nd + " dimensions; GGUF allows 1 to 4");
            long[] dims = new long[nd];
            for (int d = 0; d < nd; d++) {
                dims[d] = r.u64("dimension " + d + " of " + name);
                if (dims[d] < 1 || dims[d] > Integer.MAX_VALUE) throw r.bad("tensor " + name + " has dimension " + d + " = " + dims[d]);
            }
            Info info = new Info(name, dims, r.u32("type of " + name), r.u64("offset of " + name));
            if (tensors.put(name, info) != null) throw r.bad("tensor " + name + " is listed twice");
        }
        long align = meta.get("general.alignment") instanceof Long a ? a : 32;
        if (align < 1 || align > 1 << 16 || Long.bitCount(align) != 1) throw r.bad("general.alignment is " + align + "; it must be a power of two");
        long dataStart = (r.pos + align - 1) / align * align;
        for (Info t : tensors.values()) {
            DType dt = DType.fromGgml(t.type());
            if (dt == null) continue; // refused by name when the model asks for it
            if (t.dims()[0] % dt.blockElems() != 0) {
                throw new CheckpointException(path + ": tensor " + t.name() + " has rows of " + t.dims()[0] + ", not a whole number of "
                        + dt + " blocks of " + dt.blockElems() + ": the file is damaged");
            }
            long bytes;
            try {
                bytes = dt.byteSize(t.elements());
            } catch (IllegalArgumentException e) {
                throw new CheckpointException(path + ": tensor " + t.name() + ": " + e.getMessage());
            }
            long room = all.byteSize() - dataStart; // compared without adding, so no offset can overflow past the check
            if (t.offset() < 0 || t.offset() > room || bytes > room - t.offset()) {
                throw new CheckpointException(path + ": tensor " + t.name() + " (" + bytes + " bytes at data offset " + t.offset()
                        + ") runs past the end of the file (" + all.byteSize() + " bytes): the file is truncated or damaged");
            }
        }
        return new GgufFile(path, all, Collections.unmodifiableMap(meta), Collections.unmodifiableMap(tensors), dataStart);
    }

    /** The bytes of a tensor; its type must be one we compute with. */
    public MemorySegment bytes(Info t) {
        DType dt = dtype(t);
        return all.asSlice(dataStart + t.offset(), dt.byteSize(t.elements()));
    }

    public DType dtype(Info t) {
        DType dt = DType.fromGgml(t.type());
        if (dt == null) {
            throw new CheckpointException(path + ": tensor " + t.name() + " is " + DType.ggmlName(t.type())
                    + ", which moe-serve does not compute with; supported: F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K "
                    + "(requantize with `moe quantize` or llama.cpp's llama-quantize)");
        }
        return dt;
    }

    /** Where {@code slice} (a slice of this file's mapping) starts in the file; -1 if it is not one. */
    public long fileOffsetOf(MemorySegment slice) {
        long off = slice.address() - all.address();
        return off >= 0 && off + slice.byteSize() <= all.byteSize() ? off : -1;
    }

    /** A metadata value that must be there, by key; names the file and the key when it is not. */
    public Object require(String key) {
        Object v = meta.get(key);
        if (v == null) throw new CheckpointException(path + ": metadata " + key + " is missing");
        return v;
    }

    private static final class Reader {
        final Path path;
        final MemorySegment s;
        long pos;

        Reader(Path path, MemorySegment s) {
            this.path = path;
            this.s = s;
        }

        CheckpointException bad(String what) {
            return new CheckpointException(path + ": " + what + " (header byte " + pos + "); the GGUF file is damaged");
        }

        private void need(long n, String what) {
            if (n < 0 || pos + n > s.byteSize()) {
                throw new CheckpointException(path + ": " + what + " runs past the end of the file (byte " + pos + " of "
                        + s.byteSize() + "): the file is truncated or not GGUF");
            }
        }

        int u32(String what) {
            need(4, what);
            int v = s.get(U32, pos);
            pos += 4;
            return v;
        }

        long u64(String what) {
            need(8, what);
            long v = s.get(U64, pos);
            pos += 8;
            return v;
        }

        String string(String what) {
            long n = u64(what);
            if (n > 1 << 24) throw bad(what + " has a length of " + n + " bytes");
            need(n, what);
            byte[] b = s.asSlice(pos, n).toArray(ValueLayout.JAVA_BYTE);
            pos += n;
            return new String(b, StandardCharsets.UTF_8);
        }

        Object value(int type, String key, int depth) {
            switch (type) {
                case T_UINT8, T_INT8, T_BOOL -> {
                    need(1, key);
                    byte b = s.get(ValueLayout.JAVA_BYTE, pos++);
                    return type == T_BOOL ? (Object) (b != 0) : (Object) (long) (type == T_UINT8 ? b & 0xFF : b);
                }
                case T_UINT16, T_INT16 -> {
                    need(2, key);
                    short v = s.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), pos);
                    pos += 2;
                    return (long) (type == T_UINT16 ? v & 0xFFFF : v);
                }
                case T_UINT32 -> { return u32(key) & 0xFFFFFFFFL; }
                case T_INT32 -> { return (long) u32(key); }
                case T_UINT64, T_INT64 -> { return u64(key); }
                case T_FLOAT32 -> { return (double) Float.intBitsToFloat(u32(key)); }
                case T_FLOAT64 -> { return Double.longBitsToDouble(u64(key)); }
                case T_STRING -> { return string(key); }
                case T_ARRAY -> {
                    if (depth > 2) throw bad(key + " nests arrays too deeply");
                    int et = u32(key);
                    long n = u64(key);
                    if (n < 0 || n > s.byteSize() - pos) throw bad(key + " claims " + n + " elements");
                    List<Object> out = new ArrayList<>((int) Math.min(n, 1 << 20));
                    for (long i = 0; i < n; i++) out.add(value(et, key, depth + 1));
                    return Collections.unmodifiableList(out);
                }
                default -> throw bad("metadata " + key + " has value type " + type + ", which GGUF does not define");
            }
        }
    }

    @Override
    public String toString() { return path + " (" + tensors.size() + " tensors, " + all.byteSize() + " bytes)"; }
}
