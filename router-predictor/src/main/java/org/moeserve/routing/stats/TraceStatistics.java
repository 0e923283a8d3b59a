package org.moeserve.routing.stats;

import org.moeserve.routing.RoutingStats;
import org.moeserve.routing.TraceHeader;
import org.moeserve.routing.TraceRecord;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Statistics of expert paths (ExFlow's inter-layer affinity, MoE-Infinity's activation counts):
 * <ul>
 *   <li>load[l][e]: how many top-k selections chose expert e at layer l;</li>
 *   <li>transitions(d)[l][i][j]: tokens that chose i at layer l and j at layer l+d (all top-k pairs);
 *       row-normalised it is P(expert j at l+d | expert i at l);</li>
 *   <li>reuse[l]: of the experts a token chose at layer l, the fraction the previous token of the same sequence
 *       also chose there (temporal locality).</li>
 * </ul>
 * Unknown cells (-1) are skipped.
 */
public final class TraceStatistics {
    private final int layers, experts, topK;
    private final long[][] load;
    private final long[] tokensPerLayer;
    private final long[] reuseHits, reuseTotal;
    private final Map<Integer, long[][][]> transitions = new HashMap<>();
    private final List<TraceRecord> records;

    public TraceStatistics(TraceHeader h, List<TraceRecord> records) {
        this.layers = h.layers();
        this.experts = h.experts();
        this.topK = h.topK();
        this.records = records;
        this.load = new long[layers][experts];
        this.tokensPerLayer = new long[layers];
        this.reuseHits = new long[layers];
        this.reuseTotal = new long[layers];
        for (TraceRecord r : records) {
            int[][][] ex = r.experts();
            for (int t = 0; t < ex.length; t++) {
                for (int l = 0; l < layers; l++) {
                    boolean any = false;
                    for (int e : ex[t][l]) {
                        if (e < 0) continue;
                        load[l][e]++;
                        any = true;
                        if (t > 0) {
                            reuseTotal[l]++;
                            if (contains(ex[t - 1][l], e)) reuseHits[l]++;
                        }
                    }
                    if (any) tokensPerLayer[l]++;
                }
            }
        }
    }

    static boolean contains(int[] a, int v) {
        for (int x : a) if (x == v) return true;
        return false;
    }

    public int layers() { return layers; }

    public int experts() { return experts; }

    public int topK() { return topK; }

    public long[] load(int layer) { return load[layer].clone(); }

    /** load[layer][expert] for every layer (a copy): the popularity predictor's and the pin policy's profile. */
    public long[][] loads() {
        long[][] out = new long[layers][];
        for (int l = 0; l < layers; l++) out[l] = load[l].clone();
        return out;
    }

    public double reuse(int layer) { return reuseTotal[layer] == 0 ? 0 : (double) reuseHits[layer] / reuseTotal[layer]; }

    /** counts[l][i][j] for pairs (l, l+d), l in 0..layers-d-1; computed once per d. */
    public synchronized long[][][] transitions(int d) {
        if (d < 1 || d >= layers) {
            throw new IllegalArgumentException("distance is " + d + " but must be in 1.." + (layers - 1));
        }
        return transitions.computeIfAbsent(d, dist -> {
            long[][][] c = new long[layers - dist][experts][experts];
            for (TraceRecord r : records) {
                for (int[][] tok : r.experts()) {
                    for (int l = 0; l + dist < layers; l++) {
                        for (int i : tok[l]) {
                            if (i < 0) continue;
                            for (int j : tok[l + dist]) if (j >= 0) c[l][i][j]++;
                        }
                    }
                }
            }
            return c;
        });
    }

    /** P(j at l+d | i at l): each row of the counts normalised to 1 (uniform where a row is empty). */
    public double[][] transitionProbabilities(int layer, int d) {
        long[][] c = transitions(d)[layer];
        double[][] p = new double[experts][experts];
        for (int i = 0; i < experts; i++) {
            long sum = 0;
            for (long v : c[i]) sum += v;
            for (int j = 0; j < experts; j++) p[i][j] = sum == 0 ? 1.0 / experts : (double) c[i][j] / sum;
        }
        return p;
    }

    /** As moe-stats/1: load per layer, and top-1 and rank-aligned transitions between consecutive layers. */
    public RoutingStats toStats(String model, String domain) {
        Map<Integer, long[]> loadMap = new HashMap<>(), top1 = new HashMap<>();
        Map<String, long[][]> tTop1 = new HashMap<>(), tRank = new HashMap<>();
        long tokens = 0;
        for (int l = 0; l < layers; l++) {
            loadMap.put(l, load[l].clone());
            top1.put(l, new long[experts]);
            if (l + 1 < layers) {
                tTop1.put(l + "->" + (l + 1), new long[experts][experts]);
                tRank.put(l + "->" + (l + 1), new long[experts][experts]);
            }
        }
        for (TraceRecord r : records) {
            for (int[][] tok : r.experts()) {
                tokens++;
                for (int l = 0; l < layers; l++) {
                    if (tok[l][0] >= 0) top1.get(l)[tok[l][0]]++;
                    if (l + 1 == layers) continue;
                    if (tok[l][0] >= 0 && tok[l + 1][0] >= 0) tTop1.get(l + "->" + (l + 1))[tok[l][0]][tok[l + 1][0]]++;
                    for (int k = 0; k < topK; k++) {
                        if (tok[l][k] >= 0 && tok[l + 1][k] >= 0) tRank.get(l + "->" + (l + 1))[tok[l][k]][tok[l + 1][k]]++;
                    }
                }
            }
        }
        return new RoutingStats(model, layers, experts, topK, domain, tokens, loadMap, top1, tTop1, tRank);
    }
}
