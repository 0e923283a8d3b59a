package org.moeserve.runtime.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** One flag vocabulary across every command; every --help renders cleanly; a bad value is a usage error (exit 2). */
class FlagVocabularyTest {
    /** Flags retired for the shared names (README: "Renamed flags"). */
    static final Set<String> RETIRED = Set.of("--budget", "--cache-experts", "--expert-size", "--weights", "--k", "--link-latency",
            "--nodes", "--devices-per-node", "--plot", "--heatmap", "--fit");

    static List<CommandLine> all(CommandLine c) {
        List<CommandLine> out = new ArrayList<>(List.of(c));
        for (CommandLine sub : c.getSubcommands().values()) out.addAll(all(sub));
        return out;
    }

    /** Runs with System.out and System.err captured (picocli's own warnings go to System.err). */
    static String[] capture(String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        int exit;
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            CommandLine cl = Moe.commandLine();
            cl.setErr(new java.io.PrintWriter(System.err, true));
            exit = cl.execute(args);
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
        return new String[]{String.valueOf(exit), out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8)};
    }

    @Test
    void everyHelpRendersWithoutWarningsAndNoRetiredFlagIsLeft() {
        Set<String> names = new TreeSet<>();
        for (CommandLine c : all(Moe.commandLine())) {
            List<String> path = new ArrayList<>();
            for (CommandLine x = c; x.getParent() != null; x = x.getParent()) path.addFirst(x.getCommandName());
            path.add("--help");
            String[] r = capture(path.toArray(String[]::new));
            assertEquals("0", r[0], path + ": " + r[2]);
            assertFalse((r[1] + r[2]).contains("WARN") || (r[1] + r[2]).contains("Could not format"), path + ":\n" + r[1] + r[2]);
            assertTrue(r[1].contains("Usage:"), path + ": " + r[1]);
            for (CommandLine.Model.OptionSpec o : c.getCommandSpec().options()) names.addAll(List.of(o.names()));
        }
        for (String retired : RETIRED) assertFalse(names.contains(retired), retired + " is still a flag; use its shared name");
        for (String shared : List.of("--expert-budget", "--expert-bytes", "--predictor-weights", "--fit-trace", "--prefetch-k",
                "--topology", "--json", "--svg", "--link")) {
            assertTrue(names.contains(shared), shared);
        }
    }

    @Test
    void badValuesExit2WithOneLineNamingTheFlagBeforeAnyOutput() {
        String trace = "../shared/traces/tiny-mixtral-kjv-heldout.trace.jsonl";
        String[][] cases = {
                {"--topology", "simulate", "--trace", trace, "--plan", "eplb", "--topology", "x4"},
                {"--topology", "simulate", "--trace", trace, "--plan", "eplb", "--topology", "1.5x4"},
                {"--topology", "simulate", "--trace", trace, "--plan", "eplb", "--topology", "2147483647x2"},
                {"--topology", "plan", "--trace", trace, "--topology", "1x99999999"},
                {"--time-limit", "plan", "--trace", trace, "--topology", "1x4", "--time-limit", "soon"},
                {"--link", "cache-sim", "--trace", trace, "--link", "fast"},
                {"--link", "cache-sim", "--trace", trace, "--link", "1GB/s,2us,3"},
                {"--layer-time", "cache-sim", "--trace", trace, "--layer-time", "-5us"},
                {"--expert-budget", "cache-sim", "--trace", trace, "--expert-budget", "0%"},
                {"--expert-bytes", "cache-sim", "--trace", trace, "--expert-bytes", "lots"},
                {"--horizon", "cache-sim", "--trace", trace, "--horizon", "0"},
                {"--max-tokens", "generate", "--prompt", "x", "--max-tokens", "many"},
                {"--intra-link", "simulate", "--trace", trace, "--plan", "eplb", "--topology", "1x4", "--intra-link", "x"},
        };
        for (String[] c : cases) {
            String[] args = java.util.Arrays.copyOfRange(c, 1, c.length);
            String[] r = capture(args);
            assertEquals("2", r[0], String.join(" ", args) + ": " + r[2]);
            assertEquals("", r[1], String.join(" ", args) + ": nothing on stdout");
            String first = r[2].lines().findFirst().orElse("");
            assertTrue(first.contains(c[0]), String.join(" ", args) + ": the first line names " + c[0] + ": " + r[2]);
            assertTrue(r[2].contains("Usage:"), String.join(" ", args) + ": the usage follows");
            assertFalse(r[2].contains("Exception") || r[2].contains("\tat "), String.join(" ", args) + ": no stack trace: " + r[2]);
        }
    }

    @Test
    void serveNamesABusyPortAndABadHostInOneLine() throws Exception {
        try (java.net.ServerSocket busy = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            String port = String.valueOf(busy.getLocalPort());
            String[] r = capture("serve", "--model", org.moeserve.runtime.TestModels.dir("tiny-mixtral-kjv").toString(), "--port", port);
            assertEquals("2", r[0], r[1] + r[2]);
            String first = r[2].lines().findFirst().orElse("");
            assertTrue(first.contains("port " + port) && first.contains("in use"), r[2]);
            assertFalse(r[2].contains("\tat ") || r[2].contains("BindException"), "no stack trace: " + r[2]);
        }
        String[] r = capture("serve", "--model", org.moeserve.runtime.TestModels.dir("tiny-mixtral-kjv").toString(), "--host", "999.1.1.1", "--port", "0");
        assertEquals("2", r[0], r[1] + r[2]);
        assertTrue(r[2].lines().findFirst().orElse("").contains("999.1.1.1"), r[2]);
        assertFalse(r[2].contains("\tat "), "no stack trace: " + r[2]);
    }

    @Test
    void theKeyComesFromAFileAndTheHeapFromTheModel(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) throws Exception {
        java.nio.file.Path f = tmp.resolve("key");
        java.nio.file.Files.writeString(f, "  s3cret  \nignored\n");
        ServeCommand s = new ServeCommand();
        new CommandLine(s).parseArgs("--api-key-file", f.toString());
        assertEquals("s3cret", s.key(), "the first line, trimmed");
        ServeCommand both = new ServeCommand();
        new CommandLine(both).parseArgs("--api-key-file", f.toString(), "--api-key", "x");
        assertTrue(org.junit.jupiter.api.Assertions.assertThrows(UsageError.class, both::key).getMessage().contains("once"));
        java.nio.file.Files.writeString(f, "\n");
        assertTrue(org.junit.jupiter.api.Assertions.assertThrows(UsageError.class, s::key).getMessage().contains("is empty"));

        ServeCommand heap = new ServeCommand();
        String model = org.moeserve.runtime.TestModels.dir("tiny-mixtral-kjv").toString();
        new CommandLine(heap).parseArgs("--model", model);
        long small = heap.heapMegabytes();
        new CommandLine(heap = new ServeCommand()).parseArgs("--model", model, "--max-running", "4096");
        long big = heap.heapMegabytes();
        assertTrue(small >= 256 && small < 512, "the demo model needs little: " + small + " MiB");
        assertTrue(big > small + 100, "KV for 4096 sequences at the full context counts: " + big + " MiB");
        new CommandLine(heap = new ServeCommand()).parseArgs("--model", model, "--max-running", "4096", "--max-context", "32");
        long capped = heap.heapMegabytes();
        assertTrue(capped < big - 80, "--max-context 32 bounds the KV the heap is sized for: " + capped + " vs " + big + " MiB");
    }
}
