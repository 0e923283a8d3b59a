package org.moeserve.comms.cluster;

import io.vertx.core.buffer.Buffer;
import org.junit.jupiter.api.Test;
import org.moeserve.comms.ExpertGroups;
import org.moeserve.placement.PlacementPlan;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The cluster's plan survives its JSON round trip; a request carries each row once and the groups over them. */
class ClusterWireTest {
    @Test
    void planRoundTripsThroughJson() {
        PlacementPlan placement = new PlacementPlan(3, "contiguous", 2, new int[][]{{0, 1, 2, 3}, {3, 2, 1, 0}});
        ClusterPlan p = new ClusterPlan(7, List.of("a", "b"), placement, 4);
        ClusterPlan q = ClusterPlan.fromJson(p.toJson());
        assertEquals(7, q.version());
        assertEquals(List.of("a", "b"), q.members());
        assertEquals(1, q.indexOf("b"));
        assertArrayEquals(placement.phy2log()[1], q.placement().phy2log()[1]);
        assertEquals(1, q.dispatch().device(1, 1, 0), "expert 1 of layer 1 is on member b");
    }

    @Test
    void aRequestSendsEachRowOnceAndNamesItsGroupsRows() {
        float[][] x = {{1, 2}, {3, 4}, {5, 6}};
        int[][] idx = {{0, 1}, {1, 2}, {0, 2}};
        // this member's share: rows 0 and 2 for expert 0, rows 1 and 2 for expert 2 (row 1 sent once though in one group)
        List<ExpertGroups.Group> groups = ExpertGroups.of(idx, 3, 3, (r, j) -> idx[r][j] != 1);
        Buffer b = ClusterMember.encode(5, x, 3, groups);
        int pos = 0;
        assertEquals(5, b.getInt(pos));
        int rows = b.getInt(pos + 4);
        assertEquals(3, rows, "rows 0, 2 and 1, each once");
        pos += 8;
        float[][] sent = new float[rows][2];
        for (float[] r : sent) for (int i = 0; i < 2; i++, pos += 4) r[i] = b.getFloat(pos);
        assertArrayEquals(new float[]{1, 2}, sent[0]);
        assertArrayEquals(new float[]{5, 6}, sent[1]);
        assertArrayEquals(new float[]{3, 4}, sent[2]);
        assertEquals(2, b.getInt(pos));
        assertEquals(0, b.getInt(pos + 4));
        assertEquals(2, b.getInt(pos + 8));
        assertEquals(List.of(0, 1), List.of(b.getInt(pos + 12), b.getInt(pos + 16)), "expert 0: sent rows 0 and 1 (x[0], x[2])");
        assertEquals(2, b.getInt(pos + 20));
        assertEquals(List.of(2, 1), List.of(b.getInt(pos + 28), b.getInt(pos + 32)), "expert 2: x[1] then x[2]");
    }
}
