package org.moeserve.runtime.gpu;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.moeserve.runtime.TestModels;
import org.moeserve.runtime.cli.Moe;
import org.moeserve.runtime.model.MoeModel;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The GPU tier as every machine sees it. Where CUDA does not answer (CI), {@code --device gpu} must fall back to the
 * CPU with one INFO line naming why, and give the CPU's text; where it answers, the GPU's greedy text must be the
 * CPU's. The GPU's own figures come from bench/scripts/gpu-check.sh on a GPU machine (bench/analysis.md).
 */
class GpuTierTest {
    record Run(int exit, String out, String err) {}

    static Run run(String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        StringWriter usage = new StringWriter();
        int exit;
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            CommandLine cl = Moe.commandLine(); // after System.err is replaced: subcommands write to the one they saw
            cl.setErr(new PrintWriter(usage, true));
            exit = cl.execute(args);
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
        return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8) + usage);
    }

    @Test
    void openingCudaNeverThrowsAndSaysWhyItCannot() {
        Cuda.Probe p = Cuda.open();
        if (p.cuda() == null) {
            assertNotNull(p.reason());
            assertTrue(p.reason().contains("not found") || p.reason().contains("driver") || p.reason().contains("CUDA"), p.reason());
            assertTrue(!p.reason().contains("\n"), "one line: " + p.reason());
        } else {
            assertNull(p.reason());
            assertTrue(p.cuda().describe().contains("compute"), p.cuda().describe());
        }
    }

    @Test
    void gpuDeviceGivesTheCpuTextOrFallsBackWithOneInfoLine() throws Exception {
        String dir = TestModels.dir("tiny-mixtral-kjv").toString();
        JsonNode g = new ObjectMapper().readTree(TestModels.dir("tiny-mixtral-kjv").resolve("golden.json").toFile())
                .get("prompts").get(1);
        String expected = g.get("text").asText() + g.get("greedy_text").asText();
        for (String[] extra : new String[][]{{}, {"--expert-budget", "25%", "--policy", "lru"}}) {
            String[] args = new String[]{"generate", "--model", dir, "--prompt", g.get("text").asText(), "--max-tokens", "48",
                    "--greedy", "--device", "gpu"};
            String[] all = java.util.Arrays.copyOf(args, args.length + extra.length);
            System.arraycopy(extra, 0, all, args.length, extra.length);
            Run r = run(all);
            assertEquals(0, r.exit(), r.err());
            assertTrue(r.out().startsWith(expected), r.out());
            if (Cuda.open().cuda() == null) {
                long info = r.err().lines().filter(l -> l.startsWith("INFO moe: --device gpu: ")).count();
                assertEquals(1, info, r.err());
                assertTrue(r.err().contains("routed experts run on the CPU"), r.err());
                assertTrue(!r.out().contains("gpu: routed experts on"), r.out());
            } else {
                assertTrue(r.out().contains("gpu: routed experts on") && r.out().contains("PCIe fills"), r.out());
            }
        }
    }

    @Test
    void gpuLogitsAreTheCpusToRounding() throws Exception {
        String dir = TestModels.dir("tiny-mixtral-kjv").toString();
        java.nio.file.Path text = tmp.resolve("text.txt"); // the golden prompts and continuations, teacher-forced
        JsonNode g = new ObjectMapper().readTree(TestModels.dir("tiny-mixtral-kjv").resolve("golden.json").toFile()).get("prompts");
        StringBuilder sb = new StringBuilder();
        for (JsonNode p : g) sb.append(p.get("text").asText()).append(p.get("greedy_text").asText()).append('\n');
        java.nio.file.Files.writeString(text, sb.toString());
        Run r = run("eval", "--model", dir, "--text", text.toString(), "--window", "64", "--max-windows", "3",
                "--reference", dir, "--device", "gpu", "--json");
        assertEquals(0, r.exit(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out().lines().filter(l -> l.startsWith("{")).reduce((a, b) -> b).orElseThrow());
        if (Cuda.open().cuda() == null) { // the fallback is the CPU itself
            assertEquals(0.0, j.get("max_rel_logit_error").asDouble(), r.out());
        } else { // fp32 on both, summed in other orders
            assertTrue(j.get("max_rel_logit_error").asDouble() < 1e-3, r.out());
        }
        assertTrue(j.get("argmax_agreement").asDouble() > 0.99, r.out());
    }

    @Test
    void badDeviceChoicesAreUsageErrors() {
        String dir = TestModels.dir("tiny-mixtral-kjv").toString();
        Run r = run("generate", "--model", dir, "--prompt", "x", "--device", "tpu");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("--device is tpu but must be cpu or gpu"), "out: " + r.out() + " err: " + r.err());
        r = run("generate", "--model", dir, "--prompt", "x", "--device", "gpu", "--offload", "disk", "--expert-budget", "25%");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("--device gpu") && r.err().contains("--offload disk"), r.err());
        r = run("serve", "--model", dir, "--device", "gpu", "--cluster", "c", "--port", "0");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("--cluster and --device gpu cannot be combined yet"), r.err());
    }

    @org.junit.jupiter.api.io.TempDir
    java.nio.file.Path tmp;

    @Test
    void onlyBf16AndF32ExpertsGoToTheGpu() {
        try (MoeModel m = MoeModel.load(TestModels.dir("tiny-mixtral-kjv"))) {
            assertNull(GpuTier.unsupported(m));
        }
        try (MoeModel m = MoeModel.load(TestModels.dir("tiny-qwen3moe-random"))) { // F32
            assertNull(GpuTier.unsupported(m));
        }
        java.nio.file.Path q8 = tmp.resolve("q8.gguf");
        Run q = run("quantize", "--model", TestModels.dir("tiny-mixtral-kjv").toString(), "--type", "q8_0", "--out", q8.toString());
        assertEquals(0, q.exit(), q.err());
        try (MoeModel m = MoeModel.load(q8)) {
            String why = GpuTier.unsupported(m);
            assertTrue(why != null && why.contains("Q8_0") && why.contains("BF16 and F32"), why);
        }
    }

    @Test
    void gemvKernelHandlesTheRowsItClaims() {
        assertEquals(8, GpuKernels.GEMV_ROWS);
        assertTrue(GpuKernels.SOURCE.contains("#define MAXR " + GpuKernels.GEMV_ROWS), "the kernel's row limit is the Java side's");
        for (String k : GpuKernels.NAMES) assertTrue(GpuKernels.SOURCE.contains("__global__ void " + k + "("), k);
    }
}
