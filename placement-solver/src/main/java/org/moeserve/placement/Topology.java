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

    public int devices() { return nodes * devicesPerNode; }

    public int node(int device) { return device / devicesPerNode; }

    /** Cost of a token moving from device a to device b. */
    public double cost(int a, int b) { return a == b ? 0 : node(a) == node(b) ? intraNodeCost : interNodeCost; }
}
