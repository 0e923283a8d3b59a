package org.moeserve.runtime.cli;

/**
 * A flag whose value picocli accepted but the command cannot (a policy name it does not know, a count out of range):
 * reported like picocli's own usage errors, one line naming the flag, then the usage, exit 2, before any output.
 */
final class UsageError extends IllegalArgumentException {
    UsageError(String message) { super(message); }
}
