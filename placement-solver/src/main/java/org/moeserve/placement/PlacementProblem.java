package org.moeserve.placement;

import java.util.Map;
import java.util.TreeMap;

/**
 * What to place. Glossary (vLLM / DeepSeek EPLB): a <em>logical expert</em> is the model's; a <em>physical
 * expert</em> or <em>replica</em> is a copy of one in a device's slot. Every layer has devices x slots physical
 * slots; {@code experts} of them hold one copy of each logical expert, the rest hold extra replicas of hot ones.
 *
 * @param load        load[layer][expert]: routing selections (from a trace or moe-stats/1)
 * @param transitions "a->b" -> [i][j]: tokens routed to i at layer a and j at layer b; only the pairs known
 *                    (a trace gives every consecutive pair; published statistics a few)
 * @param hiddenBytes bytes of one token's activation (for the bytes-per-token figure)
 */
public record PlacementProblem(String source, int layers, int experts, int topK, Topology topology, long[][] load,
                               Map<String, long[][]> transitions, int hiddenBytes) {
    public PlacementProblem {
        transitions = new TreeMap<>(transitions);
        if (layers < 1 || experts < 1) throw new IllegalArgumentException("layers and experts must be >= 1");
        int phys = topology.devices() * topology.slots();
        if (phys < experts) {
            throw new IllegalArgumentException(topology.devices() + " devices x " + topology.slots() + " slots = " + phys
                    + " slots per layer, fewer than the " + experts + " experts; add devices or slots (--slots)");
        }
        if (load.length != layers) throw new IllegalArgumentException("load has " + load.length + " layers, expected " + layers);
        for (Map.Entry<String, long[][]> e : transitions.entrySet()) {
            int[] p = pair(e.getKey());
            if (p[0] < 0 || p[1] >= layers || p[0] >= p[1]) {
                throw new IllegalArgumentException("transition pair " + e.getKey() + " must name layers a < b in 0.." + (layers - 1));
            }
            if (e.getValue().length != experts) {
                throw new IllegalArgumentException("transitions " + e.getKey() + " has " + e.getValue().length + " rows, expected " + experts);
            }
        }
    }

    /**
     * A problem with no routing information: every expert equally loaded, no transitions. What a layout needs when
     * only the shape matters (the cluster's default plan, tests and benchmarks of expert parallelism).
     */
    public static PlacementProblem uniform(int layers, int experts, int topK, Topology topology, int hiddenBytes) {
        long[][] load = new long[layers][experts];
        for (long[] row : load) java.util.Arrays.fill(row, 1);
        return new PlacementProblem("uniform load", layers, experts, topK, topology, load, Map.of(), hiddenBytes);
    }

    public int physicalPerLayer() { return topology.devices() * topology.slots(); }

    public int redundant() { return physicalPerLayer() - experts; }

    public static int[] pair(String key) {
        String[] p = key.split("->");
        return new int[]{Integer.parseInt(p[0].trim()), Integer.parseInt(p[1].trim())};
    }
}
