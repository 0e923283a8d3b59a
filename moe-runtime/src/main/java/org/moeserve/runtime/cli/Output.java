package org.moeserve.runtime.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Where commands put results: tables and JSON on stdout, progress and "wrote FILE" on stderr. */
final class Output {
    private Output() {}

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /** True for {@code --json -}: JSON goes to stdout in place of the table. */
    static boolean isStdout(Path p) { return p != null && p.toString().equals("-"); }

    /** Where the table goes: stdout, or nowhere when {@code --json -} puts JSON there instead. */
    static java.io.PrintStream table(Path json) {
        return isStdout(json) ? new java.io.PrintStream(java.io.OutputStream.nullOutputStream()) : System.out;
    }

    /** Writes {@code value} as JSON to {@code file} ({@code -}: stdout). */
    static void json(Path file, Object value, String who) throws IOException {
        String s = JSON.writeValueAsString(value);
        if (isStdout(file)) {
            System.out.println(s);
        } else {
            Files.writeString(file, s + "\n");
            System.err.println(who + ": wrote " + file);
        }
    }
}
