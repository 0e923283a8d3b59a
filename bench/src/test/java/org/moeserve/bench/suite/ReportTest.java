package org.moeserve.bench.suite;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.moeserve.runtime.model.MoeModel;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ReportTest {
    static final Path ROOT = Path.of("..").toAbsolutePath().normalize();

    @Test
    void parsesTablesWithTheirSectionCaptionAndNote() {
        Table.Parsed p = Table.parse("""
                machine: 2 cores
                ### held-out, K=2
                popularity, K=2: precision / recall
                | domain | tokens | d=1 |
                |---|---|---|
                | bible | 4,096 | 0.132 / 0.132 |
                | all | 16384 | 61.0% |
                (fitted on x)
                a closing line
                | a | b |
                |---|---|
                | 1 | 2 |
                """);
        assertEquals(2, p.tables().size());
        Table t = p.tables().getFirst();
        assertEquals("held-out, K=2", t.section());
        assertEquals("popularity, K=2: precision / recall", t.caption());
        assertEquals(List.of("domain", "tokens", "d=1"), t.columns());
        assertEquals(2, t.rows().size());
        assertEquals("(fitted on x)", t.note());
        assertEquals(4096, Table.number(t.row("bible").get(1)));
        assertEquals(61.0, Table.number(t.row("all").get(t.column("d="))));
        assertEquals("a closing line", p.tables().get(1).caption());
        assertNull(p.tables().get(1).note());
        assertEquals(List.of("machine: 2 cores"), p.text());
        assertTrue(Double.isNaN(Table.number("-")));
    }

    /** The bytes the roofline divides by, checked against the checkpoint's own safetensors header. */
    @Test
    void footprintAgreesWithTheSafetensorsHeader() throws IOException {
        Path dir = ROOT.resolve("models/tiny-mixtral-kjv");
        long headerTotal = 0, embedBytes = 0, expertTensors = 0;
        try (var files = Files.list(dir)) {
            for (Path f : files.filter(x -> x.toString().endsWith(".safetensors")).toList()) {
                try (FileChannel ch = FileChannel.open(f)) {
                    ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
                    ch.read(len, 0);
                    ByteBuffer head = ByteBuffer.allocate((int) len.getLong(0));
                    ch.read(head, 8);
                    JsonNode h = new ObjectMapper().readTree(new String(head.array(), StandardCharsets.UTF_8));
                    for (Iterator<Map.Entry<String, JsonNode>> it = h.fields(); it.hasNext(); ) {
                        Map.Entry<String, JsonNode> e = it.next();
                        if (e.getKey().equals("__metadata__")) continue;
                        long n = e.getValue().get("data_offsets").get(1).asLong() - e.getValue().get("data_offsets").get(0).asLong();
                        headerTotal += n;
                        if (e.getKey().contains("embed_tokens")) embedBytes = n;
                        if (e.getKey().contains(".experts.")) expertTensors += n;
                    }
                }
            }
        }
        try (MoeModel m = MoeModel.load(dir)) {
            Report.Footprint fp = Report.Footprint.of(m);
            var c = m.config();
            assertEquals(3L * c.hiddenSize() * c.expertIntermediate() * 2, fp.expertBytes()); // gate, up, down in BF16
            assertEquals(headerTotal, fp.total());
            assertEquals(expertTensors, (long) c.layers() * c.experts() * fp.expertBytes());
            long perToken = headerTotal - expertTensors - embedBytes + 2L * c.hiddenSize()
                    + (long) c.layers() * c.topK() * fp.expertBytes();
            assertEquals(perToken, fp.perToken(1), 0.5);
            // 8 streams read all 16 experts of a layer once (if distinct) and share the dense weights
            assertEquals((fp.nonExpert() + (double) c.layers() * c.experts() * fp.expertBytes()) / 8, fp.perToken(8), 1e-6);
        }
    }

    @Test
    void rooflinesAndRatiosSitBesideTheResults() throws IOException {
        Report.Footprint fp;
        try (MoeModel m = MoeModel.load(ROOT.resolve("models/tiny-mixtral-kjv"))) {
            fp = Report.Footprint.of(m);
        }
        Map<String, Suite.StepResult> res = new LinkedHashMap<>();
        res.put("bandwidth", step("bandwidth", table("", "", List.of("threads", "triad GB/s"), List.of(List.of("1", "20.0")))));
        res.put("decode", step("decode", table("", "", List.of("streams", "threads", "decode tokens/s (median of 3)"),
                List.of(List.of("1", "1", "2000")))));
        res.put("offload", step("offload",
                table("", "replaying 1000 tokens x 6 layers; link 16.00 GB/s, 10.0 us latency", List.of("budget", "policy", "hit rate", "moved MB"),
                        List.of(List.of("25% (24)", "lru", "0.357", "1.6"))),
                table("live", "", List.of("budget (slots)", "configuration", "decode tokens/s (median of 3)", "hit rate", "link GB/s", "bytes over link per token"),
                        List.of(List.of("25% (24)", "predictive@matched", "500", "0.9", "2.00", "1000000"),
                                List.of("25% (24)", "lru@matched", "400", "0.4", "2.00", "2000000")))));
        res.put("peers", step("peers",
                table("moe-serve (./moe bench decode 3)", "", List.of("streams", "threads", "decode tokens/s (median of 3)"),
                        List.of(List.of("1", "1", "3000"), List.of("8", "1", "9999"), List.of("1", "2", "2400"))),
                table("llama.cpp (node-llama-cpp)", "", List.of("threads", "decode tokens/s (median of 3)"),
                        List.of(List.of("1", "1500"), List.of("2", "100")))));
        Suite.Run failed = new Suite.Run("./moe plan --trace nope", 2, 0.5, List.of(), List.of(), "moe plan: no such file nope");
        res.put("placement", new Suite.StepResult("placement", "Placement", "what", "quick", "2026-11-23 10:00 UTC", "m", 1, List.of(failed)));

        Report rep = new Report(res, fp, List.of());
        String md = rep.markdown("## Analysis\n\nhand-written");
        double roof = 20e9 / fp.perToken(1);
        String roofRow = String.format(Locale.ROOT, "| 1 | 1 | 2000 | 20.0 | %,.0f | %.0f%% |", roof, 100 * 2000 / roof);
        assertTrue(md.contains(roofRow), "decode row with its roofline: " + roofRow + "\n" + md);
        assertTrue(md.contains("| 25% (24) | lru | 0.357 | 1.6 | 1,600 | 10,000,000 |"), md); // 1.6 MB / 1000 tokens over 16 GB/s
        assertTrue(md.contains("| 25% (24) | predictive@matched | 500 | 0.9 | 2.00 | 1000000 | 2,000 | 25% |"), md);
        assertTrue(md.contains("predictive 500 vs LRU 400 tokens/s at the matched link, 25% resident | predictive at 25% of its link roofline |"), md);
        assertTrue(md.contains("| llama.cpp | 1,500 | 100 | 2.00x | 24.00x |"), md); // 3000/1500 and 2400/100
        assertTrue(md.contains("**Failed** (exit 2) at `./moe plan --trace nope`"), md);
        assertTrue(md.contains("| [placement](#placement) | quick, 2026-11-23 10:00 UTC, 1 s | failed: see its section |"), md);
        assertTrue(md.contains("| predictors | not run yet |"), md);
        assertTrue(md.endsWith("## Analysis\n\nhand-written\n"), md);
        assertTrue(md.contains("![decode.svg](bench/results/decode.svg)"), md);
    }

    /** BENCHMARKS.md and its plots are what the report makes of the committed JSON: nobody edits them by hand. */
    @Test
    void benchmarksMdIsTheReportOfTheCommittedResults() throws IOException {
        Report.Rendered r = Report.render(ROOT);
        assertEquals(r.markdown(), Files.readString(ROOT.resolve("BENCHMARKS.md")),
                "BENCHMARKS.md differs from bench/results/*.json + bench/analysis.md: run ./moe bench report");
        for (Map.Entry<String, String> p : r.plots().entrySet()) {
            assertEquals(p.getValue(), Files.readString(ROOT.resolve("bench/results/" + p.getKey())), p.getKey());
        }
        assertTrue(r.plots().size() >= 3, "plots: " + r.plots().keySet());
    }

    private static Table table(String section, String caption, List<String> cols, List<List<String>> rows) {
        return new Table(section, caption, cols, rows, null);
    }

    private static Suite.StepResult step(String name, Table... tables) {
        List<Suite.Run> runs = new ArrayList<>();
        runs.add(new Suite.Run("./moe bench " + name, 0, 1, List.of(tables), List.of(), ""));
        return new Suite.StepResult(name, name, "what", "quick", "2026-11-23 10:00 UTC", "m", 1, runs);
    }
}
