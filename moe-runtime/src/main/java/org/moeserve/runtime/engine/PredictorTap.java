package org.moeserve.runtime.engine;

import org.moeserve.routing.TopK;
import org.moeserve.routing.predict.ExpertPredictor;

/**
 * Runs a predictor online, inside the forward pass: when MoE layer m has run, the predictor is asked, per row, for
 * the experts of layers m+1..m+H; when those layers route, the guess is scored. Measures what the prefetcher will
 * see: precision and recall per distance, and the predictor's cost in ns per token per layer.
 */
public final class PredictorTap implements MoeLayerListener {
    private final ExpertPredictor predictor;
    private final int horizon, k;
    private final long[] hits, predicted, actual;
    private long nanos, calls;
    private Routing current;
    private int[][][][] pending; // [row][target layer][distance-1] -> guessed set, for the forward now running

    public PredictorTap(ExpertPredictor predictor, int horizon, int k) {
        this.predictor = predictor;
        this.horizon = horizon;
        this.k = k;
        hits = new long[horizon];
        predicted = new long[horizon];
        actual = new long[horizon];
    }

    public void attach(Engine e) { e.addListener(this); }

    @Override
    public boolean needsHidden() { return predictor.needsHidden(); }

    @Override
    public void onMoeLayer(Routing rt, int m) {
        int layers = rt.moeLayers();
        if (rt != current) { // a new forward
            current = rt;
            pending = new int[rt.rows()][layers][horizon][];
        }
        for (int r = 0; r < rt.rows(); r++) {
            int[] experts = rt.experts(m, r);
            for (int d = 0; d < horizon; d++) {
                int[] guess = pending[r][m][d];
                if (guess == null) continue;
                int h = 0;
                for (int e : experts) for (int g : guess) if (g == e) { h++; break; }
                hits[d] += h;
                predicted[d] += guess.length;
                actual[d] += experts.length;
            }
            if (m == layers - 1) continue;
            long t0 = System.nanoTime();
            float[][] scores = predictor.predict(rt.context(r, m), horizon);
            nanos += System.nanoTime() - t0;
            calls++;
            for (int j = 0; j < scores.length; j++) pending[r][m + 1 + j][j] = TopK.of(scores[j], k);
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
