package org.moeserve.units;

import org.moeserve.units.Units;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The one parser of quantities on command lines and in configs: bytes ("147456", "6MB", "2.5GiB"), bandwidths
 * ("16GB/s", decimal units as links are quoted; "2.5GiB/s") and durations ("10us", "2ms", "30s", "0"). Every error
 * names the text and what it should look like; callers add which flag it came from.
 */
public final class Units {
    private Units() {}

    private static final Pattern BYTES = Pattern.compile("(?i)([0-9]*\\.?[0-9]+(?:e[0-9]+)?)(k|m|g|t|ki|mi|gi|ti)?(b)?");
    private static final Pattern DURATION = Pattern.compile("([0-9]*\\.?[0-9]+)(ns|us|ms|s)?");

    /** "147456", "6MB", "900kB", "2.5GiB": a number of bytes (decimal units, or binary with an i). */
    public static long parseBytes(String s) {
        String t = s.trim().replace(" ", "");
        Matcher m = BYTES.matcher(t);
        if (!m.matches() || (m.group(2) != null && m.group(3) == null && !m.group(2).toLowerCase(Locale.ROOT).endsWith("i"))) {
            throw new IllegalArgumentException("\"" + s + "\" is not an amount of memory; write it like 147456, 6MB or 2.5GiB");
        }
        double v = Double.parseDouble(m.group(1)) * multiplier(m.group(2));
        if (v >= Long.MAX_VALUE) throw new IllegalArgumentException("\"" + s + "\" is too many bytes");
        return (long) v;
    }

    /** "16GB/s", "900MB/s", "2.5GiB/s": bytes per second, > 0. */
    public static double parseBandwidth(String s) {
        String t = s.trim().replace(" ", "");
        Matcher m = Pattern.compile("(?i)([0-9]*\\.?[0-9]+)(k|m|g|t|ki|mi|gi|ti)?b/s").matcher(t);
        if (!m.matches()) {
            throw new IllegalArgumentException("link bandwidth is \"" + s + "\" but must read like 16GB/s, 900MB/s or 2.5GiB/s");
        }
        double v = Double.parseDouble(m.group(1)) * multiplier(m.group(2));
        if (!(v > 0)) throw new IllegalArgumentException("link bandwidth is \"" + s + "\" but must be more than 0, like 16GB/s");
        return v;
    }

    /** "10us", "2ms", "500ns", "30s", "0" (a bare number is nanoseconds): nanoseconds, >= 0. */
    public static long parseDuration(String s) {
        Matcher m = DURATION.matcher(s.trim());
        if (!m.matches()) throw new IllegalArgumentException("duration is \"" + s + "\" but must read like 10us, 2ms or 500ns");
        double v = Double.parseDouble(m.group(1));
        String u = m.group(2) == null ? "ns" : m.group(2);
        return (long) (v * switch (u) { case "us" -> 1e3; case "ms" -> 1e6; case "s" -> 1e9; default -> 1; });
    }

    /** "BW" or "BW,LATENCY" (e.g. "16GB/s", "450GB/s,3us"): a link; the latency defaults to {@code defaultLatencyNanos}. */
    public static LinkModel parseLink(String s, long defaultLatencyNanos) {
        String[] p = s.split(",", -1);
        if (p.length > 2) {
            throw new IllegalArgumentException("link is \"" + s + "\" but must read like 16GB/s or 16GB/s,10us (bandwidth, latency)");
        }
        return new LinkModel(parseBandwidth(p[0]), p.length == 2 ? parseDuration(p[1]) : defaultLatencyNanos);
    }

    /** A link as the flags write it: "450GB/s,3us". */
    public static String formatLink(LinkModel l) { return trim(l.bytesPerSecond() / 1e9) + "GB/s," + formatDuration(l.latencyNanos()); }

    /** A duration for people: "80us", "1.5ms", "2.00s". */
    public static String formatDuration(long nanos) {
        if (nanos == 0) return "0";
        if (nanos < 1_000) return nanos + "ns";
        if (nanos < 1_000_000) return trim(nanos / 1e3) + "us";
        if (nanos < 1_000_000_000) return trim(nanos / 1e6) + "ms";
        return trim(nanos / 1e9) + "s";
    }

    private static String trim(double v) {
        String s = String.format(Locale.ROOT, "%.2f", v);
        return s.contains(".") ? s.replaceAll("0+$", "").replaceAll("\\.$", "") : s;
    }

    private static double multiplier(String unit) {
        String u = unit == null ? "" : unit.toLowerCase(Locale.ROOT);
        return switch (u) {
            case "k" -> 1e3; case "m" -> 1e6; case "g" -> 1e9; case "t" -> 1e12;
            case "ki" -> 1024.0; case "mi" -> 1024.0 * 1024; case "gi" -> 1024.0 * 1024 * 1024;
            case "ti" -> 1024.0 * 1024 * 1024 * 1024;
            default -> 1;
        };
    }
}
