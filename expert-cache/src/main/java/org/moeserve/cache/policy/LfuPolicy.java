package org.moeserve.cache.policy;

import org.moeserve.cache.ExpertKey;

import java.util.HashMap;
import java.util.Map;

/** Least frequently used (counts kept across evictions, as MoE-Infinity's activation counts); ties: least recent. */
public class LfuPolicy extends LruPolicy {
    protected final Map<ExpertKey, Long> count = new HashMap<>();
    private final OrderedCandidates byCount = new OrderedCandidates();

    @Override
    public String name() { return "lfu"; }

    @Override
    public void onAccess(ExpertKey k, long tick) {
        super.onAccess(k, tick);
        count.merge(k, 1L, Long::sum);
    }

    @Override
    public void onEvictable(ExpertKey k) { byCount.put(k, count.getOrDefault(k, 0L), last.getOrDefault(k, Long.MIN_VALUE)); }

    @Override
    public void onUnevictable(ExpertKey k) { byCount.remove(k); }

    @Override
    public ExpertKey victim(ExpertKey incoming, boolean forPrefetch, long tick) { return byCount.first(); }
}
