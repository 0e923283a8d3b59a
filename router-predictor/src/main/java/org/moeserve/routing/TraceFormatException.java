package org.moeserve.routing;

/** A routing-data file that does not follow its format; the message names the file, line, field and value. */
public final class TraceFormatException extends RuntimeException {
    public TraceFormatException(String message) { super(oneLine(message)); }

    public TraceFormatException(String message, Throwable cause) { super(oneLine(message), cause); }

    /** One line, whatever a parser's message held. */
    static String oneLine(String m) { return m == null ? null : m.replaceAll("\\s*\\R\\s*", " "); }
}
