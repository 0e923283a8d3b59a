package org.moeserve.runtime.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Writes a random-weight checkpoint for a config: real shapes without real weights. Sharded safetensors (HF's
 * {@code model-0000i-of-0000n.safetensors} plus {@code model.safetensors.index.json}), streamed in 4 MiB chunks so
 * no tensor is ever held whole. Weights are uniform with unit output variance (|w| <= sqrt(3 / in_features)), norm
 * weights are ones; each tensor's values depend on the seed and its name only, so sharding changes no value.
 */
public final class Synth {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Synth() {}

    /** Bytes the checkpoint of {@code c} takes in {@code dtype}. */
    public static long bytes(ModelConfig c, DType dtype) {
        long n = 0;
        for (Manifest.Entry e : Manifest.of(c)) n += e.elements() * dtype.bytes();
        return n;
    }

    /**
     * Writes config.json ({@code rawConfig} with torch_dtype set), the shards and their index into {@code out}, and
     * copies the tokenizer files from {@code tokenizerDir}. Returns the shard files.
     */
    public static List<Path> write(ObjectNode rawConfig, ModelConfig c, DType dtype, long seed, long shardBytes, Path out,
                                   Path tokenizerDir) throws IOException {
        Files.createDirectories(out);
        List<List<Manifest.Entry>> shards = new ArrayList<>();
        long size = Long.MAX_VALUE;
        for (Manifest.Entry e : Manifest.of(c)) {
            long b = e.elements() * dtype.bytes();
            if (shards.isEmpty() || size + b > shardBytes && size > 0) {
                shards.add(new ArrayList<>());
                size = 0;
            }
            shards.getLast().add(e);
            size += b;
        }
        List<Path> files = new ArrayList<>();
        ObjectNode weightMap = JSON.createObjectNode();
        for (int s = 0; s < shards.size(); s++) {
            String name = shards.size() == 1 ? "model.safetensors"
                    : String.format("model-%05d-of-%05d.safetensors", s + 1, shards.size());
            Path f = out.resolve(name);
            writeShard(f, shards.get(s), dtype, seed);
            for (Manifest.Entry e : shards.get(s)) weightMap.put(e.name(), name);
            files.add(f);
        }
        if (shards.size() > 1) {
            ObjectNode index = JSON.createObjectNode();
            index.putObject("metadata").put("total_size", bytes(c, dtype));
            index.set("weight_map", weightMap);
            JSON.writerWithDefaultPrettyPrinter().writeValue(out.resolve("model.safetensors.index.json").toFile(), index);
        }
        ObjectNode config = rawConfig.deepCopy();
        config.put("torch_dtype", switch (dtype) { case BF16 -> "bfloat16"; case F16 -> "float16"; case F32 -> "float32";
            default -> throw new IllegalArgumentException("synth writes safetensors: bf16, f16 or f32, not " + dtype); });
        JSON.writerWithDefaultPrettyPrinter().writeValue(out.resolve("config.json").toFile(), config);
        for (String t : List.of("tokenizer.json", "tokenizer_config.json")) {
            Files.copy(tokenizerDir.resolve(t), out.resolve(t), StandardCopyOption.REPLACE_EXISTING);
        }
        return files;
    }

    private static void writeShard(Path f, List<Manifest.Entry> entries, DType dtype, long seed) throws IOException {
        ObjectNode header = JSON.createObjectNode();
        header.putObject("__metadata__").put("format", "pt").put("moe_synth_seed", Long.toString(seed));
        long off = 0;
        for (Manifest.Entry e : entries) {
            ObjectNode t = header.putObject(e.name());
            t.put("dtype", dtype.name());
            ArrayNode shape = t.putArray("shape");
            for (int d : e.shape()) shape.add(d);
            long b = e.elements() * dtype.bytes();
            t.putArray("data_offsets").add(off).add(off + b);
            off += b;
        }
        byte[] json = JSON.writeValueAsBytes(header);
        int padded = (json.length + 8 + 4095) / 4096 * 4096 - 8; // data starts page-aligned: direct reads need no superset
        ByteBuffer buf = ByteBuffer.allocateDirect(4 << 20).order(ByteOrder.LITTLE_ENDIAN);
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            buf.putLong(padded);
            buf.put(json);
            for (int i = json.length; i < padded; i++) buf.put((byte) ' ');
            flush(ch, buf);
            for (Manifest.Entry e : entries) {
                SplittableRandom rng = new SplittableRandom(seed ^ (e.name().hashCode() * 0x9E3779B97F4A7C15L));
                float scale = e.norm() ? 0 : (float) Math.sqrt(3.0 / e.shape()[e.shape().length - 1]) / (1 << 23);
                for (long i = 0; i < e.elements(); i++) {
                    float v = e.norm() ? 1f : (rng.nextInt() >> 8) * scale;
                    switch (dtype) {
                        case F32 -> buf.putFloat(v);
                        case F16 -> buf.putShort(Float.floatToFloat16(v));
                        case BF16 -> buf.putShort((short) ((Float.floatToRawIntBits(v) + 0x8000) >>> 16));
                    }
                    if (buf.remaining() < 4) flush(ch, buf);
                }
            }
            flush(ch, buf);
        }
    }

    private static void flush(FileChannel ch, ByteBuffer buf) throws IOException {
        buf.flip();
        while (buf.hasRemaining()) ch.write(buf);
        buf.clear();
    }
}
