package org.moeserve.runtime.cli;

import org.moeserve.runtime.model.DType;
import org.moeserve.runtime.model.GgufExport;
import org.moeserve.runtime.model.MoeModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code moe quantize}: a checkpoint as a quantized GGUF file, in llama.cpp's block formats. */
@Command(name = "quantize", mixinStandardHelpOptions = true,
        description = {"Write a checkpoint (directory or GGUF) as a quantized GGUF file that llama.cpp and moe-serve both run.",
                "q8_0: 8.5 bits per weight; q4_0: 4.5; q4_k_m: llama.cpp's Q4_K_M mix (Q4_K, Q6_K for output, attn_v and "
                        + "ffn_down in some layers), about 4.8; f32: every matrix decoded (the reference of a quantized file).",
                "The router and the norms are never quantized. The type and scope are recorded in the file's metadata."})
final class QuantizeCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model = new ModelOptions();

    @Option(names = "--type", paramLabel = "TYPE", required = true, description = "q8_0, q4_0, q4_k_m or f32.")
    String type;

    @Option(names = "--experts-only", description = "Quantize the experts only; attention, embeddings and output keep their dtype.")
    boolean expertsOnly;

    @Option(names = "--out", paramLabel = "FILE.gguf", required = true, description = "The GGUF file to write.")
    Path out;

    @Override
    public Integer call() throws Exception {
        model.validate();
        GgufExport.Target target;
        try {
            target = GgufExport.Target.parse(type);
        } catch (IllegalArgumentException e) {
            throw new UsageError(e.getMessage());
        }
        if (Files.isDirectory(out)) throw new UsageError("--out " + out + " is a directory; give the .gguf file to write");
        Path in = model.modelDir().toAbsolutePath().normalize();
        if (in.equals(out.toAbsolutePath().normalize())) throw new UsageError("--out is the input model; write to another file");
        long t0 = System.nanoTime();
        try (MoeModel m = MoeModel.load(in)) {
            GgufExport.write(m, out, new GgufExport.Quantization(target, expertsOnly));
        }
        double s = (System.nanoTime() - t0) / 1e9;
        try (MoeModel q = MoeModel.load(out)) { // read back: the file loads, and this is what it holds
            java.util.Map<DType, Long> bytes = new java.util.TreeMap<>();
            for (int l = 0; l < q.config().layers(); l++) {
                MoeModel.Layer L = q.layer(l);
                for (var t : new org.moeserve.runtime.model.Tensor[]{L.wq(), L.wk(), L.wv(), L.wo()}) {
                    if (t != null) bytes.merge(t.dtype(), t.data().byteSize(), Long::sum);
                }
                if (L.experts() != null) for (var e : L.experts()) {
                    for (var t : new org.moeserve.runtime.model.Tensor[]{e.gate(), e.up(), e.down()}) bytes.merge(t.dtype(), t.data().byteSize(), Long::sum);
                }
            }
            System.err.printf("moe quantize: wrote %s (%.1f MB, %s, %s) in %.1f s; attention and expert bytes by type: %s%n",
                    out, Files.size(out) / 1e6, target.name().toLowerCase(java.util.Locale.ROOT), expertsOnly ? "experts only" : "all matrices",
                    s, bytes);
        }
        return 0;
    }
}
