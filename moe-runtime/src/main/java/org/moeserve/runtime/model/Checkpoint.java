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
    private final GgufFile gguf;                        // or a GGUF file, its tensors under Hugging Face names
    private final Map<String, Tensor> ggufTensors;

    private Checkpoint(Path dir, ModelConfig config, JsonNode rawConfig, Arena arena, Map<String, SafetensorsFile> byTensor,
                       GgufFile gguf, Map<String, Tensor> ggufTensors) {
        this.dir = dir;
        this.config = config;
        this.rawConfig = rawConfig;
        this.arena = arena;
        this.byTensor = byTensor;
        this.files = java.util.List.copyOf(new java.util.LinkedHashSet<>(byTensor.values()));
        this.gguf = gguf;
        this.ggufTensors = ggufTensors;
    }

    /**
     * A Hugging Face model directory or a GGUF file ({@link GgufModel}). A GGUF checkpoint mixes dtypes (norms F32,
     * matrices in block formats), so the one-dtype rule of {@link #tensor} applies to directories only.
     */
    public static Checkpoint open(Path given) {
        Path dir = given.toAbsolutePath().normalize(); // every error names whole paths
        if (Files.isRegularFile(dir)) {
            if (!GgufFile.looksLikeGguf(dir)) {
                throw new CheckpointException(dir + ": not a model: pass a Hugging Face model directory (config.json + "
                        + "*.safetensors) or a GGUF file");
            }
            Arena arena = Arena.ofShared();
            try {
                GgufFile g = GgufFile.open(dir, arena);
                GgufModel.Loaded l = GgufModel.load(g, arena);
                return new Checkpoint(dir, l.config(), l.rawConfig(), arena, Map.of(), g, l.tensors());
            } catch (RuntimeException e) {
                arena.close();
                throw e;
            }
        }
        if (!Files.isDirectory(dir)) {
            throw new CheckpointException(dir + ": model directory not found; pass a Hugging Face model directory "
                    + "(config.json + *.safetensors) or a GGUF file");
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
            return new Checkpoint(dir, config, raw, arena, byTensor, null, null);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** The config of a model directory or GGUF file, without keeping anything open. */
    public static ModelConfig configOf(Path model) {
        if (Files.isRegularFile(model) && GgufFile.looksLikeGguf(model)) {
            try (Arena arena = Arena.ofConfined()) { // the metadata only: no tensor is sliced or copied
                return GgufModel.config(GgufFile.open(model, arena)).config();
            }
        }
        Path cfg = model.resolve("config.json");
        return ModelConfig.fromJson(readJson(cfg), cfg);
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

    /** The model directory, or the GGUF file. */
    public Path dir() { return dir; }

    /** The GGUF file this checkpoint was read from, or null for a Hugging Face directory. */
    public GgufFile gguf() { return gguf; }

    public ModelConfig config() { return config; }

    public JsonNode rawConfig() { return rawConfig; }

    public boolean has(String name) { return gguf != null ? ggufTensors.containsKey(name) : byTensor.containsKey(name); }

    public TreeSet<String> tensorNames() { return new TreeSet<>(gguf != null ? ggufTensors.keySet() : byTensor.keySet()); }

    /**
     * The named tensor, which must have this shape; its dtype must be one we compute with and, if
     * {@code dtype} is not null, exactly that one.
     */
    public Tensor tensor(String name, DType dtype, int... shape) {
        if (gguf != null) return ggufTensor(name, shape);
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

    private Tensor ggufTensor(String name, int[] shape) {
        Tensor t = ggufTensors.get(name);
        if (t == null) {
            throw new CheckpointException(dir + ": tensor " + name + " (in llama.cpp's names: " + ggufName(name) + ") is missing; the "
                    + "metadata describes a " + config.family().architecture + " with " + config.layers() + " layers and "
                    + config.experts() + " experts, which needs it");
        }
        if (!Arrays.equals(t.shape(), shape)) {
            throw new CheckpointException(dir + ": tensor " + ggufName(name) + " has shape " + Arrays.toString(t.shape())
                    + " (rows, cols), the metadata wants " + Arrays.toString(shape));
        }
        return t;
    }

    /** The GGUF name of a Hugging Face tensor name, for messages. */
    private static String ggufName(String hf) {
        return hf.replaceAll("model\\.layers\\.(\\d+)\\.", "blk.$1.").replace("model.embed_tokens", "token_embd")
                .replace("lm_head", "output").replace("model.norm", "output_norm").replace("self_attn.q_proj", "attn_q")
                .replace("self_attn.k_proj", "attn_k").replace("self_attn.v_proj", "attn_v").replace("self_attn.o_proj", "attn_output")
                .replaceAll("(block_sparse_moe|mlp)\\.experts\\.(\\d+)\\.(w1|gate_proj)", "ffn_gate_exps[$2]")
                .replaceAll("(block_sparse_moe|mlp)\\.experts\\.(\\d+)\\.(w3|up_proj)", "ffn_up_exps[$2]")
                .replaceAll("(block_sparse_moe|mlp)\\.experts\\.(\\d+)\\.(w2|down_proj)", "ffn_down_exps[$2]")
                .replaceAll("(block_sparse_moe|mlp)\\.gate\\.", "ffn_gate_inp.");
    }

    /** The memory mappings of the checkpoint's files. */
    public java.util.List<MemorySegment> mappings() {
        if (gguf != null) return java.util.List.of(gguf.mapping());
        return files.stream().map(SafetensorsFile::mapping).toList();
    }

    /** A byte range of one of the checkpoint's files. */
    public record FileRange(Path file, long offset, long length) {}

    /** The file and offset that {@code slice} (a tensor's data, or part of it) was mapped from. */
    public FileRange locate(MemorySegment slice) {
        if (gguf != null && gguf.fileOffsetOf(slice) >= 0) return new FileRange(gguf.path(), gguf.fileOffsetOf(slice), slice.byteSize());
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
