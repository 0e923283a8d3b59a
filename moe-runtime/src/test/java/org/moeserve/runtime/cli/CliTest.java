package org.moeserve.runtime.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.moeserve.routing.TraceReader;
import org.moeserve.routing.TraceRecord;
import org.moeserve.runtime.TestModels;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The moe commands, run in-process as a user would run them, on the bundled demo model. */
class CliTest {
    @TempDir
    Path tmp;

    record Run(int exit, String out, String err) {}

    static Run run(String... args) {
        PrintStream oldOut = System.out;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        StringWriter err = new StringWriter();
        CommandLine cl = Moe.commandLine();
        cl.setErr(new PrintWriter(err, true));
        int exit;
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            exit = cl.execute(args);
        } finally {
            System.setOut(oldOut);
        }
        return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString());
    }

    @Test
    void generatePrintsTheGreedyContinuationAndSpeeds() throws IOException {
        JsonNode g = new ObjectMapper().readTree(TestModels.dir("tiny-mixtral-kjv").resolve("golden.json").toFile())
                .get("prompts").get(0);
        Run r = run("generate", "--model", TestModels.dir("tiny-mixtral-kjv").toString(), "--prompt",
                g.get("text").asText(), "--max-tokens", "48", "--greedy", "--threads", "2");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().startsWith(g.get("text").asText() + g.get("greedy_text").asText()), r.out());
        assertTrue(r.out().contains("prefill: 28 tokens"), r.out());
        assertTrue(r.out().contains("decode: 47 tokens"), r.out());
        assertTrue(r.out().contains("tokens/s"), r.out());
    }

    @Test
    void traceWritesTheRoutingTheReferenceComputed() throws IOException {
        JsonNode g = new ObjectMapper().readTree(TestModels.dir("tiny-mixtral-kjv").resolve("golden.json").toFile())
                .get("prompts").get(1);
        Path text = tmp.resolve("jargon.txt"), out = tmp.resolve("jargon.trace.jsonl");
        Files.writeString(text, g.get("text").asText());
        Run r = run("trace", "--model", TestModels.dir("tiny-mixtral-kjv").toString(), "--input", text.toString(),
                "--out", out.toString());
        assertEquals(0, r.exit(), r.err());
        TraceReader.Trace t = TraceReader.read(out);
        assertEquals("tiny-mixtral-kjv", t.header().model());
        assertEquals(1, t.records().size());
        TraceRecord rec = t.records().getFirst();
        assertEquals("jargon", rec.domain());
        assertEquals(g.get("input_ids").size(), rec.length());
        for (JsonNode layer : g.get("routing")) {
            int l = layer.get("layer").asInt();
            for (int p = 0; p < rec.length(); p++) {
                int[] want = new int[2], got = rec.experts()[p][l].clone();
                for (int k = 0; k < 2; k++) want[k] = layer.get("experts").get(p).get(k).asInt();
                Arrays.sort(want);
                Arrays.sort(got);
                assertArrayEquals(want, got, "layer " + l + " position " + p);
            }
        }
    }

    @Test
    void usageErrorsExit2AndBadModelsExit1WithTheReason() {
        Run noPrompt = run("generate", "--max-tokens", "3");
        assertEquals(2, noPrompt.exit());
        assertTrue(noPrompt.err().contains("--prompt"), noPrompt.err());
        Run badModel = run("generate", "--model", tmp.resolve("missing").toString(), "--prompt", "x");
        assertEquals(1, badModel.exit());
        assertTrue(badModel.err().contains("model directory not found"), badModel.err());
        Run badChunk = run("trace", "--model", TestModels.dir("tiny-mixtral-kjv").toString(), "--input", "x",
                "--out", tmp.resolve("o").toString(), "--chunk", "999");
        assertEquals(1, badChunk.exit());
        assertTrue(badChunk.err().contains("--chunk is 999"), badChunk.err());
    }
}
