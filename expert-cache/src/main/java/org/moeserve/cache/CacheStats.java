package org.moeserve.cache;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * What the cache did. An access is a <em>hit</em> if the expert was resident and loaded when asked for, <em>late</em>
 * if its transfer was under way (a prefetch that came too late: it stalls, for less than a miss), a <em>miss</em> if
 * it had to be loaded on demand. Prefetch precision = prefetched experts that were used before leaving / prefetched.
 */
public record CacheStats(long accesses, long hits, long late, long misses, long stallNanos, long demandBytes,
                         long prefetchBytes, long prefetchIssued, long prefetchUsed, long prefetchWasted,
                         long prefetchCancelled, long prefetchSkipped, long wastedBytes, long linkBusyNanos) {

    public double hitRate() { return accesses == 0 ? 0 : (double) hits / accesses; }

    public double prefetchPrecision() {
        long decided = prefetchUsed + prefetchWasted;
        return decided == 0 ? 0 : (double) prefetchUsed / decided;
    }

    public long bytesMoved() { return demandBytes + prefetchBytes; }

    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("accesses", accesses);
        m.put("hits", hits);
        m.put("late", late);
        m.put("misses", misses);
        m.put("hit_rate", hitRate());
        m.put("stall_ms", stallNanos / 1e6);
        m.put("demand_bytes", demandBytes);
        m.put("prefetch_bytes", prefetchBytes);
        m.put("prefetch_issued", prefetchIssued);
        m.put("prefetch_used", prefetchUsed);
        m.put("prefetch_wasted", prefetchWasted);
        m.put("prefetch_cancelled", prefetchCancelled);
        m.put("prefetch_skipped", prefetchSkipped);
        m.put("prefetch_precision", prefetchPrecision());
        m.put("wasted_bytes", wastedBytes);
        m.put("link_busy_ms", linkBusyNanos / 1e6);
        return m;
    }

    public String summary() {
        return String.format(Locale.ROOT, "hit rate %.3f (%d hits, %d late, %d misses of %d); stall %.1f ms; moved %.1f MB "
                        + "(demand %.1f, prefetch %.1f); prefetch precision %.3f (%d used, %d wasted, %d cancelled, %d skipped: too late); wasted %.1f MB",
                hitRate(), hits, late, misses, accesses, stallNanos / 1e6, bytesMoved() / 1e6, demandBytes / 1e6,
                prefetchBytes / 1e6, prefetchPrecision(), prefetchUsed, prefetchWasted, prefetchCancelled, prefetchSkipped, wastedBytes / 1e6);
    }
}
