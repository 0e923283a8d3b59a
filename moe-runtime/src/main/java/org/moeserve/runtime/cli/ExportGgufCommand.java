package org.moeserve.runtime.cli;

import org.moeserve.runtime.model.GgufExport;
import org.moeserve.runtime.model.MoeModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code moe export-gguf}: the checkpoint as GGUF, for llama.cpp (the peer in the benchmarks). */
@Command(name = "export-gguf", mixinStandardHelpOptions = true,
        description = "Write a checkpoint as GGUF in its own dtype (llama.cpp architectures llama, qwen3moe, olmoe; byte-level BPE tokenizer). moe quantize writes quantized ones.")
final class ExportGgufCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model = new ModelOptions();

    @Option(names = "--out", paramLabel = "FILE", required = true, description = "The .gguf file to write.")
    Path out;

    @Override
    public Integer call() throws Exception {
        model.validate();
        try (MoeModel m = MoeModel.load(model.modelDir())) {
            GgufExport.write(m, out);
        }
        System.err.println("moe export-gguf: wrote " + out + " (" + java.nio.file.Files.size(out) + " bytes)");
        return 0;
    }
}
