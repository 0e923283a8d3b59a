package org.moeserve.cache.policy;

import org.moeserve.cache.ExpertKey;

import java.util.HashMap;
import java.util.Map;

/**
 * Evicts the expert whose next use is expected furthest away (Belady's rule with estimates; MoE-Infinity's
 * activation-aware priority). Decode visits the layers in a cycle, so an expert of layer m is next wanted d layers
 * from now, d = (m - current - 1) mod L + 1, and wanted then with probability p; if not, L layers later, and so on:
 * expected wait T = d + L (1/p - 1). p is the probability a predictor gave for that visit when it named the expert,
 * else the expert's use frequency at its layer (an exponential average over that layer's visits, alpha = 0.25:
 * recency and frequency in one number). The expert with the largest T leaves; a prefetch never evicts an expert whose
 * T is no larger than its own. Predictions expire once their layer has run.
 *
 * <p>Within a layer every expert shares d, so candidates sit in per-layer buckets ordered by p (the frequency's
 * decay is applied lazily: the order of experts not used at a visit does not change): a victim is the best of 2 L
 * bucket heads, whatever the number of experts.
 */
public final class PredictivePolicy extends LfuPolicy {
    static final double ALPHA = Double.parseDouble(System.getProperty("moe.policy.alpha", "0.03")), FLOOR = 1e-3;
    private static final double LOG_KEEP = Math.log(1 - ALPHA);

    private record Freq(double f, long visit) {}

    private final int layers;
    private final Map<ExpertKey, Double> predicted = new HashMap<>(); // key -> probability for its next visit
    private final Map<ExpertKey, Freq> freq = new HashMap<>();
    private final long[] visits;
    private final Map<ExpertKey, OrderedCandidates> bucketOf = new HashMap<>();
    private final OrderedCandidates[] plain, named; // per layer: by frequency / by predicted probability, lowest first
    private int currentLayer = -1;

    public PredictivePolicy(int layers) {
        this.layers = layers;
        visits = new long[layers];
        plain = new OrderedCandidates[layers];
        named = new OrderedCandidates[layers];
        for (int l = 0; l < layers; l++) {
            plain[l] = new OrderedCandidates();
            named[l] = new OrderedCandidates();
        }
    }

    @Override
    public String name() { return "predictive"; }

    @Override
    public void onAccess(ExpertKey k, long tick) {
        super.onAccess(k, tick);
        if (k.layer() != currentLayer) { // a new layer visit: predictions for the layer that ran are spent
            if (currentLayer >= 0) {
                int done = currentLayer;
                for (var it = predicted.keySet().iterator(); it.hasNext(); ) {
                    ExpertKey p = it.next();
                    if (p.layer() != done) continue;
                    it.remove();
                    if (bucketOf.containsKey(p)) index(p);
                }
            }
            currentLayer = k.layer();
            visits[currentLayer]++;
        }
        Freq old = freq.get(k);
        long v = visits[k.layer()];
        if (old == null || old.visit < v) freq.put(k, new Freq((1 - ALPHA) * frequency(k) + ALPHA, v)); // once per visit
    }

    /** The use frequency of k at its layer now (decayed over the visits since it was last used). */
    double frequency(ExpertKey k) {
        Freq f = freq.get(k);
        if (f == null) return 0;
        return f.f * Math.pow(1 - ALPHA, visits[k.layer()] - f.visit);
    }

    @Override
    public void onPredicted(ExpertKey k, long tick) { onPredicted(k, tick, 0.5); }

    @Override
    public void onPredicted(ExpertKey k, long tick, double probability) {
        Double old = predicted.get(k);
        double p = old == null ? probability : Math.max(old, probability);
        predicted.put(k, p);
        if (bucketOf.containsKey(k) && (old == null || old != p)) index(k);
    }

    @Override
    public void onEvictable(ExpertKey k) { index(k); }

    @Override
    public void onUnevictable(ExpertKey k) {
        OrderedCandidates b = bucketOf.remove(k);
        if (b != null) b.remove(k);
    }

    private void index(ExpertKey k) {
        onUnevictable(k);
        Double p = predicted.get(k);
        OrderedCandidates b;
        if (p != null) {
            b = named[k.layer()];
            b.put(k, Double.doubleToLongBits(p), 0); // p >= 0: its bits order as the value does
        } else {
            b = plain[k.layer()];
            Freq f = freq.get(k);
            // ln f + visit x ln(1/(1-alpha)): constant while unused, orders as the decayed frequency does
            double g = f == null ? -1e300 : Math.log(Math.max(f.f, 1e-300)) - f.visit * LOG_KEEP;
            b.put(k, sortable(g), 0);
        }
        bucketOf.put(k, b);
    }

    /** A double as a long that orders the same way (negative values included). */
    private static long sortable(double d) {
        long bits = Double.doubleToLongBits(d);
        return bits >= 0 ? bits : bits ^ Long.MAX_VALUE;
    }

    /** Layers until k's layer next runs (1..L; its own layer, having run, is L away). */
    private long distance(ExpertKey k) {
        int cur = Math.max(currentLayer, 0);
        return Math.floorMod(k.layer() - cur - 1, layers) + 1;
    }

    /** Expected layers until k is next used. */
    double expectedWait(ExpertKey k) {
        Double p = predicted.get(k);
        double q = Math.max(FLOOR, Math.min(1, p != null ? p : frequency(k)));
        return distance(k) + layers * (1 / q - 1);
    }

    @Override
    public ExpertKey victim(ExpertKey incoming, boolean forPrefetch, long tick) {
        ExpertKey best = null;
        double far = Double.NEGATIVE_INFINITY;
        for (int l = 0; l < layers; l++) {
            for (OrderedCandidates b : new OrderedCandidates[]{plain[l], named[l]}) {
                ExpertKey c = b.first();
                if (c == null) continue;
                double w = expectedWait(c);
                if (w > far) {
                    far = w;
                    best = c;
                }
            }
        }
        if (forPrefetch && best != null && far <= expectedWait(incoming)) return null;
        return best;
    }
}
