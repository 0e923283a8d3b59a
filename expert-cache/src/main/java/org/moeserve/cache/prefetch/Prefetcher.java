package org.moeserve.cache.prefetch;

import org.moeserve.cache.ExpertCache;
import org.moeserve.cache.ExpertKey;
import org.moeserve.routing.TopK;
import org.moeserve.routing.predict.ExpertPredictor;
import org.moeserve.routing.predict.TokenContext;

/**
 * The prefetcher: one loop that drives the expert cache from a predictor, for live offload (the engine calls it as
 * its MoE layers finish) and for replay ({@code cache-sim}, in virtual time) alike. It knows nothing of the engine:
 * callers give it the MoE layer, the token's context and the time. ExpertFlow's loop, per MoE layer m:
 *
 * <pre>
 *   layerDone(m, now)        once per layer and step: prefetches for m that never started are cancelled as stale,
 *                            and (when measuring) the layer time is updated from the gap since the previous layer
 *   afterLayer(ctx, now)     per token: the top-K predicted experts of m+1..m+H (nearest first), then the next
 *                            token's first layers, guessed as this token's own (temporal reuse)
 * </pre>
 *
 * A prefetch whose layer starts before the link can deliver it is skipped when deadlines are on: the deadline of a
 * layer d layers ahead is now + (d + 1/2) layer times (its attention runs first). Mispredictions are corrected by
 * demand loads.
 */
public final class Prefetcher {
    /** One prefetch asked of the cache: expert {@code key} for the layer {@code distance} layers ahead. */
    public record Decision(ExpertKey key, int distance) {}

    /** Told every decision (tests compare live and replayed runs with it). */
    @FunctionalInterface
    public interface DecisionLog {
        void decided(Decision d);
    }

    private final ExpertPredictor predictor;
    private final ExpertCache cache;
    private final int moeLayers, horizon, k;
    private final boolean deadlines;
    private final boolean measure;
    private double layerNanos;
    private long lastLayerEnd = -1;
    private int lastLayer = -1;
    private volatile DecisionLog log;

    /**
     * @param layerNanos the compute time of one layer, or 0 to measure it from the gaps between {@link #layerDone} calls
     * @param deadlines  skip prefetches the link cannot deliver before their layer needs them
     */
    public Prefetcher(ExpertPredictor predictor, ExpertCache cache, int moeLayers, int horizon, int k, long layerNanos,
                      boolean deadlines) {
        if (horizon < 1) throw new IllegalArgumentException("horizon is " + horizon + " but must be >= 1");
        if (k < 1) throw new IllegalArgumentException("prefetch k is " + k + " but must be >= 1");
        if (layerNanos < 0) throw new IllegalArgumentException("layer time is " + layerNanos + " ns but must be >= 0");
        this.predictor = predictor;
        this.cache = cache;
        this.moeLayers = moeLayers;
        this.horizon = horizon;
        this.k = k;
        this.layerNanos = layerNanos;
        this.measure = layerNanos == 0;
        this.deadlines = deadlines;
    }

    public ExpertPredictor predictor() { return predictor; }

    public void setLog(DecisionLog log) { this.log = log; }

    /** MoE layer {@code m} has run for the current step. */
    public void layerDone(int m, long now) {
        if (measure) {
            if (lastLayerEnd >= 0 && m == (lastLayer + 1) % moeLayers) {
                double dt = now - lastLayerEnd;
                layerNanos = layerNanos == 0 ? dt : 0.9 * layerNanos + 0.1 * dt;
            }
            lastLayerEnd = now;
            lastLayer = m;
        }
        cache.cancelStale(m);
    }

    /** One token after MoE layer {@code ctx.layer()}: prefetch what it will need next. */
    public void afterLayer(TokenContext ctx, long now) {
        int m = ctx.layer();
        if (m < moeLayers - 1) {
            float[][] scores = predictor.predict(ctx, horizon);
            for (int j = 0; j < scores.length; j++) {
                long deadline = deadline(now, j);
                for (int e : TopK.of(scores[j], k)) prefetch(new ExpertKey(m + 1 + j, e), j + 1, deadline);
            }
        }
        int wrap = m + horizon - (moeLayers - 1); // the next token's first layers, guessed from this token's
        int[][] path = ctx.path();
        for (int w = 0; w < Math.min(wrap, moeLayers); w++) {
            if (w >= path.length || path[w] == null) continue;
            long deadline = deadline(now, moeLayers - m + w - 1);
            for (int e : path[w]) if (e >= 0) prefetch(new ExpertKey(w, e), moeLayers - m + w, deadline);
        }
    }

    private void prefetch(ExpertKey key, int distance, long deadline) {
        DecisionLog l = log;
        if (l != null) l.decided(new Decision(key, distance));
        cache.prefetch(key, distance, deadline);
    }

    /** When the layer {@code layersAhead + 1} layers on needs its experts: half a layer (its attention) after it starts. */
    private long deadline(long now, int layersAhead) {
        if (!deadlines || layerNanos == 0) return Long.MAX_VALUE;
        return now + (long) ((layersAhead + 0.5) * layerNanos);
    }
}
