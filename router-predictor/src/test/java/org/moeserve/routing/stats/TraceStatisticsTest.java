package org.moeserve.routing.stats;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.moeserve.routing.RoutingStats;
import org.moeserve.routing.TraceFormatException;
import org.moeserve.routing.TraceHeader;
import org.moeserve.routing.TraceRecord;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TraceStatisticsTest {
    @TempDir
    Path tmp;

    // 3 layers, 4 experts, top-2; two tokens of one sequence
    static final TraceHeader H = new TraceHeader("m", 3, 4, 2, null);
    static final int[][][] PATHS = {
            {{0, 1}, {2, 3}, {0, 2}},
            {{0, 2}, {2, 1}, {3, -1}}};

    static TraceStatistics stats() {
        return new TraceStatistics(H, List.of(new TraceRecord("s", "d", "prefill", new int[]{5, 6}, PATHS, null)));
    }

    @Test
    void loadTransitionsAndReuseByHand() {
        TraceStatistics s = stats();
        assertArrayEquals(new long[]{2, 1, 1, 0}, s.load(0));
        assertArrayEquals(new long[]{0, 1, 2, 1}, s.load(1));
        assertArrayEquals(new long[]{1, 0, 1, 1}, s.load(2), "the unknown cell (-1) is skipped");
        long[][][] t1 = s.transitions(1);
        // token 0: {0,1} -> {2,3}; token 1: {0,2} -> {2,1}
        assertEquals(2, t1[0][0][2]);
        assertEquals(1, t1[0][0][3]);
        assertEquals(1, t1[0][0][1]);
        assertEquals(1, t1[0][2][1]);
        assertEquals(0, t1[0][3][0]);
        long[][][] t2 = s.transitions(2);
        assertEquals(1, t2.length, "only the pair (0, 2) is 2 apart");
        assertEquals(2, t2[0][0][0] + t2[0][0][2] + t2[0][0][3] - 1, "0 -> {0,2} then 0 -> {3}");
        double[][] p = s.transitionProbabilities(0, 1);
        assertEquals(0.5, p[0][2], 1e-12);
        assertEquals(0.25, p[3][0], 1e-12, "an empty row is uniform");
        // reuse at layer 0: token 1 chose {0,2}; token 0 had {0,1}: 1 of 2
        assertEquals(0.5, s.reuse(0), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> s.transitions(3));
    }

    @Test
    void statsRoundTripThroughMoeStatsFiles() throws IOException {
        RoutingStats rs = stats().toStats("m", "d");
        Path f = tmp.resolve("s.json");
        rs.write(f);
        RoutingStats back = RoutingStats.read(f);
        assertEquals(2, back.tokens());
        assertArrayEquals(new long[]{2, 0, 0, 0}, back.loadTop1().get(0), "both tokens' top-1 at layer 0 is 0");
        assertEquals(2, back.transitionsTop1().get("0->1")[0][2]);
        assertEquals(1, back.transitionsRankAligned().get("1->2")[3][2], "2nd choices: 3 at layer 1 -> 2 at layer 2");
    }

    @Test
    void readsThePublishedOlmoeStatistics() throws IOException {
        Path f = null;
        for (Path p = Path.of("").toAbsolutePath(); p != null && f == null; p = p.getParent()) {
            Path c = p.resolve("shared/data/olmoe-paper-stats/olmoe-arxiv.json");
            if (Files.isRegularFile(c)) f = c;
        }
        assertTrue(f != null, "../shared/data/olmoe-paper-stats must sit beside the checkout");
        RoutingStats s = RoutingStats.read(f);
        assertEquals(64, s.experts());
        assertEquals(8, s.topK());
        assertEquals(List.of("0->7", "7->15"), List.copyOf(s.transitionsTop1().keySet()));
        long total = 0;
        for (long[] row : s.transitionsTop1().get("0->7")) for (long v : row) total += v;
        long load0 = 0;
        for (long v : s.loadTop1().get(0)) load0 += v;
        assertEquals(load0, total, "every token's top-1 at layer 0 appears once in the 0->7 transitions");
    }

    @Test
    void malformedStatisticsNameFieldAndValue() throws IOException {
        Path f = tmp.resolve("bad.json");
        Files.writeString(f, "{\"format\":\"moe-trace/1\"}");
        assertMessage(f, "format is \"moe-trace/1\"");
        Files.writeString(f, "{\"format\":\"moe-stats/1\",\"layers\":2,\"experts\":2,\"top_k\":1,\"load\":{\"5\":[1,2]}}");
        assertMessage(f, "load names layer \"5\"", "0..1");
        Files.writeString(f, "{\"format\":\"moe-stats/1\",\"layers\":2,\"experts\":2,\"top_k\":1,\"transitions_top1\":{\"0-1\":[]}}");
        assertMessage(f, "key \"0-1\"");
        Files.writeString(f, "{\"format\":\"moe-stats/1\",\"layers\":2,\"experts\":2,\"top_k\":1,\"load\":{\"0\":[1,-2]}}");
        assertMessage(f, "load[0][1] is -2");
    }

    static void assertMessage(Path f, String... parts) {
        TraceFormatException e = assertThrows(TraceFormatException.class, () -> RoutingStats.read(f));
        for (String p : parts) assertTrue(e.getMessage().contains(p), "'" + p + "' not in: " + e.getMessage());
    }
}
