package org.moeserve.comms;

import org.moeserve.placement.PlacementPlan;
import org.moeserve.placement.Topology;

/**
 * Where a token's work goes under a plan: the one rule the real expert-parallel engine, the cluster and the
 * simulator share, so their byte counts can be compared exactly. A sequence's home device is its id modulo the
 * devices (attention and the logits run there). A token at device {@code from} that selects expert e of MoE layer
 * l goes to the replica of e on {@code from} if there is one, else one on the same node, else the lowest-numbered
 * replica (replicas are placed for locality, so the nearest is the one to use).
 */
public final class Dispatch {
    private final PlacementPlan plan;
    private final Topology topology;
    private final int[][][] replicas; // [layer][expert] -> devices holding it, ascending

    public Dispatch(PlacementPlan plan, Topology topology, int experts) {
        if (plan.slots() != topology.slots()) {
            throw new IllegalArgumentException("the plan has " + plan.slots() + " slots per device but the topology " + topology.slots()
                    + "; plan for this topology (moe plan --topology NODESxDEVICES --replicas ...)");
        }
        this.plan = plan;
        this.topology = topology;
        replicas = new int[plan.layers()][experts][];
        for (int l = 0; l < plan.layers(); l++) {
            if (plan.phy2log()[l].length != topology.devices() * topology.slots()) {
                throw new IllegalArgumentException("plan layer " + l + " has " + plan.phy2log()[l].length + " slots but the topology has "
                        + topology.devices() + " devices x " + topology.slots() + " slots; plan for this topology");
            }
            for (int e = 0; e < experts; e++) {
                replicas[l][e] = plan.devicesOf(l, e).stream().mapToInt(Integer::intValue).sorted().toArray();
                if (replicas[l][e].length == 0) throw new IllegalArgumentException("plan layer " + l + " places no copy of expert " + e);
            }
            for (int lg : plan.phy2log()[l]) {
                if (lg < 0 || lg >= experts) {
                    throw new IllegalArgumentException("plan layer " + l + " names expert " + lg + " but the model has experts 0.." + (experts - 1));
                }
            }
        }
    }

    public PlacementPlan plan() { return plan; }

    public Topology topology() { return topology; }

    public int devices() { return topology.devices(); }

    public int home(long sequence) { return (int) Math.floorMod(sequence, (long) topology.devices()); }

    /** The device that runs expert e of MoE layer l for a token now on {@code from}. */
    public int device(int layer, int expert, int from) {
        int[] r = replicas[layer][expert];
        int best = r[0];
        for (int d : r) {
            if (d == from) return d;
            if (topology.node(d) == topology.node(from) && topology.node(best) != topology.node(from)) best = d;
        }
        return best;
    }

    /** True where device d holds a copy of expert e of MoE layer l. */
    public boolean holds(int layer, int expert, int d) {
        for (int x : replicas[layer][expert]) if (x == d) return true;
        return false;
    }

    /** Where the token's outputs are combined (and where it is for the next layer): {@code ran} = its experts' devices. */
    public static int combineAt(Scheme scheme, int[] ran, int home) { return scheme == Scheme.TWO_ALL_TO_ALL ? home : ran[0]; }

    /**
     * One token's moves at one MoE layer: it is on {@code at}, its experts are {@code experts} (highest weight
     * first). Fills {@code dev[j]} with the device that runs expert j, reports each message (from, to) to
     * {@code sink} and returns where the token is afterwards.
     */
    public int route(Scheme scheme, int layer, int[] experts, int at, int home, int[] dev, Sink sink) {
        int k = experts.length;
        if (k == 0) return at; // no known expert at this layer (a -1 cell): the token stays where it is
        for (int j = 0; j < k; j++) dev[j] = device(layer, experts[j], at);
        int after = combineAt(scheme, dev, home);
        for (int j = 0; j < k; j++) {
            boolean dup = false; // the token travels to a device once, however many of its experts are there
            for (int i = 0; i < j; i++) dup |= dev[i] == dev[j];
            if (!dup && dev[j] != at) sink.message(Kind.DISPATCH, at, dev[j]);
        }
        for (int j = 0; j < k; j++) if (dev[j] != after) sink.message(Kind.COMBINE, dev[j], after); // each expert's output
        return after;
    }

    /** What a message carries. */
    public enum Kind { DISPATCH, COMBINE, RETURN }

    /** Receives the messages of a route: one token's hidden vector from one device to another. */
    @FunctionalInterface
    public interface Sink {
        void message(Kind kind, int from, int to);
    }
}
