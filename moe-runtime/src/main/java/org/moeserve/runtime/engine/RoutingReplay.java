package org.moeserve.runtime.engine;

import org.moeserve.routing.Router;
import org.moeserve.routing.TraceReader;
import org.moeserve.routing.TraceRecord;
import org.moeserve.runtime.model.ModelConfig;

import java.util.List;

/**
 * Router decisions replayed from a moe-trace/1 file instead of computed by the gates, so that a random-weight
 * checkpoint (which routes nearly every token to the same few experts) runs with the routing of a trained model: the
 * expert cache, the disk tier and the prefetcher then see real locality. Row r of sequence s at position p takes the
 * path of the trace's sequence (s mod sequences) at (p mod its length); MoE layer m takes the trace's layer
 * (m mod trace layers). Expert ids are used as they are, so the trace must route among no more experts than the
 * model has, with the same top-k. The weights are the gate's softmax over the replayed experts (renormalised),
 * so the arithmetic stays the model's own. Rollout routing replay in RL serving is the same idea.
 */
public final class RoutingReplay {
    private final int[][][][] paths; // [sequence][position][trace layer][k]
    private final int traceLayers;
    private final String source;

    private RoutingReplay(int[][][][] paths, int traceLayers, String source) {
        this.paths = paths;
        this.traceLayers = traceLayers;
        this.source = source;
    }

    /** The trace's routing fitted to {@code c}; one line naming what does not fit and what to do. */
    public static RoutingReplay of(TraceReader.Trace trace, ModelConfig c, String source) {
        var h = trace.header();
        if (h.topK() != c.topK()) {
            throw new IllegalArgumentException(source + " routes top-" + h.topK() + " but the model routes top-" + c.topK()
                    + "; replay a trace of a model with the same top-k");
        }
        if (h.experts() > c.experts()) {
            throw new IllegalArgumentException(source + " routes among " + h.experts() + " experts but the model has "
                    + c.experts() + " per layer; replay a trace of a model with at most as many experts");
        }
        List<TraceRecord> recs = trace.records();
        if (recs.isEmpty()) throw new IllegalArgumentException(source + " holds no sequences to replay");
        int[][][][] paths = new int[recs.size()][][][];
        for (int s = 0; s < paths.length; s++) {
            TraceRecord r = recs.get(s);
            if (r.length() == 0) throw new IllegalArgumentException(source + ": sequence " + r.id() + " is empty");
            for (int[][] pos : r.experts()) {
                for (int[] layer : pos) {
                    for (int e : layer) {
                        if (e < 0) {
                            throw new IllegalArgumentException(source + ": sequence " + r.id()
                                    + " has unknown experts (-1); replay needs every token's full path");
                        }
                    }
                }
            }
            paths[s] = r.experts();
        }
        return new RoutingReplay(paths, h.layers(), source);
    }

    public String source() { return source; }

    /** The experts the trace gives row r at MoE layer m (highest weight first, as recorded). */
    int[] experts(int m, long sequence, int position) {
        int[][][] seq = paths[(int) Math.floorMod(sequence, (long) paths.length)];
        return seq[position % seq.length][m % traceLayers];
    }

    /** MoE layer m's decision for the rows: the replayed experts, weighted by the gate's softmax over them. */
    Router.Decision decide(int m, Routing routing, Router router, float[][] x, int rows) {
        int k = router.topK();
        int[][] idx = new int[rows][];
        float[][] w = new float[rows][k];
        for (int r = 0; r < rows; r++) {
            idx[r] = experts(m, routing.sequence(r), routing.position(r)).clone();
            float[] logits = router.logits(x[r]);
            float max = Float.NEGATIVE_INFINITY;
            for (int e : idx[r]) max = Math.max(max, logits[e]);
            float sum = 0;
            for (int j = 0; j < k; j++) sum += w[r][j] = (float) Math.exp(logits[idx[r][j]] - max);
            for (int j = 0; j < k; j++) w[r][j] /= sum;
        }
        return new Router.Decision(idx, w);
    }
}
