package org.moeserve.comms.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.moeserve.comms.Dispatch;
import org.moeserve.placement.PlacementPlan;
import org.moeserve.placement.Topology;

import java.util.ArrayList;
import java.util.List;

/**
 * The plan a cluster runs: a placement over devices, device i being member {@code members.get(i)} (Vert.x node
 * ids), and a version that only grows. Stored as JSON in the distributed map; replaced whole. Its {@link Dispatch}
 * (the replica tables every routed row consults) is built once, with the plan.
 */
public record ClusterPlan(long version, List<String> members, PlacementPlan placement, int experts, Dispatch dispatch) {
    private static final ObjectMapper JSON = new ObjectMapper();

    public ClusterPlan {
        members = List.copyOf(members);
    }

    public ClusterPlan(long version, List<String> members, PlacementPlan placement, int experts) {
        this(version, members, placement, experts,
                new Dispatch(placement, Topology.of(1, members.size(), placement.slots()), experts));
    }

    public int indexOf(String node) { return members.indexOf(node); }

    String toJson() {
        ObjectNode n = JSON.createObjectNode().put("version", version).put("experts", experts).put("slots", placement.slots())
                .put("solver", placement.solver());
        ArrayNode m = n.putArray("members");
        members.forEach(m::add);
        ArrayNode p = n.putArray("physical_to_logical_map");
        for (int[] layer : placement.phy2log()) {
            ArrayNode a = p.addArray();
            for (int e : layer) a.add(e);
        }
        return n.toString();
    }

    static ClusterPlan fromJson(String s) {
        try {
            JsonNode n = JSON.readTree(s);
            List<String> members = new ArrayList<>();
            n.get("members").forEach(x -> members.add(x.asText()));
            JsonNode m = n.get("physical_to_logical_map");
            int[][] phy = new int[m.size()][];
            for (int l = 0; l < phy.length; l++) {
                phy[l] = new int[m.get(l).size()];
                for (int i = 0; i < phy[l].length; i++) phy[l][i] = m.get(l).get(i).asInt();
            }
            return new ClusterPlan(n.get("version").asLong(), members,
                    new PlacementPlan((int) n.get("version").asLong(), n.path("solver").asText(), n.get("slots").asInt(), phy), n.get("experts").asInt());
        } catch (java.io.IOException e) {
            throw new IllegalStateException("the cluster's plan is not valid JSON: " + e.getMessage(), e);
        }
    }
}
