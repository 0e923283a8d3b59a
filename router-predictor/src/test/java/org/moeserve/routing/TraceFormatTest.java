package org.moeserve.routing;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TraceFormatTest {
    @TempDir
    Path tmp;

    static final String HEADER = "{\"format\":\"moe-trace/1\",\"model\":\"m\",\"layers\":2,\"experts\":4,\"top_k\":2}";

    @Test
    void writtenTracesReadBackExactly() throws IOException {
        Path f = tmp.resolve("t.jsonl");
        TraceHeader h = new TraceHeader("tiny", 2, 4, 2, "test");
        int[][][] ex = {{{3, 1}, {0, 2}}, {{2, 3}, {-1, -1}}};
        float[][][] w = {{{0.75f, 0.25f}, {0.5f, 0.5f}}, {{0.6f, 0.4f}, {Float.NaN, Float.NaN}}};
        try (TraceWriter out = new TraceWriter(f, h)) {
            out.write(new TraceRecord("a-0", "a", "prefill", new int[]{7, 8}, ex, w));
            out.write(new TraceRecord("b-0", "b", "decode", new int[0], ex, null));
        }
        TraceReader.Trace t = TraceReader.read(f);
        assertEquals(h, t.header());
        assertEquals(2, t.records().size());
        TraceRecord a = t.records().get(0);
        assertEquals("a-0", a.id());
        assertArrayEquals(new int[]{7, 8}, a.tokens());
        for (int i = 0; i < 2; i++) for (int l = 0; l < 2; l++) assertArrayEquals(ex[i][l], a.experts()[i][l]);
        assertEquals(0.75f, a.weights()[0][0][0]);
        assertTrue(Float.isNaN(a.weights()[1][1][0]), "unknown weight cells are null in the file, NaN in memory");
        assertNull(t.records().get(1).weights());
        assertEquals("decode", t.records().get(1).phase());
    }

    @Test
    void malformedFilesNameLineFieldAndValue() throws IOException {
        Path f = tmp.resolve("bad.jsonl");
        Files.writeString(f, "{\"format\":\"moe-trace/2\"}\n");
        assertMessage(f, "bad.jsonl:1", "format is \"moe-trace/2\"");
        Files.writeString(f, HEADER + "\n{\"id\":\"x\",\"experts\":[[[0,1],[2,9]]]}\n");
        assertMessage(f, "bad.jsonl:2", "experts[0][1][1] is 9", "0..3");
        Files.writeString(f, HEADER + "\n\n{\"id\":\"x\",\"experts\":[[[0,1]]]}\n");
        assertMessage(f, "bad.jsonl:3", "experts[0]", "2 layers");
        Files.writeString(f, HEADER + "\n{\"id\":\"x\",\"experts\":[[[0,1],[2,3]]],\"phase\":\"warmup\"}\n");
        assertMessage(f, "bad.jsonl:2", "phase is warmup");
        Files.writeString(f, HEADER + "\n{not json\n");
        assertMessage(f, "bad.jsonl:2", "not valid JSON");
    }

    static void assertMessage(Path f, String... parts) {
        TraceFormatException e = assertThrows(TraceFormatException.class, () -> TraceReader.read(f));
        for (String p : parts) assertTrue(e.getMessage().contains(p), "'" + p + "' not in: " + e.getMessage());
    }

    @Test
    void readsTheSharedHeldOutTrace() throws IOException {
        Path shared = null;
        for (Path p = Path.of("").toAbsolutePath(); p != null && shared == null; p = p.getParent()) {
            Path cand = p.resolve("shared/traces/tiny-mixtral-kjv-heldout.trace.jsonl");
            if (Files.isRegularFile(cand)) shared = cand;
        }
        assertTrue(shared != null, "../shared/traces/tiny-mixtral-kjv-heldout.trace.jsonl must sit beside the checkout");
        TraceReader.Trace t = TraceReader.read(shared);
        assertEquals(6, t.header().layers());
        assertEquals(16, t.header().experts());
        assertEquals(64, t.records().size(), "16 sequences x 4 domains");
        for (TraceRecord r : t.records()) assertEquals(r.tokens().length, r.length());
    }

    /** Sizes come from the file's content, not its header; bad content is named by file, line, field and value. */
    @Test
    void hostileTracesFailFastInOneLine() throws IOException {
        String rec = "{\"experts\":[[[0,1],[2,3]]]}";
        Object[][] cases = {
                {"{\"format\":\"moe-trace/1\",\"layers\":1000000,\"experts\":4,\"top_k\":2}\n" + rec, ":1: layers is 1000000"},
                {"{\"format\":\"moe-trace/1\",\"layers\":2147483647,\"experts\":4,\"top_k\":2}\n" + rec, ":1: layers is 2147483647"},
                {"{\"format\":\"moe-trace/1\",\"layers\":2,\"experts\":2147483647,\"top_k\":2}\n" + rec, ":1: experts is 2147483647"},
                {HEADER + "\n", "the header is all there is"},
                {HEADER + "\n{\"experts\":[[[1,1],[2,3]]]}", ":2: experts[0][0] is [1,1]: expert 1 appears twice"},
        };
        int i = 0;
        for (Object[] c : cases) {
            Path f = tmp.resolve("bad-" + i++ + ".jsonl");
            Files.writeString(f, (String) c[0]);
            long t0 = System.nanoTime();
            TraceFormatException e = assertThrows(TraceFormatException.class, () -> TraceReader.read(f));
            assertTrue(e.getMessage().contains((String) c[1]), e.getMessage());
            assertTrue(e.getMessage().startsWith(f.toAbsolutePath().toString()), "names the whole path: " + e.getMessage());
            assertTrue(System.nanoTime() - t0 < 2_000_000_000L, "fails at once");
        }
        Path bin = tmp.resolve("binary.jsonl");
        Files.write(bin, new byte[]{(byte) 0xff, (byte) 0xfe, 0, 1, 2, (byte) 0x80, '\n'});
        TraceFormatException e = assertThrows(TraceFormatException.class, () -> TraceReader.read(bin));
        assertTrue(e.getMessage().contains("not UTF-8 text"), e.getMessage());
        Path stats = tmp.resolve("stats.json");
        Files.writeString(stats, "{\"format\":\"moe-stats/1\",\"layers\":2,\"experts\":2147483647,\"top_k\":2}");
        e = assertThrows(TraceFormatException.class, () -> RoutingStats.read(stats));
        assertTrue(e.getMessage().contains("experts is 2147483647"), e.getMessage());
    }
}
