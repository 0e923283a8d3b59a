package org.moeserve.runtime.engine;

import org.moeserve.cache.ExpertCache;
import org.moeserve.cache.ExpertKey;
import org.moeserve.routing.predict.ExpertPredictor;
import org.moeserve.routing.predict.PredictorEvaluation;
import org.moeserve.routing.predict.TokenContext;
import org.moeserve.runtime.model.ModelConfig;

import java.util.HashMap;
import java.util.Map;

/**
 * Drives the expert cache from a predictor, inside the forward pass (ExpertFlow's loop): when MoE layer l finishes
 * for a token, the experts predicted for layers l+1..l+H are prefetched (nearest first); the prefetches for l that
 * were not used and never started are cancelled as stale; at the last layer the next token's first layers are
 * prefetched on the guess that it reuses this token's experts. Mispredictions are corrected by demand loads.
 */
public final class Prefetcher implements RoutingObserver, LayerObserver {
    private final ExpertPredictor predictor;
    private final ExpertCache cache;
    private final int horizon, k, moeLayers;
    private final int[] moeIndex;
    private final Map<Long, int[][]> pathOf = new HashMap<>();
    /** seq -> its previous token's path; bounded (least recently updated dropped) so a long-running server does not grow. */
    private final Map<Long, int[][]> lastPath = new java.util.LinkedHashMap<>(64, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Long, int[][]> eldest) { return size() > 4096; }
    };
    private final boolean deadlines;
    private long lastLayerEnd = -1;
    private int lastLayer = -1;
    private double layerNanos; // running estimate of one layer's compute (exponential average)

    public Prefetcher(ExpertPredictor predictor, ExpertCache cache, ModelConfig config, int horizon, int k) {
        this(predictor, cache, config, horizon, k, true);
    }

    /** @param deadlines skip prefetches the link cannot deliver before their layer starts (by the layer-time estimate) */
    public Prefetcher(ExpertPredictor predictor, ExpertCache cache, ModelConfig config, int horizon, int k, boolean deadlines) {
        this.deadlines = deadlines;
        this.predictor = predictor;
        this.cache = cache;
        this.horizon = horizon;
        this.k = k;
        this.moeIndex = config.moeLayerIndex();
        this.moeLayers = config.moeLayers();
    }

    public void attach(Engine e) {
        e.addObserver(this);
        e.addLayerObserver(this);
    }

    @Override
    public void onRouting(long seq, int pos, int layer, int[] experts, float[] weights) {
        pathOf.computeIfAbsent(seq << 24 | pos, x -> new int[moeLayers][])[moeIndex[layer]] = experts;
    }

    @Override
    public void onLayerEnd(long seq, int pos, int layer, float[] hidden) {
        int m = moeIndex[layer];
        if (m < 0) return;
        long key = seq << 24 | pos;
        int[][] path = pathOf.get(key);
        long now = System.nanoTime();
        if (m != lastLayer) { // the first row of a new layer: time the layer that just ran
            if (lastLayerEnd >= 0 && m == (lastLayer + 1) % moeLayers) {
                double dt = now - lastLayerEnd;
                layerNanos = layerNanos == 0 ? dt : 0.9 * layerNanos + 0.1 * dt;
            }
            lastLayerEnd = now;
            lastLayer = m;
            cache.cancelStale(m);
        }
        if (m < moeLayers - 1) {
            TokenContext ctx = new TokenContext(-1, m, java.util.Arrays.copyOf(path, m + 1), hidden, lastPath.get(seq), null);
            float[][] scores = predictor.predict(ctx, horizon);
            for (int j = 0; j < scores.length; j++) {
                long deadline = deadline(now, j);
                for (int e : PredictorEvaluation.topK(scores[j], k)) cache.prefetch(new ExpertKey(m + 1 + j, e), j + 1, deadline);
            }
        }
        int wrap = m + horizon - (moeLayers - 1); // the next token's first layers, guessed from this token's
        for (int w = 0; w < Math.min(wrap, moeLayers); w++) {
            if (path[w] == null) continue;
            long deadline = deadline(now, moeLayers - m + w - 1);
            for (int e : path[w]) cache.prefetch(new ExpertKey(w, e), moeLayers - m + w, deadline);
        }
        if (m == moeLayers - 1) {
            pathOf.remove(key);
            lastPath.put(seq, path);
        }
    }

    /** When layer (this + layersAhead + 1)'s experts are needed: half a layer (its attention) after it starts. */
    private long deadline(long now, int layersAhead) {
        if (!deadlines || layerNanos == 0) return Long.MAX_VALUE;
        return now + (long) ((layersAhead + 0.5) * layerNanos);
    }

    /** Forgets a finished sequence. */
    public void forget(long seq) { lastPath.remove(seq); }
}
