package org.moeserve.placement.export;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.moeserve.placement.PlacementPlan;
import org.moeserve.placement.PlacementProblem;
import org.moeserve.placement.Topology;
import org.moeserve.placement.greedy.Baselines;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Exports hold to the rules the engines apply when they load them. */
class EngineExportsTest {
    static final ObjectMapper JSON = new ObjectMapper();

    /** 3 MoE layers of 8 experts, 2 redundant slots, on 1 x 2 devices (5 slots each). */
    static PlacementPlan plan() {
        return Baselines.eplb(1).place(PlacementProblem.uniform(3, 8, 2, Topology.of(1, 2, 5), 16));
    }

    @Test
    void sglangGetsOneKeyARowPerDecoderLayerAndSglangsTrivialRowForDenseOnes() throws Exception {
        // DeepSeek-style: the first decoder layer is dense, then every layer is MoE
        DecoderLayout d = DecoderLayout.fromConfig(JSON.readTree(
                "{\"num_hidden_layers\":4,\"n_routed_experts\":8,\"first_k_dense_replace\":1,\"moe_layer_freq\":1}"), "cfg");
        assertArrayEquals(new int[]{1, 2, 3}, d.moeLayerIds());
        PlacementPlan p = plan();
        String s = EngineExports.sglang(p, d);
        assertEquals(List.of(), EngineExports.checkSglang(s, 4, 8, 2, 2), "SGLang's load-time rules");
        JsonNode n = JSON.readTree(s);
        assertEquals(List.of("physical_to_logical_map"), iter(n.fieldNames()), "init_by_mapping takes only this key");
        JsonNode rows = n.get("physical_to_logical_map");
        assertEquals(4, rows.size());
        for (int i = 0; i < 10; i++) assertEquals(i % 8, rows.get(0).get(i).asInt(), "dense layer 0: SGLang's trivial row");
        for (int m = 0; m < 3; m++) for (int i = 0; i < 10; i++) assertEquals(p.phy2log()[m][i], rows.get(m + 1).get(i).asInt());
        assertEquals(List.of("--ep-size", "2", "--ep-num-redundant-experts", "2", "--init-expert-location", "f.json"),
                EngineExports.sglangFlags(p, d, 2, "f.json"));
    }

    @Test
    void theCheckerFindsWhatSglangRefuses() {
        String old = "{\"physical_to_logical_map\":[[0,1,2,3]],\"num_physical_experts\":4,\"num_logical_experts\":4}";
        List<String> bad = EngineExports.checkSglang(old, 1, 4, 0, 2);
        assertTrue(bad.stream().anyMatch(b -> b.contains("num_physical_experts")), "the old export's extra keys: " + bad);
        assertTrue(EngineExports.checkSglang("{\"physical_to_logical_map\":[[0,1,2,3]]}", 2, 4, 0, 2).stream()
                .anyMatch(b -> b.contains("decoder layers")), "too few rows (SGLang fails later with IndexError)");
        assertTrue(EngineExports.checkSglang("{\"physical_to_logical_map\":[[0,1,2,3]]}", 1, 4, 1, 1).stream()
                .anyMatch(b -> b.contains("wide")), "a width that disagrees with the redundant experts");
        assertTrue(EngineExports.checkSglang("{\"physical_to_logical_map\":[[0,1,2]]}", 1, 3, 0, 2).stream()
                .anyMatch(b -> b.contains("ep-size")), "3 slots over 2 GPUs");
        assertTrue(EngineExports.checkSglang("{\"physical_to_logical_map\":[[0,0,2,3]]}", 1, 4, 0, 2).stream()
                .anyMatch(b -> b.contains("no slot")), "expert 1 has no slot");
        assertEquals(List.of(), EngineExports.checkSglang("{\"physical_to_logical_map\":[[0,1,2,3]]}", 1, 4, 0, 2));
    }

    @Test
    void countsAndTensorRtLlm() throws Exception {
        DecoderLayout d = DecoderLayout.fromConfig(JSON.readTree(
                "{\"num_hidden_layers\":4,\"num_experts\":8,\"mlp_only_layers\":[0]}"), "qwen");
        assertArrayEquals(new int[]{1, 2, 3}, d.moeLayerIds());
        long[][] load = new long[3][8];
        load[2][5] = 42;
        JsonNode c = JSON.readTree(EngineExports.sglangCount(load, d)).get("logical_count");
        assertEquals(4, c.size());
        assertEquals(42, c.get(3).get(5).asLong());
        assertEquals(0, c.get(0).get(5).asLong(), "a dense layer counts nothing");
        String y = EngineExports.trtllm(plan(), d);
        assertTrue(y.startsWith("moe_config:\n  load_balancer:\n    num_slots: 10\n"), y);
        assertTrue(y.contains("\n      1: [") && y.contains("\n      3: [") && !y.contains("\n      0: ["), y);
        assertThrows(IllegalArgumentException.class, () -> EngineExports.sglang(plan(), DecoderLayout.allMoe(2, 8)),
                "a plan for another model");
    }

    @Test
    void realConfigsGiveTheirLayouts() throws Exception {
        Path dir = Path.of("").toAbsolutePath();
        while (dir != null && !Files.isDirectory(dir.resolve("../shared/configs"))) dir = dir.getParent();
        if (dir == null) throw new IllegalStateException("../shared/configs not found above the working directory");
        Path cfgs = dir.resolve("../shared/configs");
        DecoderLayout v3 = DecoderLayout.fromConfig(JSON.readTree(cfgs.resolve("deepseek-ai--DeepSeek-V3.config.json").toFile()), "v3");
        assertEquals(61, v3.decoderLayers());
        assertEquals(58, v3.moeLayers(), "3 dense layers first");
        assertEquals(256, v3.experts());
        DecoderLayout q = DecoderLayout.fromConfig(JSON.readTree(cfgs.resolve("Qwen--Qwen3-30B-A3B.config.json").toFile()), "qwen3");
        assertEquals(48, q.moeLayers());
        assertEquals(128, q.experts());
        assertFalse(DecoderLayout.fromConfig(JSON.readTree(cfgs.resolve("mistralai--Mixtral-8x7B-v0.1.config.json").toFile()), "m")
                .moeLayers() != 32);
    }

    static List<String> iter(java.util.Iterator<String> it) {
        List<String> out = new java.util.ArrayList<>();
        it.forEachRemaining(out::add);
        return out;
    }
}
