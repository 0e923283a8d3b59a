package org.moeserve.comms;

import org.junit.jupiter.api.Test;
import org.moeserve.placement.PlacementPlan;
import org.moeserve.placement.Topology;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The dispatch rule, its message accounting, the traffic counters and the grouping of rows by expert. */
class DispatchTest {
    /** 2 nodes x 2 devices, 2 slots each, one layer of 6 experts: expert 0 replicated on devices 0 and 3. */
    static final Topology TOPO = Topology.of(2, 2, 2);
    static final PlacementPlan PLAN = new PlacementPlan(1, "test", 2, new int[][]{{0, 1, 2, 3, 4, 5, 0, 5}});

    record Message(Dispatch.Kind kind, int from, int to) {}

    @Test
    void theNearestReplicaRunsAToken() {
        Dispatch d = new Dispatch(PLAN, TOPO, 6);
        assertEquals(0, d.device(0, 0, 0), "a copy on the token's own device");
        assertEquals(0, d.device(0, 0, 1), "else one on the same node");
        assertEquals(3, d.device(0, 0, 2), "node 1 has its own copy on device 3");
        assertEquals(2, d.device(0, 5, 2), "expert 5 lives on devices 2 and 3: the token's own");
        assertEquals(1, d.device(0, 2, 3), "a single copy, wherever it is");
        assertTrue(d.holds(0, 0, 3) && !d.holds(0, 0, 1));
        assertEquals(3, d.home(7));
    }

    @Test
    void routeSendsATokenOncePerDeviceAndEachOutputBackToWhereItIsCombined() {
        Dispatch d = new Dispatch(PLAN, TOPO, 6);
        int[] dev = new int[3];
        List<Message> sent = new ArrayList<>();
        // at device 0 (home 0), experts 2, 3 (both on device 1) and 4 (device 2)
        int after = d.route(Scheme.TWO_ALL_TO_ALL, 0, new int[]{2, 3, 4}, 0, 0, dev, (k, f, t) -> sent.add(new Message(k, f, t)));
        assertArrayEquals(new int[]{1, 1, 2}, dev);
        assertEquals(0, after, "two all-to-alls: combined at home");
        assertEquals(List.of(new Message(Dispatch.Kind.DISPATCH, 0, 1), new Message(Dispatch.Kind.DISPATCH, 0, 2),
                new Message(Dispatch.Kind.COMBINE, 1, 0), new Message(Dispatch.Kind.COMBINE, 1, 0),
                new Message(Dispatch.Kind.COMBINE, 2, 0)), sent);
        sent.clear();
        after = d.route(Scheme.CONTEXT_COHERENT, 0, new int[]{2, 3, 4}, 0, 0, dev, (k, f, t) -> sent.add(new Message(k, f, t)));
        assertEquals(1, after, "context-coherent: combined at the first expert's device, where the token stays");
        assertEquals(List.of(new Message(Dispatch.Kind.DISPATCH, 0, 1), new Message(Dispatch.Kind.DISPATCH, 0, 2),
                new Message(Dispatch.Kind.COMBINE, 2, 1)), sent);
    }

    @Test
    void trafficCountsBytesPerLinkLayerKindAndNode() {
        Traffic t = new Traffic(TOPO, 2);
        t.add(Dispatch.Kind.DISPATCH, 0, 0, 1, 100);
        t.add(Dispatch.Kind.COMBINE, 1, 3, 0, 40);
        t.add(Dispatch.Kind.RETURN, -1, 2, 0, 8);
        t.add(Dispatch.Kind.DISPATCH, 0, 2, 2, 1000); // to itself: no traffic
        assertEquals(148, t.totalBytes());
        assertEquals(3, t.totalMessages());
        assertEquals(48, t.interNodeBytes());
        assertEquals(100, t.layerBytes(0));
        assertEquals(40, t.layerBytes(1));
        assertEquals(8, t.kindBytes(Dispatch.Kind.RETURN));
        assertEquals(100L, t.summary().get("dispatch_bytes"));
    }

    @Test
    void aPlanThatDoesNotFitTheTopologyOrTheModelIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new Dispatch(PLAN, Topology.of(1, 2, 2), 6));
        assertThrows(IllegalArgumentException.class, () -> new Dispatch(PLAN, TOPO, 7), "expert 6 is placed nowhere");
        assertThrows(IllegalArgumentException.class, () -> new Dispatch(PLAN, TOPO, 5), "expert 5 is not in a 5-expert model");
    }

    @Test
    void expertGroupsRunEachExpertOnceOverItsRowsInAFixedOrder() {
        int[][] idx = {{3, 1}, {1, 0}, {3, -1}, {2, 1}};
        List<ExpertGroups.Group> g = ExpertGroups.of(idx, 4, 4);
        assertEquals(List.of(0, 1, 2, 3), g.stream().map(ExpertGroups.Group::expert).toList(), "ascending experts");
        assertArrayEquals(new int[]{0, 1, 3}, g.get(1).rows(), "expert 1: rows in ascending order");
        assertArrayEquals(new int[]{1, 0, 1}, g.get(1).slots(), "and which of each row's choices it is");
        assertArrayEquals(new int[]{0, 2}, g.get(3).rows(), "-1 (no expert) is skipped");
        List<ExpertGroups.Group> sub = ExpertGroups.of(idx, 4, 4, (r, j) -> r >= 2);
        assertEquals(List.of(1, 2, 3), sub.stream().map(ExpertGroups.Group::expert).toList(), "only the selected choices");
        float[][] x = {{0}, {1}, {2}, {3}};
        float[][][] contrib = new float[4][2][];
        ExpertGroups.Group e1 = g.get(1);
        float[][] in = e1.gather(x);
        assertEquals(3f, in[2][0]);
        e1.scatter(new float[][]{{10}, {11}, {13}}, contrib);
        assertEquals(11f, contrib[1][0][0]);
        assertEquals(13f, contrib[3][1][0]);
        assertThrows(IllegalArgumentException.class, () -> ExpertGroups.of(new int[][]{{4}}, 1, 4));
    }

    @Test
    void unknownExpertsInATraceDoNoWorkAndBreakNothing() {
        Dispatch d = new Dispatch(PLAN, TOPO, 6);
        org.moeserve.comms.sim.ClusterSimulator sim = new org.moeserve.comms.sim.ClusterSimulator(
                new org.moeserve.comms.sim.ClusterSimulator.Config(TOPO, new org.moeserve.units.LinkModel(100e9, 0),
                        new org.moeserve.units.LinkModel(10e9, 0), 1000, 1000, 64));
        int[][][] experts = {{{2, -1}}, {{-1, -1}}, {{4, 5}}};
        var r = sim.run(d, Scheme.TWO_ALL_TO_ALL, List.of(new org.moeserve.comms.sim.ClusterSimulator.Step(new long[]{0, 1, 2}, experts)), 1, null);
        assertEquals(3, r.tokens());
        assertTrue(r.traffic().totalBytes() > 0);
        assertEquals(0, d.route(Scheme.CONTEXT_COHERENT, 0, new int[0], 0, 0, new int[0], (k, f, t) -> { throw new AssertionError(); }));
    }
    /**
     * Fixed costs land on the critical path once per layer per busy device and once per distinct expert, however many
     * tokens share it: one device, free links, so a step's time is exactly the sum of its pieces.
     */
    @Test
    void fixedCostsArePaidPerLayerAndPerDistinctExpert() {
        Topology one = Topology.of(1, 1, 4);
        Dispatch d = new Dispatch(new PlacementPlan(1, "test", 4, new int[][]{{0, 1, 2, 3}, {0, 1, 2, 3}}), one, 4);
        var base = new org.moeserve.comms.sim.ClusterSimulator.Config(one, new org.moeserve.units.LinkModel(1e18, 0),
                new org.moeserve.units.LinkModel(1e18, 0), 1000, 0, 64);
        // 3 tokens x 2 layers, top-2: layer 0 uses experts {0, 1, 2}, layer 1 uses {3}
        int[][][] experts = {{{0, 1}, {3, -1}}, {{1, 2}, {3, -1}}, {{0, 2}, {3, -1}}};
        var step = List.of(new org.moeserve.comms.sim.ClusterSimulator.Step(new long[]{0, 1, 2}, experts));
        long plain = new org.moeserve.comms.sim.ClusterSimulator(base).run(d, Scheme.TWO_ALL_TO_ALL, step, 2, null).totalNanos();
        assertEquals(9 * 1000, plain, "9 (token, expert) jobs");
        long fixed = new org.moeserve.comms.sim.ClusterSimulator(base.withFixedCosts(500, 70)).run(d, Scheme.TWO_ALL_TO_ALL, step, 2, null)
                .totalNanos();
        assertEquals(9 * 1000 + 2 * 500 + (3 + 1) * 70, fixed, "2 layers' fixed cost, 4 distinct expert calls");
        assertThrows(IllegalArgumentException.class, () -> base.withFixedCosts(-1, 0));
    }
}
