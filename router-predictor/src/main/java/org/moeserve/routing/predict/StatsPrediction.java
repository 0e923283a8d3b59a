package org.moeserve.routing.predict;

import org.moeserve.routing.RoutingStats;

/**
 * The statistics-only predictors on published counts (moe-stats/1), where no per-token paths exist: predict a
 * token's top-1 expert at layer b from its top-1 at layer a. Fitted on one file's counts, scored on another's
 * (the same file: in-domain; another domain: across domains).
 * <ul>
 *   <li>affinity: for top-1 i at a, rank experts j at b by fit's transitions_top1["a->b"][i][j];</li>
 *   <li>popularity: rank experts at b by fit's top-1 load at b, whatever i.</li>
 * </ul>
 * accuracy@K = the share of the test tokens whose top-1 at b is among the K experts ranked first.
 */
public final class StatsPrediction {
    private StatsPrediction() {}

    public record Result(String pair, String predictor, int k, double accuracy, long tokens) {}

    public static Result evaluate(RoutingStats fit, RoutingStats test, String pair, boolean affinity, int k) {
        long[][] f = fit.transitionsTop1().get(pair), t = test.transitionsTop1().get(pair);
        if (f == null || t == null) {
            throw new IllegalArgumentException("transitions_top1[\"" + pair + "\"] is missing from "
                    + (f == null ? "the fit" : "the test") + " statistics; they hold " + fit.transitionsTop1().keySet());
        }
        if (fit.experts() != test.experts()) {
            throw new IllegalArgumentException("fit has " + fit.experts() + " experts but test has " + test.experts()
                    + "; fit and test must be the same model");
        }
        int e = fit.experts();
        float[] popularity = new float[e];
        for (long[] row : f) for (int j = 0; j < e; j++) popularity[j] += row[j];
        long hits = 0, total = 0;
        for (int i = 0; i < e; i++) {
            float[] scores = new float[e];
            for (int j = 0; j < e; j++) scores[j] = affinity ? f[i][j] + 1e-6f * popularity[j] : popularity[j];
            int[] top = PredictorEvaluation.topK(scores, k);
            for (int j = 0; j < e; j++) {
                total += t[i][j];
                for (int q : top) if (q == j) { hits += t[i][j]; break; }
            }
        }
        return new Result(pair, affinity ? "affinity" : "popularity", k, total == 0 ? 0 : (double) hits / total, total);
    }
}
