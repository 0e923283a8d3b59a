package org.moeserve.placement;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A placement: for every layer, the logical expert in each physical slot, physical slot p on device
 * p / slots (the physical-to-logical map vLLM's and SGLang's expert-parallel load balancers read). Immutable and
 * versioned: a new plan replaces an old one whole.
 *
 * @param phy2log phy2log[layer][physical slot] = logical expert
 */
public record PlacementPlan(int version, String solver, int slots, int[][] phy2log) {
    public PlacementPlan {
        phy2log = phy2log.clone();
        for (int l = 0; l < phy2log.length; l++) phy2log[l] = phy2log[l].clone();
    }

    public int layers() { return phy2log.length; }

    public int device(int physical) { return physical / slots; }

    /** Devices holding a replica of logical expert e at layer l. */
    public List<Integer> devicesOf(int l, int e) {
        List<Integer> out = new ArrayList<>();
        for (int p = 0; p < phy2log[l].length; p++) if (phy2log[l][p] == e && !out.contains(device(p))) out.add(device(p));
        return out;
    }

    /** Replicas of each logical expert at layer l. */
    public int[] replicaCounts(int l, int experts) {
        int[] c = new int[experts];
        for (int e : phy2log[l]) c[e]++;
        return c;
    }

    /** Checks the plan's invariants against a problem: every slot used, every logical expert present. */
    public void validate(PlacementProblem p) {
        if (phy2log.length != p.layers()) throw new IllegalStateException("plan has " + phy2log.length + " layers, problem " + p.layers());
        for (int l = 0; l < phy2log.length; l++) {
            if (phy2log[l].length != p.physicalPerLayer()) {
                throw new IllegalStateException("layer " + l + " has " + phy2log[l].length + " slots, expected " + p.physicalPerLayer());
            }
            int[] c = replicaCounts(l, p.experts());
            for (int e = 0; e < c.length; e++) {
                if (c[e] < 1) throw new IllegalStateException("layer " + l + ": logical expert " + e + " has no replica");
            }
        }
    }

    /** Reads a moe-plan/1 file (as {@link #write} writes it), refusing other formats with the reason. */
    public static PlacementPlan read(Path file) throws IOException {
        var n = new ObjectMapper().readTree(file.toFile());
        if (n == null || !"moe-plan/1".equals(n.path("format").asText())) {
            throw new IllegalArgumentException(file + ": format is " + (n == null ? "empty" : n.get("format"))
                    + " but a moe-plan/1 file is needed (write one with moe plan --out)");
        }
        var m = n.get("physical_to_logical_map");
        int slots = n.path("slots_per_device").asInt();
        if (m == null || !m.isArray() || m.isEmpty() || slots < 1) {
            throw new IllegalArgumentException(file + ": needs physical_to_logical_map (one array per layer) and slots_per_device >= 1");
        }
        int[][] phy = new int[m.size()][];
        for (int l = 0; l < phy.length; l++) {
            phy[l] = new int[m.get(l).size()];
            for (int i = 0; i < phy[l].length; i++) phy[l][i] = m.get(l).get(i).asInt();
        }
        return new PlacementPlan(n.path("version").asInt(1), n.path("solver").asText("?"), slots, phy);
    }

    public void write(Path file) throws IOException {
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode n = json.createObjectNode().put("format", "moe-plan/1").put("version", version).put("solver", solver)
                .put("slots_per_device", slots);
        ArrayNode m = n.putArray("physical_to_logical_map");
        for (int[] layer : phy2log) {
            ArrayNode a = m.addArray();
            for (int e : layer) a.add(e);
        }
        json.writeValue(file.toFile(), n);
    }

}
