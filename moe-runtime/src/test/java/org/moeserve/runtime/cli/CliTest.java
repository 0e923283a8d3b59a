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
import java.util.List;

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

    /**
     * moe quantize, then the file everywhere a model directory goes: generate gives the golden greedy text (Q8_0
     * holds it), eval reports bits per byte and the distance to the BF16 original.
     */
    @Test
    void quantizeWritesAGgufThatGenerateAndEvalTake() throws IOException {
        Path q = tmp.resolve("demo-q8_0.gguf");
        Run quant = run("quantize", "--model", TestModels.dir("tiny-mixtral-kjv").toString(), "--type", "q8_0", "--out", q.toString());
        assertEquals(0, quant.exit(), quant.err());
        JsonNode g = new ObjectMapper().readTree(TestModels.dir("tiny-mixtral-kjv").resolve("golden.json").toFile())
                .get("prompts").get(0);
        Run gen = run("generate", "--model", q.toString(), "--prompt", g.get("text").asText(), "--max-tokens", "16", "--greedy");
        assertEquals(0, gen.exit(), gen.err());
        assertTrue(gen.out().startsWith(g.get("text").asText() + g.get("greedy_text").asText().substring(0, 16)), gen.out());
        Run eval = run("eval", "--model", q.toString(), "--trace", sharedFile("traces/tiny-mixtral-kjv-heldout.trace.jsonl").toString(),
                "--max-windows", "4", "--reference", TestModels.dir("tiny-mixtral-kjv").toString(), "--json");
        assertEquals(0, eval.exit(), eval.err());
        JsonNode e = new ObjectMapper().readTree(eval.out());
        assertEquals(4, e.get("windows").asInt());
        assertTrue(e.get("bits_per_byte").asDouble() > 1 && e.get("bits_per_byte").asDouble() < 2.5, eval.out());
        assertTrue(e.get("argmax_agreement").asDouble() > 0.97, eval.out());
        Run bad = run("quantize", "--type", "q3_k", "--out", tmp.resolve("x.gguf").toString());
        assertEquals(2, bad.exit());
        assertTrue(bad.err().contains("--type q3_k is not one of q8_0, q4_0, q4_k_m, f32"), bad.err());
        Run lowBit = run("generate", "--prompt", "x", "--low-bit", q.toString());
        assertEquals(2, lowBit.exit());
        assertTrue(lowBit.err().contains("--low-bit serves misses of the expert cache: give --expert-budget too"), lowBit.err());
        Run fallback = run("generate", "--model", TestModels.dir("tiny-mixtral-kjv").toString(), "--prompt", g.get("text").asText(), "--max-tokens", "8", "--greedy", "--expert-budget", "25%",
                "--link", "0.8GB/s", "--policy", "lru", "--low-bit", q.toString());
        assertEquals(0, fallback.exit(), fallback.err());
        assertTrue(fallback.out().contains("low-bit fallback: ") && fallback.out().contains("served from demo-q8_0.gguf"), fallback.out());
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

    static Path sharedFile(String rel) {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("shared").resolve(rel))) return p.resolve("shared").resolve(rel);
        }
        throw new IllegalStateException("../shared/" + rel + " must sit beside the checkout");
    }

    /** The first {@code n} sequences of each domain of the shared held-out trace, as a file of their own. */
    Path smallTrace(int n) throws IOException {
        TraceReader.Trace all = TraceReader.read(sharedFile("traces/tiny-mixtral-kjv-heldout.trace.jsonl"));
        Path f = tmp.resolve("small-" + n + ".trace.jsonl");
        try (org.moeserve.routing.TraceWriter w = new org.moeserve.routing.TraceWriter(f, all.header())) {
            for (int d = 0; d < 4; d++) for (int i = 0; i < n; i++) w.write(all.records().get(d * 16 + i));
        }
        return f;
    }

    @Test
    void predictorTrainAndEvalFromTheCommandLine() throws IOException {
        Path trace = smallTrace(1), weights = tmp.resolve("learned.bin");
        String model = TestModels.dir("tiny-mixtral-kjv").toString();
        Run train = run("predictor", "train", "--model", model, "--trace", trace.toString(), "--out", weights.toString(),
                "--epochs", "2");
        assertEquals(0, train.exit(), train.err());
        Run eval = run("predictor", "eval", "--trace", trace.toString(), "--model", model, "--predictor",
                "popularity,learned,oracle", "--predictor-weights", weights.toString(), "--horizon", "2", "--json", "-");
        assertEquals(0, eval.exit(), eval.err());
        JsonNode results = new ObjectMapper().readTree(eval.out());
        assertEquals(3, results.size());
        assertEquals("oracle", results.get(2).get("predictor").asText());
        assertEquals(1.0, results.get(2).get("all").get(1).get("precision").asDouble());
        assertEquals(4, results.get(0).get("domains").size(), "bible, fortunes, jargon, pydoc");
        assertEquals("in-sample", results.get(0).get("fit").asText());
        double learned = results.get(1).get("all").get(0).get("precision").asDouble();
        assertTrue(learned > 0 && learned <= 1, "learned precision " + learned);
        assertTrue(results.get(1).get("ns_per_token_per_layer").asDouble() > 0);
    }

    @Test
    void predictorEvalStatsAndItsErrors() throws IOException {
        Path arxiv = sharedFile("data/olmoe-paper-stats/olmoe-arxiv.json");
        Run r = run("predictor", "eval-stats", "--fit-stats", arxiv.toString(), "--test", arxiv.toString(), "--pair", "0->7");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("| arxiv | 0->7 |"), r.out());
        Path trace = smallTrace(1);
        Run noWeights = run("predictor", "eval", "--trace", trace.toString(), "--model",
                TestModels.dir("tiny-mixtral-kjv").toString(), "--predictor", "learned");
        assertEquals(1, noWeights.exit());
        assertTrue(noWeights.err().contains("--predictor-weights"), noWeights.err());
        Run noModel = run("predictor", "eval", "--trace", trace.toString(), "--predictor", "lookahead-gate");
        assertEquals(1, noModel.exit());
        assertTrue(noModel.err().contains("--model"), noModel.err());
        Run unknown = run("predictor", "eval", "--trace", trace.toString(), "--predictor", "magic");
        assertEquals(2, unknown.exit(), "an unknown name is a usage error");
        assertTrue(unknown.err().contains("--predictor is magic"), unknown.err());
    }

    @Test
    void cacheSimReplaysPoliciesWithBeladyBesideThemAndPlotsASweep() throws IOException {
        Path trace = smallTrace(2), svg = tmp.resolve("sweep.svg");
        Run r = run("cache-sim", "--trace", trace.toString(), "--model", TestModels.dir("tiny-mixtral-kjv").toString(),
                "--policy", "lru,predictive,oracle", "--expert-budget", "25%,50%", "--svg", svg.toString(), "--json", "-");
        assertEquals(0, r.exit(), r.err());
        JsonNode rows = new ObjectMapper().readTree(r.out());
        assertEquals(6, rows.size(), "3 policies x 2 budgets");
        for (JsonNode row : rows) {
            assertEquals(8L * 256 * 12, row.get("accesses").asLong(), "8 sequences x 256 tokens x 6 layers x top-2");
            assertTrue(row.get("belady_hit_rate").asDouble() > 0);
        }
        double lru = rows.get(0).get("hit_rate").asDouble(), predictive = rows.get(1).get("hit_rate").asDouble();
        assertTrue(predictive > lru, "predictive " + predictive + " vs lru " + lru);
        assertEquals(24, rows.get(0).get("slots").asInt());
        assertEquals(48, rows.get(3).get("slots").asInt());
        String plot = Files.readString(svg);
        assertTrue(plot.startsWith("<svg") && plot.contains("predictive") && plot.contains("belady"), plot);
        // the disk tier's readers: demand-only LRU is the same as on a serial link, prefetches overlap and arrive sooner
        double[][] hit = new double[2][];
        for (int readers : new int[]{0, 4}) {
            Run rr = run("cache-sim", "--trace", trace.toString(), "--model", TestModels.dir("tiny-mixtral-kjv").toString(), "--policy",
                    "lru,predictive", "--link", "0.45GB/s,80us", "--layer-time", "118us", "--readers", String.valueOf(readers), "--json", "-");
            assertEquals(0, rr.exit(), rr.err());
            JsonNode j = new ObjectMapper().readTree(rr.out());
            hit[readers == 0 ? 0 : 1] = new double[]{j.get(0).get("hit_rate").asDouble(), j.get(1).get("hit_rate").asDouble(),
                    j.get(0).get("stall_ms").asDouble()};
        }
        assertEquals(hit[0][0], hit[1][0], "LRU's hit rate does not depend on the schedule");
        assertEquals(hit[0][2], hit[1][2], 1e-9, "nor its stall: demand loads are read one after another either way");
        assertTrue(hit[1][1] > hit[0][1], "predictive with 4 readers " + hit[1][1] + " vs serial " + hit[0][1]);
        // the foresight bounds: belady:N and oracle:N sit between blindness and the full future
        Run bounds = run("cache-sim", "--trace", trace.toString(), "--model", TestModels.dir("tiny-mixtral-kjv").toString(),
                "--policy", "belady:0,belady:1,belady,oracle:0,oracle", "--json", "-");
        assertEquals(0, bounds.exit(), bounds.err());
        JsonNode b = new ObjectMapper().readTree(bounds.out());
        double b0 = b.get(0).get("hit_rate").asDouble(), b1 = b.get(1).get("hit_rate").asDouble(), all = b.get(2).get("hit_rate").asDouble();
        assertTrue(b0 < b1 && b1 < all, "belady:0 " + b0 + " < belady:1 " + b1 + " < belady " + all);
        assertEquals("oracle", b.get(3).get("prefetch_by").asText(), "oracle:N prefetches the truth");
        assertTrue(b.get(3).get("stall_ms").asDouble() > b.get(4).get("stall_ms").asDouble(), "within-token foresight stalls more");
        for (String wrong : new String[]{"belady:x", "belady:-1", "oracle:"}) {
            Run w = run("cache-sim", "--trace", trace.toString(), "--policy", wrong);
            assertEquals(2, w.exit(), wrong);
            assertTrue(w.err().contains("--policy is " + wrong) && w.err().contains("belady:N"), w.err());
        }
        Run bad = run("cache-sim", "--trace", trace.toString(), "--policy", "fifo");
        assertEquals(2, bad.exit(), "a bad value is a usage error");
        assertTrue(bad.err().contains("--policy is fifo") && bad.err().contains("Usage:"), bad.err());
        assertEquals("", bad.out(), "nothing printed before the error");
        Run badBudget = run("cache-sim", "--trace", trace.toString(), "--expert-budget", "25%,250%");
        assertEquals(2, badBudget.exit());
        assertTrue(badBudget.err().contains("'--expert-budget'") && badBudget.err().contains("250%"), badBudget.err());
        assertEquals("", badBudget.out(), "every value is checked before the first row");
    }

    @Test
    void generateWithAQuarterOfTheExpertsGivesTheSameTextAndReportsTheCache() throws IOException {
        JsonNode g = new ObjectMapper().readTree(TestModels.dir("tiny-mixtral-kjv").resolve("golden.json").toFile())
                .get("prompts").get(2);
        Run r = run("generate", "--model", TestModels.dir("tiny-mixtral-kjv").toString(), "--prompt", g.get("text").asText(),
                "--max-tokens", "48", "--greedy", "--expert-budget", "25%", "--link", "8GB/s", "--policy", "predictive");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().startsWith(g.get("text").asText() + g.get("greedy_text").asText()), r.out());
        assertTrue(r.out().contains("expert cache: predictive, 24 of 96 experts resident"), r.out());
        assertTrue(r.out().contains("[modelled link]") && r.out().contains("prefetch precision"), r.out());
    }

    @Test
    void generateFromTheDiskTierGivesTheSameTextAndNamesHowItReads() throws IOException {
        JsonNode g = new ObjectMapper().readTree(TestModels.dir("tiny-mixtral-kjv").resolve("golden.json").toFile())
                .get("prompts").get(2);
        Run r = run("generate", "--model", TestModels.dir("tiny-mixtral-kjv").toString(), "--prompt", g.get("text").asText(),
                "--max-tokens", "48", "--greedy", "--expert-budget", "25%", "--offload", "disk");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().startsWith(g.get("text").asText() + g.get("greedy_text").asText()), r.out());
        assertTrue(r.out().contains("24 of 96 experts resident (25%), disk, direct I/O (O_DIRECT) of 1 file(s)")
                && r.out().contains("per read (measured)"), r.out());
        Run noBudget = run("generate", "--model", TestModels.dir("tiny-mixtral-kjv").toString(), "--prompt", "x", "--offload", "disk");
        assertEquals(2, noBudget.exit());
        assertTrue(noBudget.err().contains("--offload disk needs --expert-budget"), noBudget.err());
        Run tape = run("generate", "--model", TestModels.dir("tiny-mixtral-kjv").toString(), "--prompt", "x", "--offload", "tape",
                "--expert-budget", "25%");
        assertEquals(2, tape.exit());
        assertTrue(tape.err().contains("--offload is tape but must be link or disk"), tape.err());
        Run sim = run("cache-sim", "--trace", smallTrace(1).toString(), "--offload", "disk");
        assertEquals(2, sim.exit());
        assertTrue(sim.err().contains("--link BW,LAT"), sim.err());
        Run measured = run("cache-sim", "--trace", smallTrace(1).toString(), "--model", TestModels.dir("tiny-mixtral-kjv").toString(),
                "--link", "measured", "--policy", "lru,oracle");
        assertEquals(0, measured.exit(), measured.err());
        assertTrue(measured.out().contains("[measured disk]") && measured.out().contains("| oracle |"), measured.out());
        Run noModel = run("cache-sim", "--trace", smallTrace(1).toString(), "--link", "measured");
        assertEquals(2, noModel.exit());
        assertTrue(noModel.err().contains("--link measured measures the disk under --model DIR"), noModel.err());
    }

    /** --routing-replay: a trained model's routing on another checkpoint; a trace that does not fit is a usage error. */
    @Test
    void generateReplaysATracesRoutingAndRefusesOneThatDoesNotFit() throws IOException {
        Path trace = smallTrace(1);
        Run r = run("generate", "--model", TestModels.dir("tiny-mixtral-kjv").toString(), "--prompt", "In the beginning",
                "--max-tokens", "8", "--greedy", "--expert-budget", "25%", "--routing-replay", trace.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("decode: 7 tokens") && r.out().contains("hit rate"), r.out());
        Run bad = run("generate", "--model", TestModels.dir("tiny-olmoe-random").toString(), "--prompt", "x",
                "--routing-replay", trace.toString());
        assertEquals(2, bad.exit());
        assertTrue(bad.err().contains("--routing-replay: " + trace + " routes top-2 but the model routes top-4"), bad.err());
    }

    @Test
    void synthWritesARealShapedCheckpointThatServesAndRefusesWhatItCannotWrite() throws IOException {
        Path out = tmp.resolve("synth");
        Run r = run("synth", "--config", TestModels.dir("tiny-olmoe-random").resolve("config.json").toString(), "--out", out.toString(),
                "--layers", "2", "--shard-size", "200kB", "--tokenizer-from", TestModels.dir("tiny-mixtral-kjv").toString());
        assertEquals(0, r.exit(), r.err());
        JsonNode cfg = new ObjectMapper().readTree(out.resolve("config.json").toFile());
        assertEquals(2, cfg.get("num_hidden_layers").asInt());
        assertEquals("bfloat16", cfg.get("torch_dtype").asText());
        assertTrue(Files.exists(out.resolve("model.safetensors.index.json")) && Files.exists(out.resolve("tokenizer.json")));
        Run g = run("generate", "--model", out.toString(), "--prompt", "abc", "--max-tokens", "4", "--greedy",
                "--offload", "disk", "--expert-budget", "50%");
        assertEquals(0, g.exit(), g.err());
        assertTrue(g.out().contains("decode: 3 tokens") && g.out().contains("disk, direct I/O"), g.out());
        Run again = run("synth", "--config", TestModels.dir("tiny-olmoe-random").resolve("config.json").toString(), "--out", out.toString());
        assertEquals(2, again.exit());
        assertTrue(again.err().contains("is not empty; choose a new directory"), again.err());
        Run dtype = run("synth", "--config", TestModels.dir("tiny-olmoe-random").resolve("config.json").toString(),
                "--out", tmp.resolve("x").toString(), "--dtype", "int3");
        assertEquals(2, dtype.exit());
        assertTrue(dtype.err().contains("--dtype is int3 but must be bf16, f16 or f32"), dtype.err());
        Run layers = run("synth", "--config", TestModels.dir("tiny-olmoe-random").resolve("config.json").toString(),
                "--out", tmp.resolve("y").toString(), "--layers", "99");
        assertEquals(2, layers.exit());
        assertTrue(layers.err().contains("--layers is 99 but must be 1.."), layers.err());
    }

    /**
     * DeepSeek-V3's routing shape (256 routed experts, top-8 from the best 4 of 8 groups, a shared expert, 3 leading
     * dense layers) at a tiny width, through every tool: synth, decode from the disk tier, trace, cache-sim, plan with
     * an SGLang export that numbers decoder layers (dense ones included), and the cluster simulation.
     */
    @Test
    void aDeepSeekV3RoutingShapeGoesThroughEveryTool() throws IOException {
        com.fasterxml.jackson.databind.node.ObjectNode cfg = (com.fasterxml.jackson.databind.node.ObjectNode) new ObjectMapper()
                .readTree(TestModels.dir("tiny-deepseekv3-random").resolve("config.json").toFile());
        cfg.put("n_routed_experts", 256).put("num_experts_per_tok", 8).put("n_group", 8).put("topk_group", 4)
                .put("num_hidden_layers", 6).put("first_k_dense_replace", 3).put("hidden_size", 64).put("moe_intermediate_size", 16);
        Path cfgFile = tmp.resolve("v3.config.json"), model = tmp.resolve("v3"), text = tmp.resolve("text.txt");
        Files.writeString(cfgFile, cfg.toString());
        Run synth = run("synth", "--config", cfgFile.toString(), "--out", model.toString(), "--tokenizer-from",
                TestModels.dir("tiny-mixtral-kjv").toString());
        assertEquals(0, synth.exit(), synth.err());
        Run g = run("generate", "--model", model.toString(), "--prompt", "In the beginning", "--max-tokens", "6", "--greedy",
                "--offload", "disk", "--expert-budget", "10%");
        assertEquals(0, g.exit(), g.err());
        assertTrue(g.out().contains("of 768 experts resident") && g.out().contains("decode: 5 tokens"), g.out());
        Files.writeString(text, "In the beginning God created the heaven and the earth. ".repeat(40));
        Path trace = tmp.resolve("v3.trace.jsonl");
        Run t = run("trace", "--model", model.toString(), "--input", text.toString(), "--chunk", "128", "--out", trace.toString());
        assertEquals(0, t.exit(), t.err());
        JsonNode header = new ObjectMapper().readTree(Files.readAllLines(trace).get(0));
        assertEquals(3, header.get("layers").asInt(), "MoE layers only");
        assertEquals(256, header.get("experts").asInt());
        assertEquals(8, header.get("top_k").asInt());
        Run sim = run("cache-sim", "--trace", trace.toString(), "--model-config", cfgFile.toString(), "--expert-budget", "10%",
                "--policy", "lru,predictive", "--predictor", "affinity");
        assertEquals(0, sim.exit(), sim.err());
        assertTrue(sim.out().contains("| lru |") && sim.out().contains("| predictive |"), sim.out());
        Path map = tmp.resolve("v3.sglang.json"), plan = tmp.resolve("v3.plan.json");
        Run p = run("plan", "--trace", trace.toString(), "--topology", "1x8", "--replicas", "8", "--model-config", cfgFile.toString(),
                "--time-limit", "3s", "--out", plan.toString(), "--export", "sglang:" + map);
        assertEquals(0, p.exit(), p.err());
        assertEquals(List.of(), org.moeserve.placement.export.EngineExports.checkSglang(Files.readString(map), 6, 256, 8, 8),
                "rows for all 6 decoder layers, 264 slots each");
        Run s = run("simulate", "--trace", trace.toString(), "--plan", "round-robin", "--plan", plan.toString(), "--topology", "1x8");
        assertEquals(0, s.exit(), s.err());
        assertTrue(s.out().contains("| v3.plan.json |"), s.out());
    }

    @Test
    void planComparesSolversWritesThePlanAndExportsTheExpertMap() throws IOException {
        Path trace = smallTrace(2), plan = tmp.resolve("plan.json"), map = tmp.resolve("sglang.json"), trt = tmp.resolve("trt.yaml");
        Run r = run("plan", "--trace", trace.toString(), "--topology", "2x2", "--replicas", "4",
                "--time-limit", "3s", "--out", plan.toString(), "--export", "sglang:" + map, "--export", "trtllm:" + trt,
                "--svg", tmp.resolve("hm").toString());
        assertEquals(0, r.exit(), r.err());
        for (String solver : List.of("| contiguous |", "| round-robin |", "| random |", "| eplb |", "| affinity (")) {
            assertTrue(r.out().contains(solver), solver + " missing:\n" + r.out());
        }
        assertTrue(r.out().contains("| top-1 pairs crossing devices |"), "ExFlow's figure beside the all-pairs one:\n" + r.out());
        if (r.out().contains("| affinity (CP-SAT) |")) assertTrue(r.out().contains("FEASIBLE") || r.out().contains("OPTIMAL"));
        JsonNode p = new ObjectMapper().readTree(plan.toFile());
        assertEquals("moe-plan/1", p.get("format").asText());
        assertEquals(6, p.get("physical_to_logical_map").size());
        assertEquals(20, p.get("physical_to_logical_map").get(0).size(), "16 experts + 4 replicas");
        JsonNode m = new ObjectMapper().readTree(map.toFile());
        assertEquals(1, m.size(), "only physical_to_logical_map: what SGLang's init_by_mapping accepts");
        assertEquals(List.of(), org.moeserve.placement.export.EngineExports.checkSglang(Files.readString(map), 6, 16, 4, 4));
        java.util.Set<Integer> seen = new java.util.HashSet<>();
        for (JsonNode e : m.get("physical_to_logical_map").get(3)) seen.add(e.asInt());
        assertEquals(16, seen.size(), "every logical expert has a replica");
        assertTrue(r.out().contains("sglang launch flags: --ep-size 4 --ep-num-redundant-experts 4 --init-expert-location " + map), r.out());
        assertTrue(Files.readString(trt).contains("num_slots: 20"));
        Run badExport = run("plan", "--trace", trace.toString(), "--topology", "2x2", "--export", "vllm:x.json");
        assertEquals(2, badExport.exit(), badExport.err());
        assertTrue(badExport.err().contains("--export is vllm:x.json"), badExport.err());
        for (String pic : List.of("hm-load.svg", "hm-affinity.svg")) {
            String svg = Files.readString(tmp.resolve(pic));
            assertTrue(svg.startsWith("<svg") && svg.contains("<rect"), pic);
        }
        Run uneven = run("plan", "--trace", trace.toString(), "--topology", "1x3");
        assertEquals(1, uneven.exit());
        assertTrue(uneven.err().contains("do not fill 3 devices evenly"), uneven.err());
        Run both = run("plan", "--trace", trace.toString(), "--stats", trace.toString(), "--topology", "1x4");
        assertEquals(2, both.exit(), "--trace and --stats are exclusive");
    }

    @Test
    void simulateReplaysATraceForEachPlanAndSchemeAndRefusesBadInput() throws IOException {
        Path trace = smallTrace(2), plan = tmp.resolve("sim-plan.json"), json = tmp.resolve("sim.json"), svg = tmp.resolve("sim.svg");
        assertEquals(0, run("plan", "--trace", trace.toString(), "--topology", "2x2", "--time-limit", "2s",
                "--out", plan.toString()).exit());
        Run r = run("simulate", "--trace", trace.toString(), "--plan", "round-robin", "--plan", plan.toString(), "--topology", "2x2",
                "--json", json.toString(), "--svg", svg.toString());
        assertEquals(0, r.exit(), r.err());
        for (String row : List.of("| round-robin | two all-to-alls |", "| sim-plan.json | context-coherent (ExFlow) |")) {
            assertTrue(r.out().contains(row), row + " missing:\n" + r.out());
        }
        JsonNode j = new ObjectMapper().readTree(json.toFile());
        assertEquals("moe-simulation/1", j.get("format").asText());
        assertEquals(4, j.get("runs").size(), "2 plans x 2 schemes");
        for (JsonNode run : j.get("runs")) {
            long perLayer = 0;
            for (JsonNode b : run.get("layer_bytes")) perLayer += b.asLong();
            long ret = run.get("return_bytes").asLong();
            assertEquals(run.get("bytes").asLong(), perLayer + ret, "per-layer bytes and the trip home add up to the total");
            assertEquals(4, run.get("utilisation").size());
        }
        assertTrue(Files.readString(svg).startsWith("<svg"));
        // an expert cache of 2 experts per device (of 4 per layer x 6 layers): misses cost time, never bytes between devices
        Path cached = tmp.resolve("cached.json");
        Run c = run("simulate", "--trace", trace.toString(), "--plan", plan.toString(), "--topology", "2x2", "--scheme", "two",
                "--expert-budget", "2", "--expert-bytes", "3000000", "--json", cached.toString());
        assertEquals(0, c.exit(), c.err());
        JsonNode withCache = new ObjectMapper().readTree(cached.toFile()).get("runs").get(0), without = j.get("runs").get(2);
        assertTrue(withCache.get("cache_misses").asLong() > 0 && withCache.get("cache_hits").asLong() > 0, withCache.toString());
        assertEquals(without.get("bytes").asLong(), withCache.get("bytes").asLong());
        assertTrue(withCache.get("simulated_nanos").asLong() > without.get("simulated_nanos").asLong(), "misses take time");
        Run topo = run("simulate", "--trace", trace.toString(), "--plan", plan.toString(), "--topology", "1x2");
        assertEquals(1, topo.exit());
        assertTrue(topo.err().contains("plan for this topology"), topo.err());
        Run shape = run("simulate", "--trace", trace.toString(), "--plan", "eplb", "--topology", "four");
        assertEquals(2, shape.exit(), "a bad value is a usage error");
        assertTrue(shape.err().contains("NODESxDEVICES"), shape.err());
        Run missing = run("simulate", "--trace", trace.toString(), "--plan", "nosuch.json", "--topology", "2x2");
        assertEquals(1, missing.exit());
        assertTrue(missing.err().contains("not a baseline"), missing.err());
    }

    @Test
    void statsWritesMoeStatsThatPlanAndTheReaderTake() throws IOException {
        Path trace = smallTrace(1), stats = tmp.resolve("s.json");
        Run r = run("stats", "--trace", trace.toString(), "--out", stats.toString());
        assertEquals(0, r.exit(), r.err());
        org.moeserve.routing.RoutingStats s = org.moeserve.routing.RoutingStats.read(stats);
        assertEquals(6, s.layers());
        assertEquals(16, s.experts());
        long sum = 0;
        for (long v : s.load().get(3)) sum += v;
        assertEquals(s.tokens() * 2, sum, "top-2: two selections per token and layer");
        assertEquals(5, s.transitionsTop1().size(), "every consecutive pair");
        long pairs = 0;
        for (long[] row : s.transitionsTop1().get("2->3")) for (long v : row) pairs += v;
        assertEquals(s.tokens(), pairs, "one top-1 pair per token");
        Run plan = run("plan", "--stats", stats.toString(), "--topology", "1x4", "--time-limit", "2s");
        assertEquals(0, plan.exit(), plan.err());
        assertTrue(plan.out().contains("| affinity ("), plan.out());
    }

    /**
     * A plan fitted on half of the demo model's held-out trace and scored on the other half: the affinity plan's top-1
     * pairs cross devices far less often than round-robin's on text it never saw, at a held-out balance near EPLB's.
     */
    @Test
    void anAffinityPlanHoldsOutOnTextItWasNotFittedOn() throws IOException {
        TraceReader.Trace all = TraceReader.read(sharedFile("traces/tiny-mixtral-kjv-heldout.trace.jsonl"));
        Path fit = tmp.resolve("fit.trace.jsonl"), held = tmp.resolve("held.trace.jsonl");
        try (var a = new org.moeserve.routing.TraceWriter(fit, all.header()); var b = new org.moeserve.routing.TraceWriter(held, all.header())) {
            for (int i = 0; i < all.records().size(); i++) (i % 2 == 0 ? a : b).write(all.records().get(i));
        }
        Run r = run("plan", "--trace", fit.toString(), "--topology", "1x4", "--time-limit", "4s", "--eval", held.toString());
        assertEquals(0, r.exit(), r.err());
        String heldOut = r.out().substring(r.out().indexOf("### held out"));
        double rr = column(heldOut, "| round-robin |", 2), aff = column(heldOut, "| affinity (", 2);
        double eplbLoad = column(heldOut, "| eplb |", 6), affLoad = column(heldOut, "| affinity (", 6);
        assertTrue(aff <= 0.6 * rr, "held-out top-1 crossing: affinity " + aff + "% vs round-robin " + rr + "%\n" + r.out());
        assertTrue(affLoad <= eplbLoad * 1.10, "held-out worst load: affinity " + affLoad + " vs EPLB " + eplbLoad + "\n" + r.out());
        Run bad = run("plan", "--trace", fit.toString(), "--topology", "1x4", "--objective", "nearest");
        assertEquals(2, bad.exit());
        assertTrue(bad.err().contains("--objective is nearest"), bad.err());
    }

    /** The i-th | cell of the table row starting with {@code row} (0 = the name), percent signs dropped. */
    private static double column(String table, String row, int i) {
        String line = table.lines().filter(l -> l.startsWith(row)).findFirst().orElseThrow(() -> new AssertionError(row + " missing:\n" + table));
        return Double.parseDouble(line.split("\\|")[i + 1].trim().replace("%", ""));
    }

    /** SGLang's recorder dumps (torch.save files written by make_fixtures.py) through stats, plan and the exports. */
    @Test
    void sglangRecorderDumpsArePlannedAndExportedBackToSglang() throws IOException {
        Path dumps = Path.of("../router-predictor/src/test/resources/torch");
        Path perToken = dumps.resolve("sglang-per_token.pt"), stat = dumps.resolve("sglang-stat.pt");
        Path stats = tmp.resolve("from-dump.json"), map = tmp.resolve("sglang-map.json");
        Run st = run("stats", "--trace", perToken.toString(), "--out", stats.toString());
        assertEquals(0, st.exit(), st.err());
        org.moeserve.routing.RoutingStats s = org.moeserve.routing.RoutingStats.read(stats);
        assertEquals(3, s.layers(), "dense decoder layer 0 dropped");
        assertEquals(8, s.experts(), "physical slots mapped back to 8 logical experts");
        Run p = run("plan", "--trace", perToken.toString(), "--topology", "1x2", "--replicas", "2", "--time-limit", "2s",
                "--export", "sglang:" + map);
        assertEquals(0, p.exit(), p.err());
        assertTrue(p.out().contains("3 MoE layers of 4 decoder layers (dense layers [0] dropped)"), p.out());
        JsonNode m = new ObjectMapper().readTree(map.toFile()).get("physical_to_logical_map");
        assertEquals(4, m.size(), "one row per decoder layer, as SGLang indexes them, without --model-config");
        assertEquals(List.of(), org.moeserve.placement.export.EngineExports.checkSglang(Files.readString(map), 4, 8, 2, 2));
        Run load = run("plan", "--stats", stat.toString(), "--topology", "1x2", "--replicas", "2", "--eval", stat.toString());
        assertEquals(0, load.exit(), load.err());
        assertTrue(load.out().contains("| balanced packing |") && load.out().contains("| eplb |"), load.out());
        Path count = tmp.resolve("count.json"), countMap = tmp.resolve("count-map.json");
        Files.writeString(count, "{\"logical_count\": [[0,0,0,0],[5,1,1,9],[0,0,0,0],[2,2,8,4]]}"); // SGLang's JSON form
        Run fromCount = run("plan", "--stats", count.toString(), "--topology", "1x2", "--replicas", "2", "--export", "sglang:" + countMap);
        assertEquals(0, fromCount.exit(), fromCount.err());
        assertTrue(fromCount.out().contains("dense layers [0, 2] dropped"), fromCount.out());
        assertEquals(List.of(), org.moeserve.placement.export.EngineExports.checkSglang(Files.readString(countMap), 4, 4, 2, 2),
                "the export has SGLang's 4 decoder rows again");
        Path tinyMap = tmp.resolve("tiny-map.json");
        Run withModel = run("plan", "--trace", smallTrace(1).toString(), "--topology", "1x4", "--time-limit", "1s",
                "--model", TestModels.dir("tiny-mixtral-kjv").toString(), "--export", "sglang:" + tinyMap);
        assertEquals(0, withModel.exit(), withModel.err());
        assertEquals(List.of(), org.moeserve.placement.export.EngineExports.checkSglang(Files.readString(tinyMap), 6, 16, 0, 4),
                "the decoder layout read from the checkpoint folder's config.json");
        Run wrong = run("plan", "--trace", stat.toString(), "--topology", "1x2");
        assertEquals(1, wrong.exit());
        assertTrue(wrong.err().contains("load counts only") && !wrong.err().contains("\tat "), wrong.err());
    }

    @Test
    void loadOnlyStatisticsArePlannedForBalanceAndScoredHeldOut() throws IOException {
        Path load = tmp.resolve("load.json"), other = tmp.resolve("load2.json");
        ObjectMapper json = new ObjectMapper();
        for (Path f : List.of(load, other)) {
            com.fasterxml.jackson.databind.node.ObjectNode n = json.createObjectNode().put("format", "moe-stats/1").put("model", "m")
                    .put("layers", 2).put("experts", 8).put("top_k", 2).put("domain", f.getFileName().toString()).put("tokens", 100);
            com.fasterxml.jackson.databind.node.ObjectNode l = n.putObject("load");
            for (int layer = 0; layer < 2; layer++) {
                com.fasterxml.jackson.databind.node.ArrayNode a = l.putArray(String.valueOf(layer));
                for (int e = 0; e < 8; e++) a.add(f == load ? 100L << (e % 4) : 100 + e);
            }
            json.writeValue(f.toFile(), n);
        }
        Run r = run("plan", "--stats", load.toString(), "--topology", "1x2", "--replicas", "2", "--eval", other.toString(),
                "--out", tmp.resolve("p.json").toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("| balanced packing |") && r.out().contains("| eplb |"), r.out());
        assertTrue(r.out().contains("### held out"), r.out());
        assertTrue(Files.exists(tmp.resolve("p.json")));
        Run sim = run("simulate", "--stats", load.toString(), "--plan", "eplb", "--topology", "1x2");
        assertEquals(1, sim.exit());
        assertTrue(sim.err().contains("no transitions_top1"), sim.err());
    }
}
