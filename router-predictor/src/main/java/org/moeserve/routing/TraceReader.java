package org.moeserve.routing;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads moe-trace/1. Strict: a header of an unknown format, a sequence whose paths do not have the header's
 * shape, an expert id out of range, all fail with the file, the line number, the field and the value.
 */
public final class TraceReader {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** A whole trace in memory. */
    public record Trace(TraceHeader header, List<TraceRecord> records) {}

    private TraceReader() {}

    /** A moe-trace/1 file, or an SGLang per_token dump ({@code torch.save} zip; see {@link org.moeserve.routing.torch.SglangDump}). */
    public static Trace read(Path file) throws IOException {
        if (org.moeserve.routing.torch.TorchFile.looksLikeTorchZip(file)) return org.moeserve.routing.torch.SglangDump.trace(file).trace();
        try {
            return readText(file);
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new TraceFormatException(file.toAbsolutePath() + ": not UTF-8 text; a moe-trace/1 file is JSON lines "
                    + "(is it a binary file?)", e);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new TraceFormatException(file.toAbsolutePath() + ": no such file", e);
        }
    }

    private static Trace readText(Path file) throws IOException {
        try (BufferedReader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            String first = in.readLine();
            if (first == null) throw new TraceFormatException(file.toAbsolutePath() + ": empty file; line 1 must be a moe-trace/1 header");
            JsonNode h = parse(file, 1, first);
            String format = h.path("format").asText(null);
            if (!TraceHeader.FORMAT.equals(format)) {
                throw new TraceFormatException(file.toAbsolutePath() + ":1: format is " + h.get("format") + " but must be \""
                        + TraceHeader.FORMAT + "\"");
            }
            TraceHeader header;
            try {
                header = new TraceHeader(h.path("model").asText(""), intField(file, 1, h, "layers"),
                        intField(file, 1, h, "experts"), intField(file, 1, h, "top_k"), h.path("source").asText(null));
            } catch (IllegalArgumentException e) {
                throw new TraceFormatException(file.toAbsolutePath() + ":1: " + e.getMessage(), e);
            }
            List<TraceRecord> records = new ArrayList<>();
            String line;
            int n = 1;
            while ((line = in.readLine()) != null) {
                n++;
                if (line.isBlank()) continue;
                records.add(record(file, n, parse(file, n, line), header));
            }
            if (records.isEmpty()) {
                throw new TraceFormatException(file.toAbsolutePath() + ": the header is all there is; a trace needs at least one sequence "
                        + "(line 2 onwards)");
            }
            return new Trace(header, records);
        }
    }

    private static JsonNode parse(Path file, int line, String text) {
        try {
            JsonNode n = JSON.readTree(text);
            if (n == null || !n.isObject()) throw new TraceFormatException(file.toAbsolutePath() + ":" + line + ": expected a JSON object");
            return n;
        } catch (JsonProcessingException e) {
            throw new TraceFormatException(file.toAbsolutePath() + ":" + line + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
    }

    private static int intField(Path file, int line, JsonNode n, String field) {
        JsonNode v = n.get(field);
        if (v == null || !v.canConvertToInt()) {
            throw new TraceFormatException(file.toAbsolutePath() + ":" + line + ": " + field + " is " + (v == null ? "missing" : v)
                    + " but must be an integer");
        }
        return v.asInt();
    }

    private static TraceRecord record(Path file, int line, JsonNode n, TraceHeader h) {
        String where = file.toAbsolutePath() + ":" + line + ": ";
        JsonNode ex = n.get("experts");
        if (ex == null || !ex.isArray()) throw new TraceFormatException(where + "experts is missing or not an array");
        int[][][] experts = new int[ex.size()][][]; // rows allocated as they are read: bounded by the file, not the header
        for (int t = 0; t < ex.size(); t++) {
            JsonNode tok = ex.get(t);
            if (!tok.isArray() || tok.size() != h.layers()) {
                throw new TraceFormatException(where + "experts[" + t + "] is " + tok + " but must list " + h.layers()
                        + " layers (header)");
            }
            experts[t] = new int[h.layers()][h.topK()];
            for (int l = 0; l < h.layers(); l++) {
                JsonNode cell = tok.get(l);
                if (!cell.isArray() || cell.size() != h.topK()) {
                    throw new TraceFormatException(where + "experts[" + t + "][" + l + "] is " + cell + " but must hold "
                            + h.topK() + " expert ids (top_k)");
                }
                for (int k = 0; k < h.topK(); k++) {
                    int e = cell.get(k).asInt(Integer.MIN_VALUE);
                    if (!cell.get(k).canConvertToInt() || e < -1 || e >= h.experts()) {
                        throw new TraceFormatException(where + "experts[" + t + "][" + l + "][" + k + "] is " + cell.get(k)
                                + " but must be an expert id in 0.." + (h.experts() - 1) + " or -1 (unknown)");
                    }
                    for (int j = 0; j < k; j++) {
                        if (e >= 0 && experts[t][l][j] == e) {
                            throw new TraceFormatException(where + "experts[" + t + "][" + l + "] is " + cell + ": expert " + e
                                    + " appears twice; a token's top-k experts are distinct");
                        }
                    }
                    experts[t][l][k] = e;
                }
            }
        }
        float[][][] weights = null;
        JsonNode w = n.get("weights");
        if (w != null && !w.isNull()) {
            if (!w.isArray() || w.size() != ex.size()) {
                throw new TraceFormatException(where + "weights has " + w.size() + " rows but experts has " + ex.size());
            }
            weights = new float[ex.size()][h.layers()][h.topK()];
            for (int t = 0; t < ex.size(); t++) {
                for (int l = 0; l < h.layers(); l++) {
                    JsonNode cell = w.get(t).get(l);
                    if (cell == null || !cell.isArray() || cell.size() != h.topK()) {
                        throw new TraceFormatException(where + "weights[" + t + "][" + l + "] is " + cell
                                + " but must hold " + h.topK() + " numbers or nulls");
                    }
                    for (int k = 0; k < h.topK(); k++) {
                        weights[t][l][k] = cell.get(k).isNull() ? Float.NaN : (float) cell.get(k).asDouble();
                    }
                }
            }
        }
        JsonNode tk = n.path("tokens");
        int[] tokens = new int[tk.size()];
        for (int i = 0; i < tokens.length; i++) tokens[i] = tk.get(i).asInt();
        try {
            return new TraceRecord(n.path("id").asText(""), n.path("domain").asText(""), n.path("phase").asText("mixed"),
                    tokens, experts, weights);
        } catch (IllegalArgumentException e) {
            throw new TraceFormatException(where + e.getMessage(), e);
        }
    }
}
