package org.moeserve.routing.torch;

import com.fasterxml.jackson.databind.JsonNode;
import org.moeserve.routing.RoutingStats;
import org.moeserve.routing.TraceFormatException;
import org.moeserve.routing.TraceHeader;
import org.moeserve.routing.TraceReader;
import org.moeserve.routing.TraceRecord;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * What SGLang's expert-distribution recorder writes ({@code --expert-distribution-recorder-mode}, then
 * {@code /dump_expert_distribution_record}), read as moe-serve's routing data.
 *
 * <ul>
 *   <li><b>stat</b>: {@code {"rank", "logical_count": int [steps, decoder layers, experts], ...}}, already summed over
 *       ranks and mapped to logical experts: load counts only ({@link #stats}).</li>
 *   <li><b>per_token</b>: one file per rank, {@code {"records": [...], "last_physical_to_logical_map": [layers,
 *       physical slots]}}; each record a forward pass with {@code topk_ids_of_layer} int [decoder layers, tokens, 8] of
 *       <i>physical</i> slot ids, -1 padded, and {@code extend_seq_lens} for prefill passes ({@link #trace}).</li>
 *   <li><b>per_pass</b>: the same records with only {@code global_physical_count}: load counts ({@link #stats}).</li>
 *   <li>The JSON form {@code {"logical_count": ...}} (2 or 3 dimensions), as SGLang's balancer and moe-serve's
 *       {@code sglang-count} export write it ({@link #fromJsonCount}).</li>
 * </ul>
 *
 * Conversions: physical slots are mapped back to logical experts with the dump's last map (if the map changed during
 * recording, as online EPLB may do, earlier passes are mapped with the last one); padding beyond the largest number
 * of ids any token has is cut, which gives top-k; decoder layers that never route a token (dense layers, which SGLang
 * numbers among its rows) are dropped and listed; a prefill pass is split into its requests by
 * {@code extend_seq_lens}; a decode pass, whose tokens belong to different requests the dump does not name, becomes
 * one sequence per token. The order of a token's ids is the order SGLang recorded (its top-k kernels return them by
 * weight for the supported models), so "top-1" means the first recorded id.
 */
public final class SglangDump {
    private SglangDump() {}

    /**
     * An import: the routing, plus which decoder layers carried it.
     *
     * @param decoderLayers the dump's rows (SGLang's num_hidden_layers)
     * @param moeLayerIds   the decoder layers kept, in order; trace layer i is decoder layer moeLayerIds[i]
     */
    public record Import(TraceReader.Trace trace, RoutingStats stats, int decoderLayers, int[] moeLayerIds, String mode) {
        public String describe() {
            List<Integer> dense = new ArrayList<>();
            for (int l = 0, j = 0; l < decoderLayers; l++) {
                if (j < moeLayerIds.length && moeLayerIds[j] == l) j++;
                else dense.add(l);
            }
            return "SGLang " + mode + " dump: " + moeLayerIds.length + " MoE layers of " + decoderLayers + " decoder layers"
                    + (dense.isEmpty() ? "" : " (dense layers " + dense + " dropped)");
        }
    }

    /**
     * The file as SGLang data if it is one (a torch.save dump, or JSON holding logical_count and no moe-stats/1 format),
     * else null.
     */
    public static Import sniff(Path file) throws IOException {
        if (TorchFile.looksLikeTorchZip(file)) return read(file);
        if (!java.nio.file.Files.isRegularFile(file)) return null;
        try (var in = java.nio.file.Files.newInputStream(file)) {
            byte[] head = in.readNBytes(1);
            if (head.length == 0 || head[0] != '{') return null;
        }
        JsonNode n;
        try {
            n = new com.fasterxml.jackson.databind.ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            return null; // not JSON: the moe-stats/1 reader names the problem
        }
        return n != null && n.isObject() && !n.has("format") && n.has("logical_count") ? fromJsonCount(file, n) : null;
    }

    /** A per_token dump as a trace, any other as load counts. */
    public static Import read(Path file) throws IOException {
        Map<?, ?> root = root(file);
        boolean paths = !root.containsKey("logical_count") && root.get("records") instanceof List<?> l
                && l.stream().anyMatch(r -> r instanceof Map<?, ?> m && m.containsKey("topk_ids_of_layer"));
        return paths ? trace(file, root) : stats(file, root);
    }

    /** A per_token dump as a trace (its load counts are the trace's). */
    public static Import trace(Path file) throws IOException { return trace(file, root(file)); }

    private static Import trace(Path file, Map<?, ?> root) {
        if (root.containsKey("logical_count")) {
            throw new TraceFormatException(file.toAbsolutePath() + ": an SGLang stat-mode dump holds load counts only, no "
                    + "expert paths: give it as statistics (--stats), or record with --expert-distribution-recorder-mode per_token");
        }
        List<?> records = records(file, root);
        long[][] p2l = physicalToLogical(file, root);
        int decoderLayers = -1, pad = -1;
        List<TorchFile.Tensor> ids = new ArrayList<>();
        for (int i = 0; i < records.size(); i++) {
            Map<?, ?> r = map(file, records.get(i), "records[" + i + "]");
            Object t = r.get("topk_ids_of_layer");
            if (t == null) {
                throw new TraceFormatException(file.toAbsolutePath() + ": records[" + i + "] has no topk_ids_of_layer: a per_pass "
                        + "dump holds counts only; give it as statistics (--stats), or record in per_token mode");
            }
            TorchFile.Tensor x = tensor(file, t, "records[" + i + "].topk_ids_of_layer", 3, true);
            if (decoderLayers < 0) { decoderLayers = x.shape()[0]; pad = x.shape()[2]; }
            if (x.shape()[0] != decoderLayers || x.shape()[2] != pad) {
                throw new TraceFormatException(file.toAbsolutePath() + ": records[" + i + "].topk_ids_of_layer is "
                        + x.describe() + " but the first record's is [" + decoderLayers + ", tokens, " + pad + "]");
            }
            ids.add(x);
        }
        if (ids.isEmpty()) throw new TraceFormatException(file.toAbsolutePath() + ": no records: the recorder dumped nothing (was it started?)");
        if (p2l != null && p2l.length != decoderLayers) {
            throw new TraceFormatException(file.toAbsolutePath() + ": last_physical_to_logical_map has " + p2l.length
                    + " rows but topk_ids_of_layer has " + decoderLayers + " layers");
        }
        boolean[] routed = new boolean[decoderLayers];
        int topK = 0;
        long maxId = -1;
        for (TorchFile.Tensor x : ids) {
            int tokens = x.shape()[1];
            for (int l = 0; l < decoderLayers; l++) {
                for (int t = 0; t < tokens; t++) {
                    int n = 0;
                    for (int k = 0; k < pad; k++) {
                        long v = x.longAt(((long) l * tokens + t) * pad + k);
                        if (v < -1) throw new TraceFormatException(file.toAbsolutePath() + ": topk_ids_of_layer holds " + v
                                + " at layer " + l + ", token " + t + "; ids are >= 0, or -1 for none");
                        if (v >= 0) { n++; maxId = Math.max(maxId, v); }
                    }
                    if (n > 0) routed[l] = true;
                    topK = Math.max(topK, n);
                }
            }
        }
        int[] moe = moeLayers(routed);
        if (moe.length == 0) throw new TraceFormatException(file.toAbsolutePath() + ": no token was routed to any expert in any layer");
        int experts = p2l != null ? logicalExperts(file, p2l) : (int) maxId + 1;
        if (p2l != null && maxId >= p2l[0].length) {
            throw new TraceFormatException(file.toAbsolutePath() + ": physical slot " + maxId + " is recorded but "
                    + "last_physical_to_logical_map has " + p2l[0].length + " slots");
        }
        List<TraceRecord> out = new ArrayList<>();
        for (int i = 0; i < ids.size(); i++) {
            Map<?, ?> r = (Map<?, ?>) records.get(i);
            TorchFile.Tensor x = ids.get(i);
            int tokens = x.shape()[1];
            int[][][] paths = new int[tokens][moe.length][topK];
            for (int t = 0; t < tokens; t++) {
                for (int j = 0; j < moe.length; j++) {
                    int[] row = paths[t][j];
                    Arrays.fill(row, -1);
                    int n = 0;
                    for (int k = 0; k < pad; k++) {
                        long v = x.longAt(((long) moe[j] * tokens + t) * pad + k);
                        if (v >= 0) row[n++] = p2l == null ? (int) v : (int) p2l[moe[j]][(int) v];
                    }
                }
            }
            int[] inputIds = intList(file, r.get("input_ids"), tokens, "records[" + i + "].input_ids");
            int[] lens = extendSeqLens(r.get("extend_seq_lens"), tokens);
            String pass = "pass" + (r.get("forward_pass_id") instanceof Long id ? id : i);
            boolean decode = lens == null; // a decode pass: one sequence per token
            if (decode) { lens = new int[tokens]; Arrays.fill(lens, 1); }
            int start = 0;
            for (int s = 0; s < lens.length; s++) {
                int end = start + lens[s];
                out.add(new TraceRecord(pass + (lens.length > 1 ? "." + s : ""), "", decode ? "decode" : "prefill",
                        inputIds.length == 0 ? new int[0] : Arrays.copyOfRange(inputIds, start, end),
                        Arrays.copyOfRange(paths, start, end), null));
                start = end;
            }
        }
        TraceHeader h;
        try {
            h = new TraceHeader("", moe.length, experts, Math.max(1, topK), "SGLang per_token dump " + file.getFileName());
        } catch (IllegalArgumentException e) {
            throw new TraceFormatException(file.toAbsolutePath() + ": " + e.getMessage(), e);
        }
        return new Import(new TraceReader.Trace(h, out), null, decoderLayers, moe, "per_token");
    }

    /** A stat, per_pass or per_token dump as load counts per MoE layer (dense layers dropped). */
    public static Import stats(Path file) throws IOException { return stats(file, root(file)); }

    private static Import stats(Path file, Map<?, ?> root) {
        if (root.containsKey("logical_count")) {
            long[][] load = summed(file, tensor(file, root.get("logical_count"), "logical_count", -1, false));
            return fromLoad(file, load, "stat");
        }
        List<?> records = records(file, root);
        long[][] p2l = physicalToLogical(file, root);
        long[][] physical = null;
        for (int i = 0; i < records.size(); i++) {
            Map<?, ?> r = map(file, records.get(i), "records[" + i + "]");
            TorchFile.Tensor c = tensor(file, r.get("global_physical_count"), "records[" + i + "].global_physical_count", 2, true);
            if (physical == null) physical = new long[c.shape()[0]][c.shape()[1]];
            if (c.shape()[0] != physical.length || c.shape()[1] != physical[0].length) {
                throw new TraceFormatException(file.toAbsolutePath() + ": records[" + i + "].global_physical_count is " + c.describe()
                        + " but the first record's is [" + physical.length + ", " + physical[0].length + "]");
            }
            for (int l = 0; l < physical.length; l++) {
                for (int p = 0; p < physical[0].length; p++) physical[l][p] += c.longAt((long) l * physical[0].length + p);
            }
        }
        if (physical == null) throw new TraceFormatException(file.toAbsolutePath() + ": no records: the recorder dumped nothing (was it started?)");
        long[][] logical = physical;
        if (p2l != null) {
            if (p2l.length != physical.length || p2l[0].length != physical[0].length) {
                throw new TraceFormatException(file.toAbsolutePath() + ": last_physical_to_logical_map is [" + p2l.length + ", "
                        + p2l[0].length + "] but global_physical_count is [" + physical.length + ", " + physical[0].length + "]");
            }
            logical = new long[physical.length][logicalExperts(file, p2l)];
            for (int l = 0; l < physical.length; l++) {
                for (int p = 0; p < physical[0].length; p++) logical[l][(int) p2l[l][p]] += physical[l][p];
            }
        }
        boolean perToken = records.stream().anyMatch(r -> r instanceof Map<?, ?> m && m.containsKey("topk_ids_of_layer"));
        return fromLoad(file, logical, perToken ? "per_token" : "per_pass");
    }

    /** SGLang's JSON form {@code {"logical_count": [[...]]}} or {@code [[[...]]]} (summed over the first axis). */
    public static Import fromJsonCount(Path file, JsonNode n) {
        JsonNode c = n.get("logical_count");
        if (c == null || !c.isArray() || c.isEmpty() || !c.get(0).isArray()) {
            throw new TraceFormatException(file.toAbsolutePath() + ": logical_count must be [layers][experts] or [steps][layers][experts]");
        }
        List<JsonNode> steps = new ArrayList<>();
        if (c.get(0).size() > 0 && c.get(0).get(0).isArray()) c.forEach(steps::add);
        else steps.add(c);
        long[][] load = null;
        for (int s = 0; s < steps.size(); s++) {
            JsonNode m = steps.get(s);
            if (load == null) load = new long[m.size()][m.get(0).size()];
            if (m.size() != load.length) throw new TraceFormatException(file.toAbsolutePath() + ": logical_count[" + s + "] has " + m.size() + " layers, not " + load.length);
            for (int l = 0; l < load.length; l++) {
                JsonNode row = m.get(l);
                if (!row.isArray() || row.size() != load[0].length) {
                    throw new TraceFormatException(file.toAbsolutePath() + ": logical_count row " + l + " has " + row.size()
                            + " entries but must have " + load[0].length + " (experts)");
                }
                for (int e = 0; e < load[0].length; e++) {
                    JsonNode v = row.get(e);
                    if (!v.isNumber() || v.asDouble() < 0) throw new TraceFormatException(file.toAbsolutePath() + ": logical_count["
                            + l + "][" + e + "] is " + v + " but must be a count >= 0");
                    load[l][e] += Math.round(v.asDouble());
                }
            }
        }
        return fromLoad(file, load, "logical_count JSON");
    }

    private static Import fromLoad(Path file, long[][] decoderLoad, String mode) {
        boolean[] routed = new boolean[decoderLoad.length];
        for (int l = 0; l < decoderLoad.length; l++) for (long v : decoderLoad[l]) if (v > 0) routed[l] = true;
        int[] moe = moeLayers(routed);
        if (moe.length == 0) throw new TraceFormatException(file.toAbsolutePath() + ": every count is zero: the recorder saw no tokens");
        int experts = decoderLoad[0].length;
        if (experts > TraceHeader.MAX_EXPERTS || moe.length > TraceHeader.MAX_LAYERS) {
            throw new TraceFormatException(file.toAbsolutePath() + ": " + moe.length + " layers x " + experts + " experts is beyond "
                    + TraceHeader.MAX_LAYERS + " x " + TraceHeader.MAX_EXPERTS);
        }
        Map<Integer, long[]> load = new TreeMap<>();
        for (int j = 0; j < moe.length; j++) load.put(j, decoderLoad[moe[j]].clone());
        // top-k is not recorded in counts; 1 makes load the selections and is what the planner's balance needs
        RoutingStats s = new RoutingStats("", moe.length, experts, 1, "SGLang " + mode + " dump " + file.getFileName(), -1,
                load, Map.of(), Map.of(), Map.of());
        return new Import(null, s, decoderLoad.length, moe, mode);
    }

    private static int[] moeLayers(boolean[] routed) {
        int n = 0;
        for (boolean b : routed) if (b) n++;
        int[] out = new int[n];
        for (int l = 0, j = 0; l < routed.length; l++) if (routed[l]) out[j++] = l;
        return out;
    }

    /** Request lengths of a prefill pass (SGLang's extend_seq_lens, summing to its tokens), or null for a decode pass. */
    private static int[] extendSeqLens(Object o, int tokens) {
        if (!(o instanceof List<?> l) || l.isEmpty()) return null;
        int[] lens = new int[l.size()];
        long sum = 0;
        for (int i = 0; i < lens.length; i++) {
            if (!(l.get(i) instanceof Long v) || v < 0) return null;
            lens[i] = (int) (long) v;
            sum += v;
        }
        return sum == tokens ? lens : null;
    }

    private static Map<?, ?> root(Path file) throws IOException {
        Object o = TorchFile.read(file);
        if (!(o instanceof Map<?, ?> m)) {
            throw new TraceFormatException(file.toAbsolutePath() + ": a torch file holding a " + describe(o) + ", not the dict "
                    + "SGLang's expert-distribution recorder writes");
        }
        return m;
    }

    private static List<?> records(Path file, Map<?, ?> root) {
        if (!(root.get("records") instanceof List<?> l)) {
            throw new TraceFormatException(file.toAbsolutePath() + ": neither logical_count (stat mode) nor records (per_token, "
                    + "per_pass) is present: not an SGLang expert-distribution dump (keys: " + root.keySet() + ")");
        }
        return l;
    }

    private static long[][] physicalToLogical(Path file, Map<?, ?> root) {
        Object m = root.get("last_physical_to_logical_map");
        if (m == null) return null;
        TorchFile.Tensor t = tensor(file, m, "last_physical_to_logical_map", 2, true);
        long[][] out = new long[t.shape()[0]][t.shape()[1]];
        if (out.length == 0 || out[0].length == 0) throw new TraceFormatException(file.toAbsolutePath() + ": last_physical_to_logical_map is empty");
        for (int l = 0; l < out.length; l++) {
            for (int p = 0; p < out[0].length; p++) {
                long v = t.longAt((long) l * out[0].length + p);
                if (v < 0 || v >= out[0].length) throw new TraceFormatException(file.toAbsolutePath() + ": last_physical_to_logical_map["
                        + l + "][" + p + "] is " + v + " but logical ids are 0.." + (out[0].length - 1));
                out[l][p] = v;
            }
        }
        return out;
    }

    private static int logicalExperts(Path file, long[][] p2l) {
        long max = 0;
        for (long[] row : p2l) for (long v : row) max = Math.max(max, v);
        return (int) max + 1;
    }

    private static long[][] summed(Path file, TorchFile.Tensor t) {
        int[] s = t.shape();
        if (s.length != 2 && s.length != 3) {
            throw new TraceFormatException(file.toAbsolutePath() + ": logical_count is " + t.describe() + " but must be [steps, layers, experts]");
        }
        int steps = s.length == 3 ? s[0] : 1, layers = s[s.length - 2], experts = s[s.length - 1];
        if (layers == 0 || experts == 0) throw new TraceFormatException(file.toAbsolutePath() + ": logical_count is empty: " + t.describe());
        long[][] out = new long[layers][experts];
        for (int st = 0; st < steps; st++) {
            for (int l = 0; l < layers; l++) {
                for (int e = 0; e < experts; e++) {
                    long v = Math.round(t.doubleAt(((long) st * layers + l) * experts + e));
                    if (v < 0) throw new TraceFormatException(file.toAbsolutePath() + ": logical_count holds " + v + " at layer " + l + ", expert " + e);
                    out[l][e] += v;
                }
            }
        }
        return out;
    }

    private static Map<?, ?> map(Path file, Object o, String where) {
        if (o instanceof Map<?, ?> m) return m;
        throw new TraceFormatException(file.toAbsolutePath() + ": " + where + " is a " + describe(o) + ", not a dict");
    }

    private static TorchFile.Tensor tensor(Path file, Object o, String where, int rank, boolean ids) {
        if (!(o instanceof TorchFile.Tensor t)) {
            throw new TraceFormatException(file.toAbsolutePath() + ": " + where + " is " + (o == null ? "missing" : "a " + describe(o))
                    + ", not a tensor");
        }
        if (rank > 0 && t.shape().length != rank) {
            throw new TraceFormatException(file.toAbsolutePath() + ": " + where + " is " + t.describe() + " but must have " + rank + " dimensions");
        }
        if (ids && !t.isIntegral()) { // ids and maps must be integers; counts may be stored as floats
            throw new TraceFormatException(file.toAbsolutePath() + ": " + where + " is " + t.describe() + " but must hold integers");
        }
        return t;
    }

    private static int[] intList(Path file, Object o, int tokens, String where) {
        if (!(o instanceof List<?> l) || l.size() != tokens) return new int[0]; // token ids are optional
        int[] out = new int[tokens];
        for (int i = 0; i < tokens; i++) {
            if (!(l.get(i) instanceof Long v)) return new int[0];
            out[i] = (int) (long) v;
        }
        return out;
    }

    private static String describe(Object o) {
        return o == null ? "None" : o instanceof TorchFile.Tensor t ? "tensor " + t.describe() : o instanceof List ? "list"
                : o instanceof Map ? "dict" : o.getClass().getSimpleName();
    }
}
