package org.moeserve.cache.policy;

import org.moeserve.cache.ExpertKey;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Belady's optimal eviction, offline: given the whole future access sequence (from a trace), the expert whose next
 * access is furthest away leaves. The bound for demand loading at a given budget. The cache's access counter is
 * the position in the sequence: the policy must see exactly the accesses it was built from, in order. An evictable
 * expert's next use cannot change until it is accessed (which pins it), so the order is kept as experts are added.
 */
public final class BeladyPolicy implements EvictionPolicy {
    private final Map<ExpertKey, int[]> positions = new HashMap<>();
    private final Map<ExpertKey, Integer> cursor = new HashMap<>();
    private final OrderedCandidates byNextUse = new OrderedCandidates(); // lowest first: -(next use)
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
    public void onEvictable(ExpertKey k) { byNextUse.put(k, -nextUse(k), 0); }

    @Override
    public void onUnevictable(ExpertKey k) { byNextUse.remove(k); }

    @Override
    public ExpertKey victim(ExpertKey incoming, boolean forPrefetch, long tick) {
        ExpertKey best = byNextUse.first();
        if (forPrefetch && best != null && nextUse(best) <= nextUse(incoming)) return null;
        return best;
    }
}
