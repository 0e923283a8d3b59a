package org.moeserve.cache.policy;

import org.moeserve.cache.ExpertKey;

import java.util.Collection;

/**
 * Chooses which resident expert leaves the fast tier. The cache tells it every access, load and eviction, and which
 * experts may leave now ({@link #onEvictable}: resident, loaded, not pinned by a running layer, not fixed; until
 * {@link #onUnevictable}); {@link #victim} picks among those. Policies keep their candidates ordered, so a choice
 * costs O(log n), not a scan: replays of production traces run millions of accesses per second. Policies decide
 * only <em>which</em> expert is in fast memory, never what is computed.
 */
public interface EvictionPolicy {
    String name();

    /** k is accessed; the cache has already made it unevictable (it is pinned while used). */
    default void onAccess(ExpertKey k, long tick) {}

    default void onLoad(ExpertKey k, long tick) {}

    default void onEvict(ExpertKey k) {}

    /** A predictor named {@code k} for an upcoming layer (only the predictive policy uses this). */
    default void onPredicted(ExpertKey k, long tick) {}

    /** As {@link #onPredicted(ExpertKey, long)}, with the probability that k is used at its next layer visit. */
    default void onPredicted(ExpertKey k, long tick, double probability) { onPredicted(k, tick); }

    /** k may leave from now on. */
    void onEvictable(ExpertKey k);

    /** k may not leave (pinned again, or evicted). */
    void onUnevictable(ExpertKey k);

    /**
     * The expert to evict so that {@code incoming} can be loaded, among the evictable ones; null if there is none,
     * or to refuse a prefetch ({@code forPrefetch}) when every candidate is worth more than the incoming guess.
     */
    ExpertKey victim(ExpertKey incoming, boolean forPrefetch, long tick);

    /** Experts the policy wants resident from the start and never evicted (static pinning); empty for most. */
    default Collection<ExpertKey> pinned() { return java.util.List.of(); }
}
