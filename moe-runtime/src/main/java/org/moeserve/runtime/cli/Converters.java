package org.moeserve.runtime.cli;

import org.moeserve.placement.Topology;
import org.moeserve.units.LinkModel;
import org.moeserve.units.Units;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/**
 * picocli converters for the quantities every command shares, so a bad value is a usage error (exit 2, one line
 * naming the flag, then the usage) before any output, not a failure halfway through. The parsing itself is
 * {@link Units}' (one parser for cache, comms and the CLI).
 */
final class Converters {
    private Converters() {}

    /** The parser's own message becomes picocli's "Invalid value for option '--flag': ..." line. */
    private static <T> T guard(java.util.function.Supplier<T> parse) {
        try {
            return parse.get();
        } catch (IllegalArgumentException e) {
            throw new TypeConversionException(e.getMessage());
        }
    }

    /** "16GB/s" or "16GB/s,10us". */
    static final class Link implements ITypeConverter<LinkModel> {
        static final long DEFAULT_LATENCY = 10_000;

        /** "--link measured": the disk under --model, measured when the command runs (compared by identity). */
        static final LinkModel MEASURED = new LinkModel(1, 0);

        @Override
        public LinkModel convert(String s) {
            if (s.strip().equals("measured")) return MEASURED;
            return guard(() -> Units.parseLink(s, DEFAULT_LATENCY));
        }
    }

    /** "80us", "2ms", "30s": nanoseconds. */
    static final class Duration implements ITypeConverter<Long> {
        @Override
        public Long convert(String s) {
            return guard(() -> Units.parseDuration(s));
        }
    }

    /** "147456", "6MB", "2GiB": bytes, > 0. */
    static final class Bytes implements ITypeConverter<Long> {
        @Override
        public Long convert(String s) {
            long b = guard(() -> Units.parseBytes(s));
            if (b < 1) throw new TypeConversionException("\"" + s + "\" must be at least one byte");
            return b;
        }
    }

    /** "2x4": nodes x devices per node (slots are set once the problem is known). */
    record Shape(int nodes, int devicesPerNode) {
        @Override
        public String toString() { return nodes + "x" + devicesPerNode; }
    }

    static final class TopologySpec implements ITypeConverter<Shape> {
        @Override
        public Shape convert(String s) {
            Topology t = guard(() -> Topology.parse(s, 1));
            return new Shape(t.nodes(), t.devicesPerNode());
        }
    }

    /** "25%", "24" (experts) or "6MB" (memory). */
    static final class Budget implements ITypeConverter<ExpertBudget> {
        @Override
        public ExpertBudget convert(String s) {
            return guard(() -> ExpertBudget.parse(s));
        }
    }

    /** A fast-tier budget as written: a share of all experts, a number of experts, or an amount of memory. */
    record ExpertBudget(String text, double percent, long experts, long bytes) {
        static ExpertBudget parse(String s) {
            String b = s.trim();
            try {
                if (b.endsWith("%")) {
                    double pct = Double.parseDouble(b.substring(0, b.length() - 1));
                    if (!(pct > 0 && pct <= 100)) throw new IllegalArgumentException("a share must be in (0, 100]%");
                    return new ExpertBudget(b, pct, 0, 0);
                }
                if (b.matches("[0-9]{1,18}")) {
                    long n = Long.parseLong(b);
                    if (n < 1) throw new IllegalArgumentException("a number of experts must be at least 1");
                    return new ExpertBudget(b, 0, n, 0);
                }
                return new ExpertBudget(b, 0, 0, Units.parseBytes(b));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("expert budget is \"" + s + "\" but must be a share of the experts "
                        + "(25%), a number of experts (24) or an amount of memory (6MB, 2GiB)"
                        + (e.getMessage() != null && e.getMessage().startsWith("a ") ? ": " + e.getMessage() : ""));
            }
        }

        /** Bytes of the fast tier for a model of {@code totalExperts} experts of {@code expertBytes} each. */
        long bytes(long totalExperts, long expertBytes) {
            if (percent > 0) return Math.max(expertBytes, (long) Math.floor(totalExperts * percent / 100.0) * expertBytes);
            if (experts > 0) return experts * expertBytes;
            return bytes;
        }

        @Override
        public String toString() { return text; }
    }
}
