package org.moeserve.cache.policy;

import org.moeserve.cache.ExpertKey;

import java.util.Collection;
import java.util.HashMap;
import java.util.Map;

/**
 * Evicts by predicted next use (ExpertFlow, MoE-Infinity): layers run in a cycle, so an expert of layer m is next
 * needed (m - current) mod layers layers from now (the layer running now: 0; the one just finished: the
 * furthest), and an expert a predictor has named for an upcoming layer is kept before any it has not. The expert
 * whose next use is furthest away leaves; among equals, the least used. A prefetch never evicts an expert that is
 * needed sooner than the one it would bring in. Predictions expire once their layer has run.
 */
public final class PredictivePolicy extends LfuPolicy {
    private final int layers;
    private final Map<ExpertKey, Long> predictedAt = new HashMap<>(); // key -> tick of the latest prediction naming it
    private int currentLayer;
    private long predictionTick;

    public PredictivePolicy(int layers) { this.layers = layers; }

    @Override
    public String name() { return "predictive"; }

    @Override
    public void onAccess(ExpertKey k, long tick) {
        super.onAccess(k, tick); // recency and counts (LFU's), used to break ties
        if (k.layer() != currentLayer) { // a new layer runs: predictions for the one before are spent
            int done = currentLayer;
            predictedAt.keySet().removeIf(p -> p.layer() == done);
            currentLayer = k.layer();
        }
    }

    @Override
    public void onPredicted(ExpertKey k, long tick) {
        predictedAt.put(k, tick);
        predictionTick = Math.max(predictionTick, tick);
    }

    /** Layers until k is next needed: its distance in the layer cycle; predicted experts come first. */
    private long nextUse(ExpertKey k) {
        long cyclic = Math.floorMod(k.layer() - currentLayer, layers);
        return predictedAt.containsKey(k) ? cyclic : cyclic + layers;
    }

    @Override
    public ExpertKey victim(Collection<ExpertKey> candidates, ExpertKey incoming, boolean forPrefetch, long tick) {
        ExpertKey best = null;
        long bestUse = Long.MIN_VALUE, bestCount = Long.MAX_VALUE;
        for (ExpertKey c : candidates) {
            long use = nextUse(c), n = count.getOrDefault(c, 0L);
            if (use > bestUse || (use == bestUse && n < bestCount)) {
                bestUse = use;
                bestCount = n;
                best = c;
            }
        }
        if (forPrefetch && best != null && bestUse <= nextUse(incoming)) return null;
        return best;
    }
}
