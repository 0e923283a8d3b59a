package org.moeserve.runtime.cli;

import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;

/** Options every model-running command shares. */
final class ModelOptions {
    @Option(names = "--model", paramLabel = "DIR|FILE.gguf",
            description = "Hugging Face model directory (config.json, *.safetensors, tokenizer.json) or a GGUF file "
                    + "(llama, qwen3moe, olmoe; F32/F16/BF16/Q8_0/Q4_0/Q5_0/Q4_K/Q6_K). "
                    + "Default: the bundled demo model, models/tiny-mixtral-kjv.")
    Path model;

    @Option(names = "--threads", paramLabel = "N", description = "Compute threads. Default: all cores (${DEFAULT-VALUE}).")
    int threads = Runtime.getRuntime().availableProcessors();

    Path modelDir() {
        if (model != null) return model;
        String home = System.getProperty("moe.home");
        Path bundled = Path.of(home != null ? home : ".").resolve("models").resolve("tiny-mixtral-kjv");
        if (!Files.isDirectory(bundled)) {
            throw new IllegalArgumentException("no --model given and the bundled demo model is not at " + bundled
                    + "; pass --model DIR");
        }
        return bundled;
    }

    void validate() {
        if (threads < 1) throw new IllegalArgumentException("--threads is " + threads + " but must be >= 1");
    }
}
