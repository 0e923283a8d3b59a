package org.moeserve.cache.transfer;

import java.util.Locale;

/**
 * A serial link between the slow and the fast tier (PCIe, NVLink, a network): a transfer of n bytes occupies it
 * for latency + n / bandwidth. Parsed from e.g. "16GB/s" (decimal units, as links are quoted) and "10us".
 *
 * @param bytesPerSecond bandwidth, > 0
 * @param latencyNanos   fixed cost per transfer, >= 0
 */
public record LinkModel(double bytesPerSecond, long latencyNanos) {
    public LinkModel {
        if (!(bytesPerSecond > 0)) throw new IllegalArgumentException("link bandwidth is " + bytesPerSecond + " but must be > 0");
        if (latencyNanos < 0) throw new IllegalArgumentException("link latency is " + latencyNanos + " ns but must be >= 0");
    }

    public long nanosFor(long bytes) { return latencyNanos + (long) Math.ceil(bytes * 1e9 / bytesPerSecond); }

    /** "16GB/s", "900MB/s", "2.5GiB/s". */
    public static double parseBandwidth(String s) {
        String t = s.trim().replace(" ", "");
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?i)([0-9.]+)(k|m|g|t|ki|mi|gi|ti)?b/s").matcher(t);
        if (!m.matches()) {
            throw new IllegalArgumentException("link bandwidth is \"" + s + "\" but must read like 16GB/s, 900MB/s or 2.5GiB/s");
        }
        double v = Double.parseDouble(m.group(1));
        String u = m.group(2) == null ? "" : m.group(2).toLowerCase(Locale.ROOT);
        double mult = switch (u) {
            case "k" -> 1e3; case "m" -> 1e6; case "g" -> 1e9; case "t" -> 1e12;
            case "ki" -> 1024.0; case "mi" -> 1024.0 * 1024; case "gi" -> 1024.0 * 1024 * 1024;
            case "ti" -> 1024.0 * 1024 * 1024 * 1024;
            default -> 1;
        };
        return v * mult;
    }

    /** "10us", "2ms", "500ns", "0". */
    public static long parseDuration(String s) {
        String t = s.trim();
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("([0-9.]+)(ns|us|ms|s)?").matcher(t);
        if (!m.matches()) throw new IllegalArgumentException("duration is \"" + s + "\" but must read like 10us, 2ms or 500ns");
        double v = Double.parseDouble(m.group(1));
        String u = m.group(2) == null ? "ns" : m.group(2);
        return (long) (v * switch (u) { case "us" -> 1e3; case "ms" -> 1e6; case "s" -> 1e9; default -> 1; });
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "%.2f GB/s, %.1f us latency (modelled)", bytesPerSecond / 1e9, latencyNanos / 1e3);
    }
}
