package org.moeserve.placement;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.moeserve.placement.greedy.Eplb;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** DeepSeek EPLB's worked example (its README) and the expected physical-to-logical map: the golden test. */
class EplbTest {
    @Test
    void reproducesTheReadmeExample() throws IOException {
        Path f = null;
        for (Path p = Path.of("").toAbsolutePath(); p != null && f == null; p = p.getParent()) {
            Path c = p.resolve("shared/data/eplb-example/example.json");
            if (Files.isRegularFile(c)) f = c;
        }
        assertTrue(f != null, "../shared/data/eplb-example/example.json must sit beside the checkout");
        JsonNode ex = new ObjectMapper().readTree(f.toFile());
        float[][] w = new float[ex.get("weight").size()][];
        for (int l = 0; l < w.length; l++) {
            w[l] = new float[ex.get("weight").get(l).size()];
            for (int e = 0; e < w[l].length; e++) w[l][e] = (float) ex.get("weight").get(l).get(e).asDouble();
        }
        int[][] got = Eplb.rebalance(w, ex.get("num_replicas").asInt(), ex.get("num_groups").asInt(),
                ex.get("num_nodes").asInt(), ex.get("num_gpus").asInt());
        for (int l = 0; l < w.length; l++) {
            int[] want = new int[ex.get("expected_phy2log").get(l).size()];
            for (int i = 0; i < want.length; i++) want[i] = ex.get("expected_phy2log").get(l).get(i).asInt();
            assertArrayEquals(want, got[l], "layer " + l);
        }
    }
}
