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
    private long calls, nanos, tokens;

    private PredictorEvaluation(String predictor, int horizon, int k) {
        this.predictor = predictor;
        this.horizon = horizon;
        this.k = k;
        this.all = newCounts(horizon);
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
