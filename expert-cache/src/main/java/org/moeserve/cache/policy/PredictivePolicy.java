package org.moeserve.cache.policy;

import org.moeserve.cache.ExpertKey;

import java.util.HashMap;
import java.util.Map;

/**
 * Evicts by predicted next use (ExpertFlow, MoE-Infinity): layers run in a cycle, so an expert of layer m is next
 * needed (m - current) mod layers layers from now (the layer running now: 0; the one just finished: the
 * furthest), and an expert a predictor has named for an upcoming layer is kept before any it has not. The expert
 * whose next use is furthest away leaves; among equals, the least used. A prefetch never evicts an expert that is
 * needed sooner than the one it would bring in. Predictions expire once their layer has run.
 *
 * <p>Candidates sit in one bucket per (layer, predicted or not), each ordered by use count, so a victim is the first
 * of the first non-empty bucket in next-use order: at most 2 x layers lookups, whatever the number of experts.
 */
public final class PredictivePolicy extends LfuPolicy {
    private final int layers;
    private final Map<ExpertKey, Long> predictedAt = new HashMap<>(); // key -> tick of the latest prediction naming it
    private final Map<ExpertKey, OrderedCandidates> bucketOf = new HashMap<>(); // evictable key -> its bucket
    private final OrderedCandidates[] plain, predicted; // per layer, by use count
    private int currentLayer;

    public PredictivePolicy(int layers) {
        this.layers = layers;
        plain = new OrderedCandidates[layers];
        predicted = new OrderedCandidates[layers];
        for (int l = 0; l < layers; l++) {
            plain[l] = new OrderedCandidates();
            predicted[l] = new OrderedCandidates();
        }
    }

    @Override
    public String name() { return "predictive"; }

    @Override
    public void onAccess(ExpertKey k, long tick) {
        super.onAccess(k, tick); // recency and counts (LFU's), used to break ties
        if (k.layer() != currentLayer) { // a new layer runs: predictions for the one before are spent
            int done = currentLayer;
            for (var it = predictedAt.keySet().iterator(); it.hasNext(); ) {
                ExpertKey p = it.next();
                if (p.layer() != done) continue;
                it.remove();
                if (bucketOf.containsKey(p)) index(p);
            }
            currentLayer = k.layer();
        }
    }

    @Override
    public void onPredicted(ExpertKey k, long tick) {
        boolean was = predictedAt.containsKey(k);
        predictedAt.put(k, tick);
        if (!was && bucketOf.containsKey(k)) index(k);
    }

    @Override
    public void onEvictable(ExpertKey k) { index(k); }

    @Override
    public void onUnevictable(ExpertKey k) {
        OrderedCandidates b = bucketOf.remove(k);
        if (b != null) b.remove(k);
    }

    private void index(ExpertKey k) {
        onUnevictable(k);
        OrderedCandidates b = predictedAt.containsKey(k) ? predicted[k.layer()] : plain[k.layer()];
        b.put(k, count.getOrDefault(k, 0L), last.getOrDefault(k, Long.MIN_VALUE));
        bucketOf.put(k, b);
    }

    /** Layers until k is next needed: its distance in the layer cycle; predicted experts come first. */
    private long nextUse(ExpertKey k) {
        long cyclic = Math.floorMod(k.layer() - currentLayer, layers);
        return predictedAt.containsKey(k) ? cyclic : cyclic + layers;
    }

    @Override
    public ExpertKey victim(ExpertKey incoming, boolean forPrefetch, long tick) {
        ExpertKey best = null;
        for (int pass = 0; pass < 2 && best == null; pass++) { // unpredicted experts go first, then predicted
            OrderedCandidates[] buckets = pass == 0 ? plain : predicted;
            for (int d = layers - 1; d >= 0 && best == null; d--) best = buckets[Math.floorMod(currentLayer + d, layers)].first();
        }
        if (forPrefetch && best != null && nextUse(best) <= nextUse(incoming)) return null;
        return best;
    }
}
