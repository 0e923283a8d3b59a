package org.moeserve.cache.policy;

import org.moeserve.cache.ExpertKey;

import java.util.Collection;
import java.util.HashMap;
import java.util.Map;

/** Least recently used: the expert whose last access (or load) is oldest leaves. */
public class LruPolicy implements EvictionPolicy {
    protected final Map<ExpertKey, Long> last = new HashMap<>();

    @Override
    public String name() { return "lru"; }

    @Override
    public void onAccess(ExpertKey k, long tick) { last.put(k, tick); }

    @Override
    public void onLoad(ExpertKey k, long tick) { last.putIfAbsent(k, tick); }

    @Override
    public void onEvict(ExpertKey k) { last.remove(k); }

    @Override
    public ExpertKey victim(Collection<ExpertKey> candidates, ExpertKey incoming, boolean forPrefetch, long tick) {
        ExpertKey best = null;
        long oldest = Long.MAX_VALUE;
        for (ExpertKey c : candidates) {
            long t = last.getOrDefault(c, Long.MIN_VALUE);
            if (t < oldest) {
                oldest = t;
                best = c;
            }
        }
        return best;
    }
}
