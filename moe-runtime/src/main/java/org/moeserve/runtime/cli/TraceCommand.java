package org.moeserve.runtime.cli;

import org.moeserve.routing.TraceHeader;
import org.moeserve.routing.TraceWriter;
import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.engine.RoutingTracer;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.MoeModel;
import org.moeserve.runtime.model.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code moe trace}: run the model over text files and write every token's expert path as moe-trace/1. */
@Command(name = "trace", mixinStandardHelpOptions = true,
        description = "Record every token's expert path over text files (moe-trace/1, see TRACE-FORMAT.md).")
final class TraceCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model = new ModelOptions();

    @Option(names = "--input", required = true, paramLabel = "TEXTFILE",
            description = "Text to run; repeat for several files. Each file is one domain, named after the file.")
    List<Path> inputs;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "The moe-trace/1 file to write.")
    Path out;

    @Option(names = "--domain", paramLabel = "NAME", description = "Domain of the sequences (only with one --input).")
    String domain;

    @Option(names = "--chunk", paramLabel = "N",
            description = "Tokens per sequence (default and maximum: the model's context).")
    Integer chunk;

    @Option(names = "--max-sequences", paramLabel = "N", description = "Stop after N sequences per file.")
    int maxSequences = Integer.MAX_VALUE;

    @Override
    public Integer call() throws IOException {
        model.validate();
        if (domain != null && inputs.size() != 1) {
            throw new IllegalArgumentException("--domain names the domain of one --input, but " + inputs.size()
                    + " were given; leave it out to name each domain after its file");
        }
        try (MoeModel m = MoeModel.load(model.modelDir());
             Tokenizer tok = Tokenizer.load(m.dir(), m.config());
             Parallel par = new Parallel(model.threads)) {
            int ctx = m.config().maxPositions();
            int len = chunk == null ? Math.min(ctx, 256) : chunk;
            if (len < 1 || len > ctx) {
                throw new IllegalArgumentException("--chunk is " + len + " but must be in 1.." + ctx + " (the context)");
            }
            Engine engine = new Engine(m, par);
            TraceHeader header = new TraceHeader(m.name(), m.config().moeLayers(), m.config().experts(), m.config().topK(),
                    "moe-serve trace: prefill of " + len + "-token chunks; token ids are the model's");
            int total = 0;
            try (TraceWriter w = new TraceWriter(out, header)) {
                for (Path in : inputs) {
                    if (!Files.isRegularFile(in)) throw new IllegalArgumentException(in + ": --input file not found");
                    String dom = domain != null ? domain : in.getFileName().toString().replaceFirst("\\.[^.]*$", "");
                    int[] ids = tok.encode(Files.readString(in, StandardCharsets.UTF_8));
                    int n = 0;
                    for (int off = 0; off < ids.length && n < maxSequences; off += len, n++) {
                        int[] part = java.util.Arrays.copyOfRange(ids, off, Math.min(ids.length, off + len));
                        w.write(RoutingTracer.trace(engine, dom + "-" + n, dom, part));
                    }
                    total += n;
                    System.err.printf("moe trace: %s: %d tokens, %d sequences%n", in, ids.length, n);
                }
            }
            System.err.printf("moe trace: wrote %d sequences to %s%n", total, out);
        }
        return 0;
    }
}
