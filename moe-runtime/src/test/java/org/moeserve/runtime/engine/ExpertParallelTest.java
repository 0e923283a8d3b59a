package org.moeserve.runtime.engine;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.moeserve.units.LinkModel;
import org.moeserve.comms.Dispatch;
import org.moeserve.comms.Scheme;
import org.moeserve.comms.Traffic;
import org.moeserve.comms.sim.ClusterSimulator;
import org.moeserve.placement.PlacementPlan;
import org.moeserve.placement.PlacementProblem;
import org.moeserve.placement.Topology;
import org.moeserve.placement.greedy.Baselines;
import org.moeserve.runtime.TestModels;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.MoeModel;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Expert parallelism in one JVM: 2 nodes x 2 devices, each holding 4 of the demo model's 16 experts per layer.
 * Greedy output is token-identical to one device under both dispatch schemes; the bytes the engine copied between
 * devices equal, link by link, what the cluster simulator computes from the same routing.
 */
class ExpertParallelTest {
    static final int[] PROMPT = "And it came to pass, when the king".chars().toArray();
    static final int TOKENS = 24;
    static final Topology TOPO = Topology.of(2, 2, 4);
    static MoeModel model;
    static int[] single;

    @BeforeAll
    static void reference() {
        model = MoeModel.load(TestModels.dir("tiny-mixtral-kjv"));
        single = OffloadTest.generate(new Engine(model, Parallel.SERIAL));
    }

    @AfterAll
    static void close() { model.close(); }

    static PlacementPlan plan(String which) {
        PlacementProblem p = PlacementProblem.uniform(6, 16, 2, TOPO, 4 * model.config().hiddenSize());
        return (which.equals("random") ? Baselines.random(3) : Baselines.contiguous()).place(p);
    }

    /** Per token (sequence, experts[layer][k]) as the engine routed them. */
    record Routed(long seq, int pos, int[][] experts) { }

    @Test
    void greedyOutputIsIdenticalAndMeasuredBytesEqualTheSimulatorsUnderBothSchemes() {
        for (String which : List.of("contiguous", "random")) {
            Dispatch dispatch = new Dispatch(plan(which), TOPO, 16);
            for (Scheme scheme : Scheme.values()) {
                try (Parallel par = new Parallel(2)) {
                    Engine engine = new Engine(model, par);
                    ExpertParallel ep = new ExpertParallel(model.config(), new ResidentExpertStore(model), dispatch, scheme, par);
                    engine.setExecutor(ep);
                    Map<String, Routed> routed = new java.util.TreeMap<>();
                    engine.addListener((rt, m) -> {
                        if (m < rt.moeLayers() - 1) return;
                        for (int r = 0; r < rt.rows(); r++) {
                            routed.put(rt.sequence(r) + "/" + String.format("%05d", rt.position(r)),
                                    new Routed(rt.sequence(r), rt.position(r), rt.path(r)));
                        }
                    });
                    int[] out = OffloadTest.generate(engine);
                    assertArrayEquals(single, out, which + " / " + scheme + ": greedy output differs from one device");
                    Traffic measured = ep.traffic();
                    assertTrue(measured.totalBytes() > 0, "tokens crossed devices");

                    List<ClusterSimulator.Step> steps = new ArrayList<>();
                    for (Routed r : routed.values()) steps.add(new ClusterSimulator.Step(new long[]{r.seq()}, new int[][][]{r.experts()}));
                    ClusterSimulator sim = new ClusterSimulator(new ClusterSimulator.Config(TOPO, new LinkModel(100e9, 1000),
                            new LinkModel(10e9, 5000), 1000, 1000, 4 * model.config().hiddenSize()));
                    Traffic modelled = sim.run(dispatch, scheme, steps, 6, null).traffic();
                    assertEquals(measured.totalBytes(), modelled.totalBytes(), which + " / " + scheme);
                    for (int a = 0; a < TOPO.devices(); a++) {
                        assertArrayEquals(measured.bytesMatrix()[a], modelled.bytesMatrix()[a], which + " / " + scheme + " link from " + a);
                    }
                    for (int l = 0; l < 6; l++) assertEquals(measured.layerBytes(l), modelled.layerBytes(l));
                    for (Dispatch.Kind k : Dispatch.Kind.values()) assertEquals(measured.kindBytes(k), modelled.kindBytes(k), k.name());
                    if (scheme == Scheme.TWO_ALL_TO_ALL) assertEquals(0, measured.kindBytes(Dispatch.Kind.RETURN));
                }
            }
        }
    }

    @Test
    void contextCoherentDispatchMovesFewerBytesThanTwoAllToAllsOnTheSamePlan() {
        Dispatch dispatch = new Dispatch(plan("contiguous"), TOPO, 16);
        long[] bytes = new long[2];
        for (Scheme scheme : Scheme.values()) {
            Engine engine = new Engine(model, Parallel.SERIAL);
            ExpertParallel ep = new ExpertParallel(model.config(), new ResidentExpertStore(model), dispatch, scheme, Parallel.SERIAL);
            engine.setExecutor(ep);
            OffloadTest.generate(engine);
            bytes[scheme.ordinal()] = ep.traffic().totalBytes();
        }
        assertTrue(bytes[1] < bytes[0], "context-coherent " + bytes[1] + " vs two all-to-alls " + bytes[0]);
    }

    @Test
    void aPlanForAnotherModelOrTopologyIsRefused() {
        IllegalArgumentException slots = assertThrows(IllegalArgumentException.class,
                () -> new Dispatch(plan("contiguous"), Topology.of(1, 2, 8), 16));
        assertTrue(slots.getMessage().contains("slots"), slots.getMessage());
        IllegalArgumentException experts = assertThrows(IllegalArgumentException.class, () -> new Dispatch(plan("contiguous"), TOPO, 8));
        assertTrue(experts.getMessage().contains("expert"), experts.getMessage());
    }
}
