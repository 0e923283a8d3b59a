package org.moeserve.cache.policy;

import org.moeserve.cache.ExpertKey;

import java.util.Collection;
import java.util.HashMap;
import java.util.Map;

/** Least frequently used (counts kept across evictions, as MoE-Infinity's activation counts); ties: least recent. */
public class LfuPolicy extends LruPolicy {
    protected final Map<ExpertKey, Long> count = new HashMap<>();

    @Override
    public String name() { return "lfu"; }

    @Override
    public void onAccess(ExpertKey k, long tick) {
        super.onAccess(k, tick);
        count.merge(k, 1L, Long::sum);
    }

    @Override
    public ExpertKey victim(Collection<ExpertKey> candidates, ExpertKey incoming, boolean forPrefetch, long tick) {
        ExpertKey best = null;
        long bestCount = Long.MAX_VALUE, bestLast = Long.MAX_VALUE;
        for (ExpertKey c : candidates) {
            long n = count.getOrDefault(c, 0L), t = last.getOrDefault(c, Long.MIN_VALUE);
            if (n < bestCount || (n == bestCount && t < bestLast)) {
                bestCount = n;
                bestLast = t;
                best = c;
            }
        }
        return best;
    }
}
