package org.moeserve.placement.export;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.moeserve.placement.PlacementPlan;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;

/**
 * A plan in the forms serving engines load (a plan numbers MoE layers and devices; engines number decoder layers
 * and physical expert slots, device d holding slots d x slots .. (d+1) x slots - 1, as this plan does):
 * <ul>
 *   <li><b>sglang</b>: exactly what {@code --init-expert-location FILE} passes to {@code init_by_mapping}: one key,
 *   {@code physical_to_logical_map}, one row per decoder layer (dense layers get SGLang's own trivial row, slot i ->
 *   expert i mod E), each row E + R wide; launched with {@code --ep-size D --ep-num-redundant-experts R}.</li>
 *   <li><b>sglang-count</b>: {@code {"logical_count": [decoder layer][expert]}}, which SGLang's own balancer
 *   ({@code init_by_eplb}) places.</li>
 *   <li><b>trtllm</b>: TensorRT-LLM's {@code moe_config.load_balancer} block (YAML): {@code num_slots} and
 *   {@code initial_global_assignments}, decoder layer id -> the expert in each slot.</li>
 * </ul>
 * vLLM's released versions read no placement file (EPLB starts from the identity), so there is no vLLM form.
 * {@link #checkSglang} holds an export to SGLang's load-time rules.
 */
public final class EngineExports {
    private EngineExports() {}

    private static final ObjectMapper JSON = new ObjectMapper();

    public static final List<String> FORMATS = List.of("sglang", "sglang-count", "trtllm");

    private static void fits(PlacementPlan plan, DecoderLayout d) {
        if (plan.layers() != d.moeLayers()) {
            throw new IllegalArgumentException("the plan has " + plan.layers() + " MoE layers but the model's config has "
                    + d.moeLayers() + " (of " + d.decoderLayers() + " decoder layers); plan for this model");
        }
    }

    /** SGLang's {@code --init-expert-location} file for this plan. */
    public static String sglang(PlacementPlan plan, DecoderLayout d) {
        fits(plan, d);
        int physical = plan.phy2log()[0].length;
        ObjectNode n = JSON.createObjectNode();
        ArrayNode rows = n.putArray("physical_to_logical_map");
        int m = 0;
        for (int l = 0; l < d.decoderLayers(); l++) {
            ArrayNode row = rows.addArray();
            if (m < d.moeLayers() && d.moeLayerIds()[m] == l) {
                for (int e : plan.phy2log()[m]) row.add(e);
                m++;
            } else {
                for (int i = 0; i < physical; i++) row.add(i % d.experts());
            }
        }
        return n.toString();
    }

    /** The SGLang launch flags that go with {@link #sglang} for a plan over {@code devices} devices. */
    public static List<String> sglangFlags(PlacementPlan plan, DecoderLayout d, int devices, String file) {
        int physical = plan.phy2log()[0].length;
        return List.of("--ep-size", String.valueOf(devices), "--ep-num-redundant-experts", String.valueOf(physical - d.experts()),
                "--init-expert-location", file);
    }

    /** SGLang's balancer input: load per decoder layer (dense layers: zeros). */
    public static String sglangCount(long[][] load, DecoderLayout d) {
        if (load.length != d.moeLayers()) throw new IllegalArgumentException("the load has " + load.length + " MoE layers but the config " + d.moeLayers());
        ObjectNode n = JSON.createObjectNode();
        ArrayNode rows = n.putArray("logical_count");
        int m = 0;
        for (int l = 0; l < d.decoderLayers(); l++) {
            ArrayNode row = rows.addArray();
            boolean moe = m < d.moeLayers() && d.moeLayerIds()[m] == l;
            for (int e = 0; e < d.experts(); e++) row.add(moe ? load[m][e] : 0);
            if (moe) m++;
        }
        return n.toString();
    }

    /** TensorRT-LLM's {@code moe_config.load_balancer} block. */
    public static String trtllm(PlacementPlan plan, DecoderLayout d) {
        fits(plan, d);
        StringBuilder y = new StringBuilder("moe_config:\n  load_balancer:\n");
        y.append("    num_slots: ").append(plan.phy2log()[0].length).append('\n');
        y.append("    initial_global_assignments:\n");
        for (int m = 0; m < d.moeLayers(); m++) {
            y.append("      ").append(d.moeLayerIds()[m]).append(": [");
            int[] row = plan.phy2log()[m];
            for (int i = 0; i < row.length; i++) y.append(i == 0 ? "" : ", ").append(row[i]);
            y.append("]\n");
        }
        return y.toString();
    }

    /**
     * The rules SGLang applies when it loads an {@code --init-expert-location} mapping (expert_location.py):
     * only the key {@code physical_to_logical_map}; one row per decoder layer; every row E + R wide, divisible by the
     * EP size; ids within 0..E-1; every logical expert with at least one slot in every row (else dispatch has no
     * candidate). Returns the problems found, empty when SGLang would load it.
     */
    public static List<String> checkSglang(String json, int decoderLayers, int experts, int redundant, int epSize) {
        List<String> bad = new ArrayList<>();
        JsonNode n;
        try {
            n = JSON.readTree(json);
        } catch (java.io.IOException e) {
            return List.of("not JSON: " + e.getMessage());
        }
        for (Iterator<String> it = n.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!k.equals("physical_to_logical_map")) bad.add("key " + k + ": init_by_mapping takes no such argument");
        }
        JsonNode rows = n.get("physical_to_logical_map");
        if (rows == null || !rows.isArray()) return append(bad, "no physical_to_logical_map array");
        if (rows.size() != decoderLayers) bad.add(rows.size() + " rows but the model has " + decoderLayers + " decoder layers");
        int width = experts + redundant;
        if (width % epSize != 0) bad.add(String.format(Locale.ROOT, "%d experts + %d redundant do not divide over ep-size %d", experts, redundant, epSize));
        for (int l = 0; l < rows.size(); l++) {
            JsonNode row = rows.get(l);
            if (row.size() != width) bad.add("row " + l + " is " + row.size() + " wide, not " + width);
            boolean[] seen = new boolean[experts];
            for (JsonNode v : row) {
                int e = v.asInt(-1);
                if (!v.isInt() || e < 0 || e >= experts) bad.add("row " + l + " names " + v + ", not an expert id in 0.." + (experts - 1));
                else seen[e] = true;
            }
            for (int e = 0; e < experts; e++) if (!seen[e]) { bad.add("row " + l + " gives expert " + e + " no slot"); break; }
        }
        return bad;
    }

    private static List<String> append(List<String> l, String s) {
        l.add(s);
        return l;
    }
}
