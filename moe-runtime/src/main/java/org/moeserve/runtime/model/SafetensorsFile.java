package org.moeserve.runtime.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.moeserve.cache.disk.DirectFile;

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
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One safetensors file, memory-mapped read-only through FFM. Layout: an 8-byte little-endian header length N,
 * N bytes of JSON ({@code name -> {dtype, shape, data_offsets:[begin,end]}}, plus optional {@code __metadata__}),
 * then the data region; offsets are relative to the data region. Tensors are slices of the mapping: nothing is
 * copied onto the heap. The mapping lives as long as the arena it was opened in.
 */
public final class SafetensorsFile {
    /** What the header says of one tensor; dtype is the raw header string (we may not support it). */
    public record Entry(String name, String dtype, int[] shape, long begin, long end) {}

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long MAX_HEADER = 100L << 20;

    private final Path path;
    private final MemorySegment all, data;
    private final Map<String, Entry> entries;

    private SafetensorsFile(Path path, MemorySegment all, MemorySegment data, Map<String, Entry> entries) {
        this.path = path;
        this.all = all;
        this.data = data;
        this.entries = entries;
    }

    /** The whole file's mapping. */
    public MemorySegment mapping() { return all; }

    /** Where {@code slice} (a slice of this file's mapping) starts in the file; -1 if it is not one. */
    public long fileOffsetOf(MemorySegment slice) {
        long off = slice.address() - all.address();
        return off >= 0 && off + slice.byteSize() <= all.byteSize() ? off : -1;
    }

    /**
     * The same mapped memory as a plain native segment of the same arena, read-only. Every weight the kernels read
     * is then one segment class, whether mapped from a file or allocated (expert cache slots, re-laid-out q/k,
     * MLA's transposed projections): a kernel that sees two classes is compiled with per-access liveness checks it
     * cannot hoist (measured: Q8_0 decode at 13.7 tokens/s instead of 33.5 on one thread). The mapping is advised
     * huge pages ({@link DirectFile#adviseHugePages}) unless {@code -Dmoe.hugePages=false}; the disk tier takes that
     * back for its own mappings.
     */
    private static final boolean HUGE_PAGES = !"false".equals(System.getProperty("moe.hugePages"));

    static MemorySegment nativeView(MemorySegment mapped, Arena arena) {
        if (HUGE_PAGES) DirectFile.adviseHugePages(mapped);
        return MemorySegment.ofAddress(mapped.address()).reinterpret(mapped.byteSize(), arena, null).asReadOnly();
    }

    public static SafetensorsFile open(Path path, Arena arena) {
        if (!Files.isRegularFile(path)) {
            throw new CheckpointException(path + ": file not found; a model directory needs model.safetensors "
                    + "or the shards its model.safetensors.index.json names");
        }
        MemorySegment all;
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            all = nativeView(ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena), arena);
        } catch (IOException e) {
            throw new CheckpointException(path + ": cannot map: " + e.getMessage(), e);
        }
        long size = all.byteSize();
        if (size < 8) {
            throw new CheckpointException(path + ": truncated: " + size + " bytes, a safetensors file starts with an "
                    + "8-byte header length");
        }
        long n = all.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
        if (n <= 0 || n > MAX_HEADER || 8 + n > size) {
            throw new CheckpointException(path + ": corrupt safetensors header: header length " + n
                    + " but the file has " + size + " bytes (expected 0 < length <= " + Math.min(MAX_HEADER, size - 8)
                    + "); is this a safetensors file, and was it copied whole?");
        }
        String header = new String(all.asSlice(8, n).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
        JsonNode root;
        try {
            root = JSON.readTree(header);
        } catch (JsonProcessingException e) {
            throw new CheckpointException(path + ": corrupt safetensors header: not valid JSON ("
                    + e.getOriginalMessage() + ")", e);
        }
        if (root == null || !root.isObject()) {
            throw new CheckpointException(path + ": corrupt safetensors header: expected a JSON object of tensors");
        }
        MemorySegment dataRegion = all.asSlice(8 + n);
        Map<String, Entry> entries = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            if (f.getKey().equals("__metadata__")) continue;
            entries.put(f.getKey(), parseEntry(path, f.getKey(), f.getValue(), dataRegion.byteSize()));
        }
        return new SafetensorsFile(path, all, dataRegion, Collections.unmodifiableMap(entries));
    }

    private static Entry parseEntry(Path path, String name, JsonNode v, long dataBytes) {
        JsonNode dtype = v.get("dtype"), shape = v.get("shape"), offs = v.get("data_offsets");
        if (dtype == null || !dtype.isTextual() || shape == null || !shape.isArray() || offs == null
                || !offs.isArray() || offs.size() != 2) {
            throw new CheckpointException(path + ": corrupt safetensors header: tensor " + name
                    + " needs dtype (string), shape (array) and data_offsets ([begin, end]), found " + v);
        }
        int[] dims = new int[shape.size()];
        for (int i = 0; i < dims.length; i++) {
            if (!shape.get(i).canConvertToInt() || shape.get(i).asInt() < 0) {
                throw new CheckpointException(path + ": corrupt safetensors header: tensor " + name
                        + " has shape " + shape + "; dimensions must be non-negative integers");
            }
            dims[i] = shape.get(i).asInt();
        }
        long begin = offs.get(0).asLong(-1), end = offs.get(1).asLong(-1);
        if (begin < 0 || end < begin) {
            throw new CheckpointException(path + ": corrupt safetensors header: tensor " + name
                    + " has data_offsets " + offs + "; need 0 <= begin <= end");
        }
        if (end > dataBytes) {
            throw new CheckpointException(path + ": truncated: tensor " + name + " ends at byte " + end
                    + " of the data region but the file holds only " + dataBytes + " data bytes; "
                    + "re-download or re-copy the checkpoint");
        }
        DType dt = DType.fromSafetensors(dtype.asText());
        if (dt != null) {
            long elements = 1;
            for (int d : dims) elements *= d;
            if (elements * dt.bytes() != end - begin) {
                throw new CheckpointException(path + ": corrupt safetensors header: tensor " + name + " is "
                        + dtype.asText() + java.util.Arrays.toString(dims) + " (" + elements * dt.bytes()
                        + " bytes) but data_offsets span " + (end - begin) + " bytes");
            }
        }
        return new Entry(name, dtype.asText(), dims, begin, end);
    }

    public Path path() { return path; }

    public Map<String, Entry> entries() { return entries; }

    /** The tensor as a slice of the mapping. Fails if the dtype is not one we compute with. */
    public Tensor tensor(String name) {
        Entry e = entries.get(name);
        if (e == null) throw new CheckpointException(path + ": tensor " + name + " is missing");
        DType dt = DType.fromSafetensors(e.dtype());
        if (dt == null) {
            throw new CheckpointException(path + ": tensor " + name + " has dtype " + e.dtype()
                    + "; supported dtypes are BF16, F16 and F32");
        }
        return new Tensor(name, dt, e.shape(), data.asSlice(e.begin(), e.end() - e.begin()));
    }
}
