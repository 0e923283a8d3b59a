package org.moeserve.runtime.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.moeserve.runtime.model.DType;
import org.moeserve.runtime.model.ModelConfig;
import org.moeserve.runtime.model.Synth;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code moe synth}: a random-weight checkpoint of a real model's shapes. */
@Command(name = "synth", mixinStandardHelpOptions = true,
        description = "Write a random-weight checkpoint (sharded safetensors, the demo tokenizer) for a supported config.json: "
                + "real shapes without real weights, for benchmarks at real sizes. Streams; never holds a whole tensor.")
final class SynthCommand implements Callable<Integer> {
    @Option(names = "--config", paramLabel = "FILE", required = true,
            description = "A Hugging Face config.json (e.g. models/configs/mistralai--Mixtral-8x7B-v0.1.config.json).")
    Path config;

    @Option(names = "--out", paramLabel = "DIR", required = true, description = "A new (or empty) directory to write.")
    Path out;

    @Option(names = "--dtype", paramLabel = "T", description = "bf16 (default), f16 or f32.")
    String dtype = "bf16";

    @Option(names = "--seed", paramLabel = "S", description = "Random seed (default ${DEFAULT-VALUE}).")
    long seed = 1;

    @Option(names = "--layers", paramLabel = "N", description = "Keep the first N layers (real layer shapes, a smaller model); default all.")
    Integer layers;

    @Option(names = "--shard-size", paramLabel = "B", converter = Converters.Bytes.class,
            description = "Largest shard (default 4GB).")
    long shardBytes = 4_000_000_000L;

    @Option(names = "--tokenizer-from", paramLabel = "DIR",
            description = "Model directory whose tokenizer.json and tokenizer_config.json are copied (default: the bundled demo model).")
    Path tokenizerFrom;

    @Override
    public Integer call() throws IOException {
        DType dt = switch (dtype.toLowerCase(Locale.ROOT)) {
            case "bf16" -> DType.BF16;
            case "f16" -> DType.F16;
            case "f32" -> DType.F32;
            default -> throw new UsageError("--dtype is " + dtype + " but must be bf16, f16 or f32");
        };
        if (!Files.isRegularFile(config)) throw new UsageError("--config " + config + ": file not found");
        if (Files.isDirectory(out)) {
            try (var s = Files.list(out)) {
                if (s.findAny().isPresent()) throw new UsageError("--out " + out + " is not empty; choose a new directory");
            }
        }
        JsonNode raw = new ObjectMapper().readTree(config.toFile());
        if (!(raw instanceof ObjectNode obj)) throw new UsageError("--config " + config + ": not a JSON object");
        ObjectNode cfg = obj.deepCopy();
        if (layers != null) {
            int all = cfg.path("num_hidden_layers").asInt(-1);
            if (layers < 1 || all > 0 && layers > all) throw new UsageError("--layers is " + layers + " but must be 1.." + all);
            cfg.put("num_hidden_layers", layers);
        }
        ModelConfig c = ModelConfig.fromJson(cfg, config);
        if (c.vocabSize() < 256) throw new UsageError("--config " + config + ": vocab_size " + c.vocabSize() + " is below the demo tokenizer's 256 bytes");
        long bytes = Synth.bytes(c, dt);
        Path tokenizer = tokenizerFrom != null ? tokenizerFrom : new ModelOptions().modelDir();
        Files.createDirectories(out);
        long free = Files.getFileStore(out).getUsableSpace();
        if (bytes > free - (1L << 30)) { // keep a GiB free for everything else on the disk
            throw new UsageError(String.format(Locale.ROOT, "the checkpoint needs %.2f GB but %s has %.2f GB free (a GB is kept back); "
                    + "use --layers N or a smaller config", bytes / 1e9, out, free / 1e9));
        }
        long t0 = System.nanoTime();
        List<Path> files = Synth.write(cfg, c, dt, seed, shardBytes, out, tokenizer);
        double s = (System.nanoTime() - t0) / 1e9;
        System.err.printf(Locale.ROOT, "moe synth: wrote %s: %s, %d layers, %d experts of %.1f MB, %.2f GB in %d shard(s), %.1f s (%.0f MB/s)%n",
                out, c.family().architecture, c.layers(), c.experts(),
                3.0 * c.expertIntermediate() * c.hiddenSize() * dt.bytes() / 1e6, bytes / 1e9, files.size(), s, bytes / 1e6 / s);
        return 0;
    }
}
