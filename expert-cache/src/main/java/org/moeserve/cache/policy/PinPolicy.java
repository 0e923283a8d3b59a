package org.moeserve.cache.policy;

import org.moeserve.cache.ExpertKey;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Set;

/**
 * Static pinning of the hottest experts (the llama.cpp / Fiddler baseline): the experts with the highest load in
 * a profile stay resident from the start; the slots left over (at least one per expert a layer uses) serve
 * demand loads, least recently used first.
 */
public final class PinPolicy extends LruPolicy {
    private final Set<ExpertKey> pinned;

    /** @param load load[layer][expert] from a profile; {@code pinSlots} experts are pinned */
    public PinPolicy(long[][] load, int pinSlots) {
        List<ExpertKey> all = new ArrayList<>();
        for (int l = 0; l < load.length; l++) for (int e = 0; e < load[l].length; e++) all.add(new ExpertKey(l, e));
        all.sort(Comparator.comparingLong((ExpertKey k) -> -load[k.layer()][k.expert()])
                .thenComparingInt(ExpertKey::layer).thenComparingInt(ExpertKey::expert));
        pinned = Set.copyOf(all.subList(0, Math.max(0, Math.min(pinSlots, all.size()))));
    }

    @Override
    public String name() { return "pin"; }

    @Override
    public Collection<ExpertKey> pinned() { return pinned; }

    @Override
    public void onEvictable(ExpertKey k) { if (!pinned.contains(k)) super.onEvictable(k); }
}
