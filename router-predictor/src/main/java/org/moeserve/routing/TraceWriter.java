package org.moeserve.routing;

import com.fasterxml.jackson.core.JsonEncoding;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Writes moe-trace/1 (JSONL): the header line, then one line per {@link TraceRecord}. */
public final class TraceWriter implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final OutputStream out;
    private final TraceHeader header;

    public TraceWriter(Path file, TraceHeader header) throws IOException {
        this(Files.newOutputStream(file), header);
    }

    public TraceWriter(OutputStream out, TraceHeader header) throws IOException {
        this.out = out;
        this.header = header;
        line(g -> {
            g.writeStartObject();
            g.writeStringField("format", TraceHeader.FORMAT);
            g.writeStringField("model", header.model());
            g.writeNumberField("layers", header.layers());
            g.writeNumberField("experts", header.experts());
            g.writeNumberField("top_k", header.topK());
            if (header.source() != null) g.writeStringField("source", header.source());
            g.writeEndObject();
        });
    }

    private interface Body { void write(JsonGenerator g) throws IOException; }

    private void line(Body body) throws IOException {
        try (JsonGenerator g = JSON.getFactory().createGenerator(out, JsonEncoding.UTF8)) {
            g.disable(JsonGenerator.Feature.AUTO_CLOSE_TARGET);
            body.write(g);
        }
        out.write('\n');
    }

    public void write(TraceRecord r) {
        for (int[][] t : r.experts()) {
            if (t.length != header.layers()) {
                throw new IllegalArgumentException("sequence " + r.id() + ": a token has " + t.length
                        + " layers but the trace header says " + header.layers());
            }
        }
        try {
            line(g -> {
                g.writeStartObject();
                g.writeStringField("id", r.id());
                g.writeStringField("domain", r.domain());
                g.writeStringField("phase", r.phase());
                g.writeArrayFieldStart("tokens");
                for (int t : r.tokens()) g.writeNumber(t);
                g.writeEndArray();
                g.writeArrayFieldStart("experts");
                for (int[][] tok : r.experts()) {
                    g.writeStartArray();
                    for (int[] layer : tok) g.writeArray(layer, 0, layer.length);
                    g.writeEndArray();
                }
                g.writeEndArray();
                if (r.weights() != null) {
                    g.writeArrayFieldStart("weights");
                    for (float[][] tok : r.weights()) {
                        g.writeStartArray();
                        for (float[] layer : tok) {
                            g.writeStartArray();
                            for (float w : layer) {
                                if (Float.isNaN(w)) g.writeNull();
                                else g.writeNumber(Math.round(w * 1e6) / 1e6); // 6 decimals: plenty for routing weights
                            }
                            g.writeEndArray();
                        }
                        g.writeEndArray();
                    }
                    g.writeEndArray();
                }
                g.writeEndObject();
            });
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void close() throws IOException { out.close(); }
}
