package org.moeserve.runtime.engine;

import org.moeserve.routing.predict.ExpertPredictor;
import org.moeserve.routing.predict.PredictorEvaluation;
import org.moeserve.routing.predict.TokenContext;
import org.moeserve.runtime.model.ModelConfig;

import java.util.HashMap;
import java.util.Map;

/**
 * Runs a predictor online, inside the forward pass: when MoE layer l finishes for a token, the predictor is asked
 * for the experts of layers l+1..l+H; when those layers route, the guess is scored. Measures what the prefetcher
 * will see: precision and recall per distance, and the predictor's cost in ns per token per layer. This is where
 * the expert cache's prefetcher will hook in.
 */
public final class PredictorTap implements RoutingObserver, LayerObserver {
    private final ExpertPredictor predictor;
    private final int horizon, k, moeLayers;
    private final int[] moeIndex;
    private final Map<Long, int[][]> pathOf = new HashMap<>();      // (seq, pos) -> path so far
    /** seq -> its previous token's path; bounded (least recently updated dropped) so a long-running server does not grow. */
    private final Map<Long, int[][]> lastPath = new java.util.LinkedHashMap<>(64, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Long, int[][]> eldest) { return size() > 4096; }
    };    // seq -> previous token's path
    private final Map<Long, int[][][]> pending = new HashMap<>();    // (seq, pos) -> [target layer][distance-1] -> set
    private final long[] hits, predicted, actual;
    private long nanos, calls;

    public PredictorTap(ExpertPredictor predictor, ModelConfig config, int horizon, int k) {
        this.predictor = predictor;
        this.horizon = horizon;
        this.k = k;
        moeIndex = config.moeLayerIndex();
        moeLayers = config.moeLayers();
        hits = new long[horizon];
        predicted = new long[horizon];
        actual = new long[horizon];
    }

    private static long key(long seq, int pos) { return seq << 24 | pos; }

    public void attach(Engine e) {
        e.addObserver(this);
        e.addLayerObserver(this);
    }

    @Override
    public void onRouting(long seq, int pos, int layer, int[] experts, float[] weights) {
        int m = moeIndex[layer];
        long key = key(seq, pos);
        int[][] path = pathOf.computeIfAbsent(key, x -> new int[moeLayers][]);
        path[m] = experts;
        int[][][] pend = pending.get(key);
        if (pend != null && pend[m] != null) {
            for (int d = 0; d < horizon; d++) {
                int[] guess = pend[m][d];
                if (guess == null) continue;
                int h = 0;
                for (int e : experts) for (int g : guess) if (g == e) { h++; break; }
                hits[d] += h;
                predicted[d] += guess.length;
                actual[d] += experts.length;
            }
        }
        if (m == moeLayers - 1) { // the token is done
            pending.remove(key);
            pathOf.remove(key);
            lastPath.put(seq, path);
        }
    }

    @Override
    public void onLayerEnd(long seq, int pos, int layer, float[] hidden) {
        int m = moeIndex[layer];
        if (m < 0 || m == moeLayers - 1) return;
        long key = key(seq, pos);
        int[][] path = pathOf.get(key);
        TokenContext ctx = new TokenContext(-1, m, java.util.Arrays.copyOf(path, m + 1), hidden, lastPath.get(seq), null);
        long t0 = System.nanoTime();
        float[][] scores = predictor.predict(ctx, horizon);
        nanos += System.nanoTime() - t0;
        calls++;
        int[][][] pend = pending.computeIfAbsent(key, x -> new int[moeLayers][][]);
        for (int j = 0; j < scores.length; j++) {
            int target = m + 1 + j;
            if (pend[target] == null) pend[target] = new int[horizon][];
            pend[target][j] = PredictorEvaluation.topK(scores[j], k);
        }
    }

    public double precision(int distance) {
        return predicted[distance - 1] == 0 ? 0 : (double) hits[distance - 1] / predicted[distance - 1];
    }

    public double recall(int distance) {
        return actual[distance - 1] == 0 ? 0 : (double) hits[distance - 1] / actual[distance - 1];
    }

    public double nanosPerTokenPerLayer() { return calls == 0 ? 0 : (double) nanos / calls; }

    public int horizon() { return horizon; }

    public String name() { return predictor.name(); }
}
