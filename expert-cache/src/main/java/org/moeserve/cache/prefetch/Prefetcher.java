package org.moeserve.cache.prefetch;

import org.moeserve.cache.ExpertCache;
import org.moeserve.cache.ExpertKey;
import org.moeserve.routing.TopK;
import org.moeserve.routing.predict.ExpertPredictor;
import org.moeserve.routing.predict.TokenContext;

/**
 * The prefetcher: one loop that drives the expert cache from a predictor, for live offload (the engine calls it as
 * its MoE layers finish) and for replay ({@code cache-sim}, in virtual time) alike. It knows nothing of the engine:
 * callers give it the MoE layer, the token's context (and its row in the step) and the time. Per MoE layer m:
 *
 * <pre>
 *   layerDone(m, now)          once per layer and step: prefetches for m that never started are cancelled as stale,
 *                              and (when measuring) the layer time is updated from the gap since the previous layer
 *   afterLayer(ctx, now, row)  per token: candidates are the predictor's top ranks for m+1..m+H and, for the next
 *                              token's first layers, this token's own experts (temporal reuse); each gets a
 *                              probability, then they are asked for in order of probability
 * </pre>
 *
 * <p><b>Probabilities, not scores.</b> A predictor's scores are only an order. The prefetcher learns, as layers route,
 * how often the expert it ranked r-th at distance d was used (and how often a token reuses its predecessor's experts
 * at each layer): a calibration that runs live and in replay alike, starting from a prior. The probability goes to
 * the cache's policy, which evicts by expected next use, so a guess never displaces an expert more likely to be needed
 * sooner.
 *
 * <p><b>Late is better than never.</b> A load that cannot arrive before its layer starts is still made when the link
 * is idle (it shortens the stall a demand load would cause, and delays nothing); when the link is busy, guesses that
 * cannot arrive in time are skipped, and the most probable go first. Demand loads always overtake queued prefetches.
 */
public final class Prefetcher {
    /** One prefetch asked of the cache: expert {@code key} for the layer {@code distance} layers ahead. */
    public record Decision(ExpertKey key, int distance) {}

    /** Told every decision (tests compare live and replayed runs with it). */
    @FunctionalInterface
    public interface DecisionLog {
        void decided(Decision d);
    }

    /** Candidates below this probability are not worth link time. */
    static final double MIN_PROBABILITY = Double.parseDouble(System.getProperty("moe.prefetch.min", "0.3"));
    /** A late load (one that cannot arrive before its layer) may block a demand load behind it: only likely ones. */
    static final double LATE_PROBABILITY = Double.parseDouble(System.getProperty("moe.prefetch.late", "0.8"));

    private final ExpertPredictor predictor;
    private final ExpertCache cache;
    private final int moeLayers, horizon, k, ranks;
    private final boolean deadlines;
    private final long[][] rankHits, rankTotal;       // [distance-1][rank]: the predictor's calibration
    private final long[] reuseHits, reuseTotal;       // [layer]: how often a token repeats its predecessor's experts
    private final java.util.Map<Integer, java.util.List<int[]>[]> pending = new java.util.HashMap<>(); // row -> [layer] -> {d, r, e}
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
        this.ranks = 2 * k;
        rankHits = new long[horizon][ranks];
        rankTotal = new long[horizon][ranks];
        reuseHits = new long[moeLayers];
        reuseTotal = new long[moeLayers];
    }

    /** P(the expert ranked r-th, 0-based, is used d layers on): observed, smoothed towards a prior of 1/2 for the top k. */
    public double probability(int distance, int rank) {
        double prior = rank < k ? 0.5 : 0.15;
        return (rankHits[distance - 1][rank] + 4 * prior) / (rankTotal[distance - 1][rank] + 4.0);
    }

    /** P(a token uses an expert its predecessor used at this layer). */
    public double reuse(int layer) { return (reuseHits[layer] + 1.0) / (reuseTotal[layer] + 3.0); }

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
    public void afterLayer(TokenContext ctx, long now) { afterLayer(ctx, now, 0); }

    /** As above; {@code row} tells tokens of one step apart (its predictions are scored against its own routing). */
    @SuppressWarnings("unchecked")
    public void afterLayer(TokenContext ctx, long now, int row) {
        int m = ctx.layer();
        int[][] path = ctx.path();
        learn(ctx, m, row);
        record Candidate(ExpertKey key, int distance, double p) {}
        java.util.List<Candidate> cands = new java.util.ArrayList<>();
        if (m < moeLayers - 1) {
            float[][] scores = predictor.predict(ctx, horizon);
            java.util.List<int[]>[] mine = pending.computeIfAbsent(row, x -> new java.util.List[moeLayers]);
            for (int j = 0; j < scores.length; j++) {
                int[] top = TopK.of(scores[j], ranks);
                java.util.List<int[]> at = mine[m + 1 + j] == null ? (mine[m + 1 + j] = new java.util.ArrayList<>()) : mine[m + 1 + j];
                for (int r = 0; r < top.length; r++) {
                    at.add(new int[]{j + 1, r, top[r]});
                    cands.add(new Candidate(new ExpertKey(m + 1 + j, top[r]), j + 1, probability(j + 1, r)));
                }
            }
        }
        int wrap = m + horizon - (moeLayers - 1); // the next token's first layers, guessed from this token's
        for (int w = 0; w < Math.min(wrap, moeLayers); w++) {
            if (w >= path.length || path[w] == null) continue;
            for (int e : path[w]) if (e >= 0) cands.add(new Candidate(new ExpertKey(w, e), moeLayers - m + w, reuse(w)));
        }
        cands.sort((a, b) -> a.p != b.p ? Double.compare(b.p, a.p) : Integer.compare(a.distance, b.distance));
        java.util.Set<ExpertKey> asked = new java.util.HashSet<>();
        for (Candidate c : cands) {
            if (c.p < MIN_PROBABILITY) break;
            if (asked.add(c.key)) prefetch(c.key, c.distance, deadline(now, c.distance - 1), c.p);
        }
    }

    /** Scores the predictions made for this token's layer m, and its reuse of its predecessor's experts. */
    private void learn(TokenContext ctx, int m, int row) {
        int[] truth = ctx.path()[m];
        if (truth == null) return;
        java.util.List<int[]>[] mine = pending.get(row);
        if (mine != null && mine[m] != null) {
            for (int[] g : mine[m]) {
                rankTotal[g[0] - 1][g[1]]++;
                for (int e : truth) if (e == g[2]) { rankHits[g[0] - 1][g[1]]++; break; }
            }
            mine[m] = null;
        }
        if (m == 0 && mine != null) java.util.Arrays.fill(mine, null); // a new token in this row
        int[][] prev = ctx.previousPath();
        if (prev != null && m < prev.length && prev[m] != null) {
            for (int e : prev[m]) {
                if (e < 0) continue;
                reuseTotal[m]++;
                for (int t : truth) if (t == e) { reuseHits[m]++; break; }
            }
        }
    }

    private void prefetch(ExpertKey key, int distance, long deadline, double p) {
        DecisionLog l = log;
        if (l != null) l.decided(new Decision(key, distance));
        cache.prefetch(key, distance, deadline, p, p >= LATE_PROBABILITY);
    }

    /** When the layer {@code layersAhead + 1} layers on needs its experts: half a layer (its attention) after it starts. */
    private long deadline(long now, int layersAhead) {
        if (!deadlines || layerNanos == 0) return Long.MAX_VALUE;
        return now + (long) ((layersAhead + 0.5) * layerNanos);
    }
}
