package org.moeserve.routing.predict;

import org.moeserve.routing.TopK;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * Precision and recall of a predictor against the true top-k, at each lookahead distance 1..H, per domain and
 * overall, and its cost. The predicted set at distance d is the top K of its scores for layer l+d, made when
 * layer l finishes, for every layer l that has a layer l+d. precision = |predicted ∩ true| / K;
 * recall = |predicted ∩ true| / |true| (unknown cells, -1, are left out of the truth).
 */
public final class PredictorEvaluation {
    /** Counts at one distance. */
    public static final class Counts {
        long hits, predicted, actual;

        public double precision() { return predicted == 0 ? 0 : (double) hits / predicted; }

        public double recall() { return actual == 0 ? 0 : (double) hits / actual; }

        public long predictions() { return predicted; }
    }

    private final String predictor;
    private final int horizon, k;
    private final Map<String, Counts[]> byDomain = new TreeMap<>();
    private final Map<String, Long> tokensByDomain = new TreeMap<>();
    private final Counts[] all;
    private final long[][] rankHits, rankTotal; // [distance-1][rank 0..2K-1, then 2K = the rest]
    private int experts;
    private long calls, nanos, tokens;

    private PredictorEvaluation(String predictor, int horizon, int k) {
        this.predictor = predictor;
        this.horizon = horizon;
        this.k = k;
        this.all = newCounts(horizon);
        this.rankHits = new long[horizon][2 * k + 1];
        this.rankTotal = new long[horizon][2 * k + 1];
    }

    private static Counts[] newCounts(int h) {
        Counts[] c = new Counts[h];
        for (int i = 0; i < h; i++) c[i] = new Counts();
        return c;
    }

    /** Runs the predictor over every token and layer of the samples. */
    public static PredictorEvaluation run(ExpertPredictor p, List<TokenSample> samples, int layers, int horizon, int k) {
        if (horizon < 1 || horizon >= layers) {
            throw new IllegalArgumentException("horizon is " + horizon + " but must be in 1.." + (layers - 1)
                    + " (the model has " + layers + " MoE layers)");
        }
        if (k < 1) throw new IllegalArgumentException("k is " + k + " but must be >= 1");
        PredictorEvaluation ev = new PredictorEvaluation(p.name(), horizon, k);
        for (TokenSample s : samples) {
            if (p.needsHidden() && s.hidden() == null) {
                throw new IllegalArgumentException(p.name() + " needs hidden states; evaluate it with --model");
            }
            Counts[] dom = ev.byDomain.computeIfAbsent(s.domain(), d -> newCounts(horizon));
            ev.tokens++;
            ev.tokensByDomain.merge(s.domain(), 1L, Long::sum);
            for (int l = 0; l < layers - 1; l++) {
                TokenContext ctx = s.context(l);
                long t0 = System.nanoTime();
                float[][] scores = p.predict(ctx, horizon);
                ev.nanos += System.nanoTime() - t0;
                ev.calls++;
                for (int j = 0; j < scores.length; j++) {
                    int[] truth = s.path()[l + 1 + j];
                    ev.calibrate(j, scores[j], truth);
                    int[] pred = topK(scores[j], k);
                    int hits = 0, actual = 0;
                    for (int e : truth) {
                        if (e < 0) continue;
                        actual++;
                        for (int q : pred) if (q == e) { hits++; break; }
                    }
                    for (Counts[] c : List.of(dom, ev.all)) {
                        c[j].hits += hits;
                        c[j].predicted += pred.length;
                        c[j].actual += actual;
                    }
                }
            }
        }
        return ev;
    }

    /** Counts how often the expert ranked r-th was used: the reliability of ranks as probabilities. */
    private void calibrate(int j, float[] scores, int[] truth) {
        experts = scores.length;
        int ranks = 2 * k;
        int[] top = topK(scores, ranks);
        int inTop = 0, actual = 0;
        for (int e : truth) if (e >= 0) actual++;
        for (int r = 0; r < top.length; r++) {
            rankTotal[j][r]++;
            for (int e : truth) if (e == top[r]) { rankHits[j][r]++; inTop++; break; }
        }
        rankTotal[j][ranks] += scores.length - top.length;
        rankHits[j][ranks] += actual - inTop;
    }

    /** P(used | ranked r-th, 0-based) at a distance; r = 2K: any rank below the first 2K. */
    public double rankProbability(int distance, int rank) {
        long n = rankTotal[distance - 1][rank];
        return n == 0 ? 0 : (double) rankHits[distance - 1][rank] / n;
    }

    /**
     * The Brier score of the ranks taken as probabilities (each expert's probability: how often its rank was used),
     * and of the base rate alone: how much the ranking is worth as a probability, per distance (lower is better).
     */
    public double[] brier(int distance) {
        long n = 0, h = 0;
        double sum = 0;
        for (int r = 0; r <= 2 * k; r++) {
            long nb = rankTotal[distance - 1][r], hb = rankHits[distance - 1][r];
            if (nb == 0) continue;
            double f = (double) hb / nb;
            sum += nb * f * (1 - f);
            n += nb;
            h += hb;
        }
        double base = n == 0 ? 0 : (double) h / n;
        return new double[]{n == 0 ? 0 : sum / n, base * (1 - base)};
    }

    /** The calibration as a Markdown table: P(used | rank) per distance, and the Brier scores. */
    public String calibrationTable() {
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT,
                "%s calibration: P(used | rank) at each distance (ranks 1..%d, then the other %d experts) and the Brier score "
                        + "of ranks as probabilities against the base rate's (lower is better)%n", predictor, 2 * k, Math.max(0, experts - 2 * k)));
        sb.append("| distance |");
        for (int r = 1; r <= 2 * k; r++) sb.append(" rank ").append(r).append(" |");
        sb.append(" rest | Brier | base-rate Brier |\n|---|");
        for (int r = 0; r <= 2 * k + 2; r++) sb.append("---|");
        sb.append('\n');
        for (int d = 1; d <= horizon; d++) {
            sb.append("| ").append(d).append(" |");
            for (int r = 0; r <= 2 * k; r++) sb.append(String.format(Locale.ROOT, " %.3f |", rankProbability(d, r)));
            double[] b = brier(d);
            sb.append(String.format(Locale.ROOT, " %.4f | %.4f |%n", b[0], b[1]));
        }
        return sb.toString();
    }

    /** Indices of the k largest scores, largest first, ties to the lower index. */
    public static int[] topK(float[] s, int k) { return TopK.of(s, k); }

    public String predictor() { return predictor; }

    public Counts at(int distance) { return all[distance - 1]; }

    public Counts at(String domain, int distance) { return byDomain.get(domain)[distance - 1]; }

    public List<String> domains() { return new ArrayList<>(byDomain.keySet()); }

    /** Nanoseconds per token per layer (one predict call covers all distances). */
    public double nanosPerTokenPerLayer() { return calls == 0 ? 0 : (double) nanos / calls; }

    public long tokens() { return tokens; }

    /** A Markdown table: one row per domain and "all", precision/recall per distance. */
    public String table() {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%s, K=%d: precision / recall at distance 1..%d; %.0f ns per token per layer%n",
                predictor, k, horizon, nanosPerTokenPerLayer()));
        sb.append("| domain | tokens |");
        for (int d = 1; d <= horizon; d++) sb.append(" d=").append(d).append(" |");
        sb.append('\n').append("|---|---|");
        for (int d = 1; d <= horizon; d++) sb.append("---|");
        sb.append('\n');
        Map<String, Counts[]> rows = new LinkedHashMap<>(byDomain);
        rows.put("all", all);
        for (Map.Entry<String, Counts[]> e : rows.entrySet()) {
            sb.append("| ").append(e.getKey()).append(" | ");
            sb.append(e.getKey().equals("all") ? tokens : tokensByDomain.get(e.getKey())).append(" |");
            for (Counts c : e.getValue()) {
                sb.append(String.format(Locale.ROOT, " %.3f / %.3f |", c.precision(), c.recall()));
            }
            sb.append('\n');
        }
        return sb.toString();
    }

    /** The figures as a JSON-ready map. */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("predictor", predictor);
        m.put("k", k);
        m.put("horizon", horizon);
        m.put("tokens", tokens);
        m.put("ns_per_token_per_layer", nanosPerTokenPerLayer());
        m.put("all", countsList(all));
        List<Map<String, Object>> cal = new ArrayList<>();
        for (int d = 1; d <= horizon; d++) {
            Map<String, Object> c = new LinkedHashMap<>();
            c.put("distance", d);
            List<Double> byRank = new ArrayList<>();
            for (int r = 0; r <= 2 * k; r++) byRank.add(rankProbability(d, r));
            c.put("p_used_by_rank", byRank);
            c.put("brier", brier(d)[0]);
            c.put("base_rate_brier", brier(d)[1]);
            cal.add(c);
        }
        m.put("calibration", cal);
        Map<String, Object> dom = new LinkedHashMap<>();
        byDomain.forEach((d, c) -> {
            Map<String, Object> dm = new LinkedHashMap<>();
            dm.put("tokens", tokensByDomain.get(d));
            dm.put("distances", countsList(c));
            dom.put(d, dm);
        });
        m.put("domains", dom);
        return m;
    }

    private static List<Map<String, Object>> countsList(Counts[] cs) {
        List<Map<String, Object>> out = new ArrayList<>();
        for (int d = 0; d < cs.length; d++) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("distance", d + 1);
            m.put("precision", cs[d].precision());
            m.put("recall", cs[d].recall());
            m.put("predictions", cs[d].predicted);
            out.add(m);
        }
        return out;
    }
}
