package org.moeserve.routing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Map;
import java.util.TreeMap;

/**
 * moe-stats/1 (shared/TRACE-FORMAT.md): aggregated routing statistics, for when only counts are public.
 * Only the layers and layer pairs that were published are present; consumers say which they used.
 *
 * @param load                   load[l][e]: top-k selections of expert e at layer l
 * @param loadTop1               the same for the top-1 choice only
 * @param transitionsTop1        "a->b" -> [i][j]: tokens whose top-1 was i at layer a and j at layer b
 * @param transitionsRankAligned "a->b" -> [i][j]: the k-th choice at a paired with the k-th at b, over k
 */
public record RoutingStats(String model, int layers, int experts, int topK, String domain, long tokens,
                           Map<Integer, long[]> load, Map<Integer, long[]> loadTop1,
                           Map<String, long[][]> transitionsTop1, Map<String, long[][]> transitionsRankAligned) {
    public static final String FORMAT = "moe-stats/1";
    private static final ObjectMapper JSON = new ObjectMapper();

    public RoutingStats {
        load = new TreeMap<>(load);
        loadTop1 = new TreeMap<>(loadTop1);
        transitionsTop1 = new TreeMap<>(transitionsTop1);
        transitionsRankAligned = new TreeMap<>(transitionsRankAligned);
    }

    /** "a->b" as the pair {a, b}. */
    public static int[] pair(String key) {
        String[] p = key.split("->");
        return new int[]{Integer.parseInt(p[0].trim()), Integer.parseInt(p[1].trim())};
    }

    /**
     * moe-stats/1, SGLang's {@code {"logical_count": ...}} JSON, or an SGLang expert-distribution dump (stat, per_pass or
     * per_token; see {@link org.moeserve.routing.torch.SglangDump}).
     */
    public static RoutingStats read(Path file) throws IOException {
        if (org.moeserve.routing.torch.TorchFile.looksLikeTorchZip(file)) return org.moeserve.routing.torch.SglangDump.stats(file).stats();
        JsonNode n;
        try {
            n = JSON.readTree(file.toFile());
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new TraceFormatException(file.toAbsolutePath() + ": not valid JSON (moe-stats/1 is one JSON object): "
                    + e.getOriginalMessage(), e);
        } catch (java.io.FileNotFoundException e) {
            throw new TraceFormatException(file.toAbsolutePath() + ": no such file", e);
        }
        if (n != null && n.isObject() && !n.has("format") && n.has("logical_count")) {
            return org.moeserve.routing.torch.SglangDump.fromJsonCount(file, n).stats();
        }
        if (n == null || !FORMAT.equals(n.path("format").asText(null))) {
            throw new TraceFormatException(file.toAbsolutePath() + ": format is " + (n == null ? "missing" : n.get("format"))
                    + " but must be \"" + FORMAT + "\"");
        }
        int layers = intField(file, n, "layers", TraceHeader.MAX_LAYERS), experts = intField(file, n, "experts", TraceHeader.MAX_EXPERTS);
        int topK = intField(file, n, "top_k", Math.min(experts, TraceHeader.MAX_TOP_K));
        return new RoutingStats(n.path("model").asText(""), layers, experts, topK, n.path("domain").asText(""),
                n.path("tokens").asLong(0), vectors(file, n, "load", layers, experts),
                vectors(file, n, "load_top1", layers, experts), matrices(file, n, "transitions_top1", layers, experts),
                matrices(file, n, "transitions_rank_aligned", layers, experts));
    }

    private static int intField(Path file, JsonNode n, String f, int max) {
        JsonNode v = n.get(f);
        if (v == null || !v.canConvertToInt() || v.asInt() <= 0 || v.asInt() > max) {
            throw new TraceFormatException(file.toAbsolutePath() + ": " + f + " is " + (v == null ? "missing" : v)
                    + " but must be an integer in 1.." + max);
        }
        return v.asInt();
    }

    private static Map<Integer, long[]> vectors(Path file, JsonNode n, String field, int layers, int experts) {
        Map<Integer, long[]> out = new TreeMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = n.path(field).properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            int l = layerKey(file, field, e.getKey(), layers);
            out.put(l, row(file, field + "[" + e.getKey() + "]", e.getValue(), experts));
        }
        return out;
    }

    private static Map<String, long[][]> matrices(Path file, JsonNode n, String field, int layers, int experts) {
        Map<String, long[][]> out = new TreeMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = n.path(field).properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            int[] p;
            try {
                p = pair(e.getKey());
            } catch (RuntimeException ex) {
                throw new TraceFormatException(file.toAbsolutePath() + ": " + field + " has key \"" + e.getKey()
                        + "\" but keys must read \"a->b\" with layer numbers a and b");
            }
            layerKey(file, field, String.valueOf(p[0]), layers);
            layerKey(file, field, String.valueOf(p[1]), layers);
            JsonNode m = e.getValue();
            if (!m.isArray() || m.size() != experts) {
                throw new TraceFormatException(file.toAbsolutePath() + ": " + field + "[\"" + e.getKey() + "\"] has " + m.size()
                        + " rows but must have " + experts + " (experts)");
            }
            long[][] mat = new long[experts][];
            for (int i = 0; i < experts; i++) mat[i] = row(file, field + "[\"" + e.getKey() + "\"][" + i + "]", m.get(i), experts);
            out.put(p[0] + "->" + p[1], mat);
        }
        return out;
    }

    private static int layerKey(Path file, String field, String key, int layers) {
        int l;
        try {
            l = Integer.parseInt(key.trim());
        } catch (NumberFormatException e) {
            l = -1;
        }
        if (l < 0 || l >= layers) {
            throw new TraceFormatException(file.toAbsolutePath() + ": " + field + " names layer \"" + key + "\" but layers are 0.."
                    + (layers - 1));
        }
        return l;
    }

    private static long[] row(Path file, String where, JsonNode a, int experts) {
        if (!a.isArray() || a.size() != experts) {
            throw new TraceFormatException(file.toAbsolutePath() + ": " + where + " has " + a.size() + " entries but must have "
                    + experts + " (experts)");
        }
        long[] r = new long[experts];
        for (int i = 0; i < experts; i++) {
            if (!a.get(i).isNumber() || a.get(i).asDouble() < 0) {
                throw new TraceFormatException(file.toAbsolutePath() + ": " + where + "[" + i + "] is " + a.get(i)
                        + " but must be a count >= 0");
            }
            r[i] = Math.round(a.get(i).asDouble());
        }
        return r;
    }

    public void write(Path file) throws IOException {
        ObjectNode n = JSON.createObjectNode();
        n.put("format", FORMAT).put("model", model).put("layers", layers).put("experts", experts).put("top_k", topK)
                .put("domain", domain).put("tokens", tokens);
        ObjectNode l = n.putObject("load"), l1 = n.putObject("load_top1");
        load.forEach((k, v) -> putRow(l.putArray(String.valueOf(k)), v));
        loadTop1.forEach((k, v) -> putRow(l1.putArray(String.valueOf(k)), v));
        ObjectNode t = n.putObject("transitions_top1"), r = n.putObject("transitions_rank_aligned");
        transitionsTop1.forEach((k, m) -> { ArrayNode a = t.putArray(k); for (long[] row : m) putRow(a.addArray(), row); });
        transitionsRankAligned.forEach((k, m) -> { ArrayNode a = r.putArray(k); for (long[] row : m) putRow(a.addArray(), row); });
        Files.writeString(file, JSON.writeValueAsString(n));
    }

    private static void putRow(ArrayNode a, long[] row) { for (long v : row) a.add(v); }
}
