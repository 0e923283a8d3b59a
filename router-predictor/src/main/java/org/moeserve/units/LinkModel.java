package org.moeserve.units;

import java.util.Locale;

/**
 * A serial link between the slow and the fast tier (PCIe, NVLink, a network): a transfer of n bytes occupies it
 * for latency + n / bandwidth. Parsed by {@link Units#parseLink} from e.g. "16GB/s,10us".
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

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "%.2f GB/s, %.1f us latency (modelled)", bytesPerSecond / 1e9, latencyNanos / 1e3);
    }
}
