package org.moeserve.routing;

/** A routing-data file that does not follow its format; the message names the file, line, field and value. */
public final class TraceFormatException extends RuntimeException {
    public TraceFormatException(String message) { super(message); }

    public TraceFormatException(String message, Throwable cause) { super(message, cause); }
}
