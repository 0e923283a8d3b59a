package org.moeserve.cache.policy;

import org.moeserve.cache.ExpertKey;

import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Belady's optimal eviction, offline: given the whole future access sequence (from a trace), the expert whose next
 * access is furthest away leaves. The bound for demand loading at a given budget. The cache's access counter is
 * the position in the sequence: the policy must see exactly the accesses it was built from, in order.
 */
public final class BeladyPolicy implements EvictionPolicy {
    private final Map<ExpertKey, int[]> positions = new HashMap<>();
    private final Map<ExpertKey, Integer> cursor = new HashMap<>();
    private long accesses;

    public BeladyPolicy(List<ExpertKey> future) {
        Map<ExpertKey, List<Integer>> at = new HashMap<>();
        for (int i = 0; i < future.size(); i++) at.computeIfAbsent(future.get(i), k -> new java.util.ArrayList<>()).add(i);
        at.forEach((k, v) -> positions.put(k, v.stream().mapToInt(Integer::intValue).toArray()));
    }

    @Override
    public String name() { return "belady"; }

    @Override
    public void onAccess(ExpertKey k, long tick) { accesses++; }

    /** Position of k's next access at or after the current position (Integer.MAX_VALUE: never again). */
    public long nextUse(ExpertKey k) {
        int[] p = positions.get(k);
        if (p == null) return Integer.MAX_VALUE;
        int c = cursor.getOrDefault(k, 0);
        while (c < p.length && p[c] < accesses) c++;
        cursor.put(k, c);
        return c < p.length ? p[c] : Integer.MAX_VALUE;
    }

    @Override
    public ExpertKey victim(Collection<ExpertKey> candidates, ExpertKey incoming, boolean forPrefetch, long tick) {
        ExpertKey best = null;
        long far = Long.MIN_VALUE;
        for (ExpertKey c : candidates) {
            long n = nextUse(c);
            if (n > far || (n == far && best != null && (c.layer() < best.layer() || (c.layer() == best.layer() && c.expert() < best.expert())))) {
                far = n;
                best = c;
            }
        }
        if (forPrefetch && best != null && far <= nextUse(incoming)) return null;
        return best;
    }
}
