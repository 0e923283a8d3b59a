package org.moeserve.runtime.model;

/**
 * A model directory or checkpoint file that cannot be used: missing file, unknown architecture, a tensor
 * missing or of the wrong shape or dtype, a truncated file, a corrupt header. The message names the file,
 * the tensor, what was expected and what was found.
 */
public final class CheckpointException extends RuntimeException {
    public CheckpointException(String message) { super(oneLine(message)); }

    public CheckpointException(String message, Throwable cause) { super(oneLine(message), cause); }

    /** Errors are one line (a parser's multi-line message included), so the CLI prints exactly one. */
    static String oneLine(String m) { return m == null ? null : m.replaceAll("\\s*\\R\\s*", " "); }
}
