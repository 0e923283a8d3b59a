package org.moeserve.cache.policy;

import org.moeserve.cache.ExpertKey;

import java.util.HashMap;
import java.util.Map;

/** Least recently used: the expert whose last access (or load) is oldest leaves. */
public class LruPolicy implements EvictionPolicy {
    protected final Map<ExpertKey, Long> last = new HashMap<>();
    private final OrderedCandidates candidates = new OrderedCandidates();

    @Override
    public String name() { return "lru"; }

    @Override
    public void onAccess(ExpertKey k, long tick) { last.put(k, tick); }

    @Override
    public void onLoad(ExpertKey k, long tick) { last.putIfAbsent(k, tick); }

    @Override
    public void onEvict(ExpertKey k) { last.remove(k); }

    @Override
    public void onEvictable(ExpertKey k) { candidates.put(k, last.getOrDefault(k, Long.MIN_VALUE), 0); }

    @Override
    public void onUnevictable(ExpertKey k) { candidates.remove(k); }

    @Override
    public ExpertKey victim(ExpertKey incoming, boolean forPrefetch, long tick) { return candidates.first(); }
}
