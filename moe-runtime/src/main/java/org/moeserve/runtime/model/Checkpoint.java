package org.moeserve.runtime.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeSet;

/**
 * A Hugging Face model directory: config.json plus model.safetensors, or the shards named by
 * model.safetensors.index.json. Every shard is memory-mapped in one shared arena, closed with the checkpoint.
 * {@link #tensor(String, DType, int...)} checks shape and dtype and says what was expected and what was found.
 */
public final class Checkpoint implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path dir;
    private final ModelConfig config;
    private final JsonNode rawConfig;
    private final Arena arena;
    private final Map<String, SafetensorsFile> byTensor;
    private final java.util.List<SafetensorsFile> files; // distinct, in shard order

    private Checkpoint(Path dir, ModelConfig config, JsonNode rawConfig, Arena arena, Map<String, SafetensorsFile> byTensor) {
        this.dir = dir;
        this.config = config;
        this.rawConfig = rawConfig;
        this.arena = arena;
        this.byTensor = byTensor;
        this.files = java.util.List.copyOf(new java.util.LinkedHashSet<>(byTensor.values()));
    }

    public static Checkpoint open(Path given) {
        Path dir = given.toAbsolutePath().normalize(); // every error names whole paths
        if (!Files.isDirectory(dir)) {
            throw new CheckpointException(dir + ": model directory not found; pass a Hugging Face model directory "
                    + "(config.json + *.safetensors)");
        }
        Path cfgFile = dir.resolve("config.json");
        JsonNode raw = readJson(cfgFile);
        ModelConfig config = ModelConfig.fromJson(raw, cfgFile);
        Arena arena = Arena.ofShared();
        try {
            Map<String, SafetensorsFile> byTensor = new LinkedHashMap<>();
            Path index = dir.resolve("model.safetensors.index.json");
            Path single = dir.resolve("model.safetensors");
            if (Files.isRegularFile(index)) {
                JsonNode map = readJson(index).get("weight_map");
                if (map == null || !map.isObject()) {
                    throw new CheckpointException(index + ": weight_map is missing; expected {tensor name: shard file}");
                }
                Map<String, SafetensorsFile> shards = new LinkedHashMap<>();
                for (Iterator<Map.Entry<String, JsonNode>> it = map.properties().iterator(); it.hasNext(); ) {
                    Map.Entry<String, JsonNode> e = it.next();
                    String shard = e.getValue().asText();
                    SafetensorsFile f = shards.computeIfAbsent(shard, s -> SafetensorsFile.open(dir.resolve(s), arena));
                    if (!f.entries().containsKey(e.getKey())) {
                        throw new CheckpointException(f.path() + ": tensor " + e.getKey() + " is missing, though "
                                + index.getFileName() + " places it in this shard");
                    }
                    byTensor.put(e.getKey(), f);
                }
            } else if (Files.isRegularFile(single)) {
                SafetensorsFile f = SafetensorsFile.open(single, arena);
                for (String name : f.entries().keySet()) byTensor.put(name, f);
            } else {
                throw new CheckpointException(dir + ": no weights: expected model.safetensors or "
                        + "model.safetensors.index.json with its shards");
            }
            return new Checkpoint(dir, config, raw, arena, byTensor);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    static JsonNode readJson(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new CheckpointException(file + ": file not found");
        }
        try {
            return JSON.readTree(file.toFile());
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            var at = e.getLocation();
            throw new CheckpointException(file.toAbsolutePath() + ": not valid JSON: " + e.getOriginalMessage()
                    + (at == null ? "" : " (line " + at.getLineNr() + ", column " + at.getColumnNr() + ")"), e);
        } catch (IOException e) {
            throw new CheckpointException(file.toAbsolutePath() + ": cannot read: " + e.getMessage(), e);
        }
    }

    public Path dir() { return dir; }

    public ModelConfig config() { return config; }

    public JsonNode rawConfig() { return rawConfig; }

    public boolean has(String name) { return byTensor.containsKey(name); }

    public TreeSet<String> tensorNames() { return new TreeSet<>(byTensor.keySet()); }

    /**
     * The named tensor, which must have this shape; its dtype must be one we compute with and, if
     * {@code dtype} is not null, exactly that one.
     */
    public Tensor tensor(String name, DType dtype, int... shape) {
        SafetensorsFile f = byTensor.get(name);
        if (f == null) {
            throw new CheckpointException(dir + ": tensor " + name + " is missing; config.json describes a "
                    + config.family().architecture + " with " + config.layers() + " layers and " + config.experts()
                    + " experts, which needs it");
        }
        SafetensorsFile.Entry e = f.entries().get(name);
        if (!Arrays.equals(e.shape(), shape)) {
            throw new CheckpointException(f.path().toAbsolutePath() + ": tensor " + name + " has shape "
                    + Arrays.toString(e.shape()) + ", config wants " + Arrays.toString(shape));
        }
        Tensor t = f.tensor(name);
        if (dtype != null && t.dtype() != dtype) {
            throw new CheckpointException(f.path().toAbsolutePath() + ": tensor " + name + " has dtype " + t.dtype()
                    + " but the checkpoint's other weights are " + dtype + "; a checkpoint must use one dtype");
        }
        return t;
    }

    /** The memory mappings of the checkpoint's files. */
    public java.util.List<MemorySegment> mappings() {
        return files.stream().map(SafetensorsFile::mapping).toList();
    }

    /** A byte range of one of the checkpoint's files. */
    public record FileRange(Path file, long offset, long length) {}

    /** The file and offset that {@code slice} (a tensor's data, or part of it) was mapped from. */
    public FileRange locate(MemorySegment slice) {
        for (SafetensorsFile f : files) {
            long off = f.fileOffsetOf(slice);
            if (off >= 0) return new FileRange(f.path(), off, slice.byteSize());
        }
        throw new IllegalArgumentException("a segment of " + slice.byteSize() + " bytes is not mapped from " + dir
                + "; only checkpoint tensors can be read from disk");
    }

    @Override
    public void close() { arena.close(); }
}
