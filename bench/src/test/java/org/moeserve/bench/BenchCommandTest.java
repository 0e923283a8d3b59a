package org.moeserve.bench;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** ./moe bench is a picocli command like the others: --help everywhere, a bad value exits 2 naming it. */
class BenchCommandTest {
    static Object[] run(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        CommandLine cl = Bench.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int exit = cl.execute(args);
        return new Object[]{exit, out.toString(), err.toString()};
    }

    @Test
    void everySubcommandHasHelp() {
        for (String sub : Bench.commandLine().getSubcommands().keySet()) {
            if (sub.equals("jmh")) continue; // every argument goes to JMH
            Object[] r = run(sub, "--help");
            assertEquals(0, r[0], sub);
            assertTrue(((String) r[1]).startsWith("Usage: moe bench " + sub), sub + ": " + r[1]);
        }
    }

    @Test
    void badValuesAreUsageErrors() {
        String[][] cases = {{"decode", "x"}, {"decode", "0"}, {"offload", "3", "lots"}, {"load", "http://127.0.0.1:1", "1,x"},
                {"simulate", "-5"}, {"placement", "0"}, {"suite", "--only", "nosuch"}, {"disk", "/nonexistent.bin"},
                {"disk", "pom.xml", "--sizes", "lots"}, {"disk", "pom.xml", "--depths", "0"}};
        for (String[] c : cases) {
            Object[] r = run(c);
            assertEquals(2, r[0], String.join(" ", c) + ": " + r[2]);
            assertTrue(((String) r[2]).contains("Usage:"), String.join(" ", c) + ": " + r[2]);
            assertFalse(((String) r[2]).contains("Exception"), String.join(" ", c) + ": " + r[2]);
        }
        Object[] unknown = run("nosuch");
        assertEquals(2, unknown[0]);
        assertTrue(((String) unknown[2]).contains("'nosuch'"), (String) unknown[2]);
    }

    /** The production-shape replay runs any policy cache-sim knows, the foresight bounds included, a row each. */
    @Test
    void replayRunsEveryNamedPolicyAtProductionShape() {
        java.io.PrintStream old = System.out;
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        try {
            System.setOut(new java.io.PrintStream(out, true));
            Object[] r = run("replay", "300", "lru,belady:1,oracle:0,belady");
            assertEquals(0, r[0], (String) r[2]);
        } finally {
            System.setOut(old);
        }
        String text = out.toString();
        for (String p : new String[]{"lru", "belady:1", "oracle:0", "belady"}) {
            assertTrue(text.contains("| " + p + " | " + 300 * 26 * 6 + " |"), p + ": " + text);
        }
        Object[] bad = run("replay", "300", "lru,belady:x");
        assertEquals(2, bad[0], (String) bad[2]);
        assertTrue(((String) bad[2]).contains("belady:x"), (String) bad[2]);
    }

    /** The disk benchmark reads a real file directly and prints a row per read size and depth. */
    @Test
    void diskMeasuresDirectReadsOfARealFile() throws Exception {
        // on the checkout's file system (where checkpoints live), not /tmp, which may be a RAM file system
        java.nio.file.Path f = java.nio.file.Files.createDirectories(java.nio.file.Path.of("target")).resolve("disk-bench.bin");
        java.nio.file.Files.write(f, new byte[4 << 20]);
        java.io.PrintStream old = System.out;
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        try {
            System.setOut(new java.io.PrintStream(out, true));
            Object[] r = run("disk", f.toString(), "--sizes", "4KiB,1MiB", "--depths", "1,2", "--seconds", "0.1");
            assertEquals(0, r[0], (String) r[2]);
        } finally {
            System.setOut(old);
            java.nio.file.Files.deleteIfExists(f);
        }
        String table = out.toString();
        assertTrue(table.contains("direct I/O"), table);
        for (String row : new String[]{"| 4 KiB | 1 |", "| 4 KiB | 2 |", "| 1 MiB | 1 |", "| 1 MiB | 2 |"}) assertTrue(table.contains(row), table);
    }
}
