package org.moeserve.cache.policy;

import org.moeserve.cache.ExpertKey;

import java.util.Collection;

/**
 * Chooses which resident expert leaves the fast tier. The cache tells it every access, load and eviction;
 * {@link #victim} picks among the experts that may leave now (resident, loaded, not pinned by a running layer).
 * Policies decide only <em>which</em> expert is in fast memory, never what is computed.
 */
public interface EvictionPolicy {
    String name();

    default void onAccess(ExpertKey k, long tick) {}

    default void onLoad(ExpertKey k, long tick) {}

    default void onEvict(ExpertKey k) {}

    /** A predictor named {@code k} for an upcoming layer (only the predictive policy uses this). */
    default void onPredicted(ExpertKey k, long tick) {}

    /**
     * The expert to evict so that {@code incoming} can be loaded, or null to refuse (only for prefetches:
     * {@code forPrefetch} is true, and every candidate is worth more than the incoming guess).
     */
    ExpertKey victim(Collection<ExpertKey> candidates, ExpertKey incoming, boolean forPrefetch, long tick);

    /** Experts the policy wants resident from the start and never evicted (static pinning); empty for most. */
    default Collection<ExpertKey> pinned() { return java.util.List.of(); }
}
