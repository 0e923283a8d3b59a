package org.moeserve.routing.torch;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.moeserve.routing.RoutingStats;
import org.moeserve.routing.TraceFormatException;
import org.moeserve.routing.TraceReader;
import org.moeserve.routing.TraceRecord;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * SGLang recorder dumps written by a real torch.save in SGLang's layout (make_fixtures.py), against the import the
 * same script computed independently in Python (physical slots mapped back, padding cut, dense layer 0 dropped,
 * prefill passes split by extend_seq_lens, decode passes one sequence per token).
 */
class SglangDumpTest {
    static final Path DIR = TorchFileTest.DIR;
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    @Test
    void perTokenDumpReadsAsTheTraceTorchComputed() throws IOException {
        TraceReader.Trace want = TraceReader.read(DIR.resolve("sglang-per_token.expected.jsonl"));
        SglangDump.Import got = SglangDump.trace(DIR.resolve("sglang-per_token.pt"));
        assertEquals(4, got.decoderLayers());
        assertArrayEquals(new int[]{1, 2, 3}, got.moeLayerIds(), "layer 0 never routes: dense, dropped");
        assertTrue(got.describe().contains("dense layers [0] dropped"), got.describe());
        assertEquals(want.header().layers(), got.trace().header().layers());
        assertEquals(want.header().experts(), got.trace().header().experts(), "8 logical experts behind 10 physical slots");
        assertEquals(want.header().topK(), got.trace().header().topK(), "padding of 8 cut to top-2");
        assertEquals(want.records().size(), got.trace().records().size(), "2 + 1 prefill requests, 2 decode tokens");
        for (int i = 0; i < want.records().size(); i++) {
            TraceRecord w = want.records().get(i), g = got.trace().records().get(i);
            assertArrayEquals(w.tokens(), g.tokens(), "sequence " + i);
            assertEquals(w.length(), g.length());
            for (int t = 0; t < w.length(); t++) {
                for (int l = 0; l < w.experts()[t].length; l++) assertArrayEquals(w.experts()[t][l], g.experts()[t][l], i + "/" + t + "/" + l);
            }
        }
        assertEquals("prefill", got.trace().records().get(0).phase());
        assertEquals("decode", got.trace().records().get(2).phase());
        assertEquals(got.trace().records().size(), TraceReader.read(DIR.resolve("sglang-per_token.pt")).records().size(),
                "every trace consumer reads the dump through TraceReader");
    }

    @Test
    void perTokenDumpAsStatisticsCountsEveryMappedSelection() throws IOException {
        TraceReader.Trace want = TraceReader.read(DIR.resolve("sglang-per_token.expected.jsonl"));
        long[][] load = new long[3][8];
        for (TraceRecord r : want.records()) for (int[][] tok : r.experts()) for (int l = 0; l < 3; l++) for (int e : tok[l]) load[l][e]++;
        RoutingStats s = RoutingStats.read(DIR.resolve("sglang-per_token.pt"));
        assertEquals(3, s.layers());
        for (int l = 0; l < 3; l++) assertArrayEquals(load[l], s.load().get(l), "layer " + l);
        assertTrue(s.transitionsTop1().isEmpty());
    }

    @Test
    void statDumpIsTheLoadSummedOverStepsWithTheDenseLayerDropped() throws IOException {
        JsonNode want = JSON.readTree(DIR.resolve("sglang-stat.expected.json").toFile()).get("load");
        RoutingStats s = RoutingStats.read(DIR.resolve("sglang-stat.pt"));
        assertEquals(3, s.layers());
        assertEquals(8, s.experts());
        for (int l = 0; l < 3; l++) {
            long[] row = new long[8];
            for (int e = 0; e < 8; e++) row[e] = want.get(l).get(e).asLong();
            assertArrayEquals(row, s.load().get(l));
        }
        var e = assertThrows(TraceFormatException.class, () -> TraceReader.read(DIR.resolve("sglang-stat.pt")));
        assertTrue(e.getMessage().contains("load counts only") && e.getMessage().contains("--stats"), e.getMessage());
    }

    @Test
    void theLogicalCountJsonFormReadsAsStatistics() throws IOException {
        Path f = tmp.resolve("count.json");
        Files.writeString(f, "{\"logical_count\": [[[0,0,0],[1,2,3]],[[0,0,0],[4,5,6]]]}");
        RoutingStats s = RoutingStats.read(f);
        assertEquals(1, s.layers(), "the all-zero layer is dense");
        assertArrayEquals(new long[]{5, 7, 9}, s.load().get(0));
        Files.writeString(f, "{\"logical_count\": [[1,2],[3]]}");
        var e = assertThrows(TraceFormatException.class, () -> RoutingStats.read(f));
        assertTrue(e.getMessage().contains("row 1 has 1 entries but must have 2"), e.getMessage());
    }
}
