package org.moeserve.cache.policy;

import org.moeserve.cache.ExpertKey;

import java.util.HashMap;
import java.util.Map;
import java.util.TreeSet;

/**
 * The evictable experts ordered by a score fixed when each was added (lowest first; ties by layer, then expert):
 * the index every policy keeps so that its victim is a lookup. A key's score changes only by re-adding it.
 */
final class OrderedCandidates {
    private record Node(long primary, long secondary, ExpertKey key) {}

    private final TreeSet<Node> order = new TreeSet<>((a, b) -> {
        int c = Long.compare(a.primary, b.primary);
        if (c != 0) return c;
        c = Long.compare(a.secondary, b.secondary);
        if (c != 0) return c;
        c = Integer.compare(a.key.layer(), b.key.layer());
        return c != 0 ? c : Integer.compare(a.key.expert(), b.key.expert());
    });
    private final Map<ExpertKey, Node> nodes = new HashMap<>();

    private long changes;

    void put(ExpertKey k, long primary, long secondary) {
        remove(k);
        Node n = new Node(primary, secondary, k);
        nodes.put(k, n);
        order.add(n);
        changes++;
    }

    void remove(ExpertKey k) {
        Node n = nodes.remove(k);
        if (n != null) {
            order.remove(n);
            changes++;
        }
    }

    /** Counts every change: a score derived from the lowest stays valid while this does not move. */
    long changes() { return changes; }

    boolean contains(ExpertKey k) { return nodes.containsKey(k); }

    boolean isEmpty() { return nodes.isEmpty(); }

    /** The lowest, or null. */
    ExpertKey first() { return order.isEmpty() ? null : order.first().key; }

    /** The primary score of the lowest ({@link #first}); only when not empty. */
    long firstPrimary() { return order.first().primary; }

    /** The highest, or null. */
    ExpertKey last() { return order.isEmpty() ? null : order.last().key; }

    /** The score a key was added with, or null. */
    long[] score(ExpertKey k) {
        Node n = nodes.get(k);
        return n == null ? null : new long[]{n.primary, n.secondary};
    }
}
