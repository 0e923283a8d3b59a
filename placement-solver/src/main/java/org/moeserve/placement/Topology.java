package org.moeserve.placement;

/**
 * Where experts can live: {@code nodes} machines of {@code devicesPerNode} devices, each with {@code slots} expert
 * slots per MoE layer. A token that moves between devices of one node pays {@code intraNodeCost} (NVLink), between
 * nodes {@code interNodeCost} (the network). Devices are numbered node by node.
 */
public record Topology(int nodes, int devicesPerNode, int slots, double intraNodeCost, double interNodeCost) {
    public Topology {
        if (nodes < 1) throw new IllegalArgumentException("nodes is " + nodes + " but must be >= 1");
        if (devicesPerNode < 1) throw new IllegalArgumentException("devices per node is " + devicesPerNode + " but must be >= 1");
        if (slots < 1) throw new IllegalArgumentException("slots per device is " + slots + " but must be >= 1");
        if (intraNodeCost < 0 || interNodeCost < intraNodeCost) {
            throw new IllegalArgumentException("hop costs are " + intraNodeCost + " (intra-node) and " + interNodeCost
                    + " (inter-node) but must satisfy 0 <= intra <= inter");
        }
    }

    /** Default hop costs: a hop between nodes costs 4x one inside a node (NVLink ~450 GB/s vs a NIC ~100 GB/s). */
    public static final double INTRA_NODE_COST = 1, INTER_NODE_COST = 4;

    /** The topology every command and member uses unless told other hop costs. */
    public static Topology of(int nodes, int devicesPerNode, int slots) {
        return new Topology(nodes, devicesPerNode, slots, INTRA_NODE_COST, INTER_NODE_COST);
    }

    /**
     * "NODESxDEVICES" (e.g. "2x4") with {@code slots} per device. Errors name the text and what it should look like,
     * and the product is bounded so a typo cannot ask for billions of devices.
     */
    public static Topology parse(String spec, int slots) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("([0-9]{1,6})x([0-9]{1,6})").matcher(spec.trim());
        if (!m.matches()) {
            throw new IllegalArgumentException("topology is \"" + spec + "\" but must read NODESxDEVICES, e.g. 2x4 (2 nodes of 4 devices)");
        }
        int nodes = Integer.parseInt(m.group(1)), per = Integer.parseInt(m.group(2));
        if ((long) nodes * per > MAX_DEVICES) {
            throw new IllegalArgumentException("topology " + spec + " has " + (long) nodes * per + " devices; at most " + MAX_DEVICES + " are supported");
        }
        return of(nodes, per, slots);
    }

    /** More devices than any cluster the planner and simulator are meant for. */
    public static final int MAX_DEVICES = 65_536;

    public int devices() { return nodes * devicesPerNode; }

    public int node(int device) { return device / devicesPerNode; }

    /** Cost of a token moving from device a to device b. */
    public double cost(int a, int b) { return a == b ? 0 : node(a) == node(b) ? intraNodeCost : interNodeCost; }
}
