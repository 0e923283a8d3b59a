package org.moeserve.cache.policy;

import org.junit.jupiter.api.Test;
import org.moeserve.cache.ExpertKey;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The policies keep their candidates indexed (O(log n) a choice); this holds each to the choice a full scan of the
 * candidates makes by the policy's own rule, over random event sequences.
 */
class IndexedPolicyTest {
    static final int LAYERS = 5, EXPERTS = 8;

    /** Drives a policy and a scan twin through the same random accesses, predictions and evictable changes. */
    void agree(EvictionPolicy p, Comparator<ExpertKey> scanOrder, Map<ExpertKey, Long> last, Map<ExpertKey, Long> count,
               Set<ExpertKey> predicted, int[] current, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        Set<ExpertKey> evictable = new HashSet<>();
        long tick = 0;
        for (int step = 0; step < 4000; step++) {
            ExpertKey k = new ExpertKey(r.nextInt(LAYERS), r.nextInt(EXPERTS));
            switch (r.nextInt(4)) {
                case 0 -> { // an access: pinned while used, then evictable again
                    if (evictable.remove(k)) p.onUnevictable(k);
                    p.onAccess(k, tick);
                    if (k.layer() != current[0]) {
                        int done = current[0];
                        predicted.removeIf(x -> x.layer() == done);
                        current[0] = k.layer();
                    }
                    last.put(k, tick);
                    count.merge(k, 1L, Long::sum);
                    tick++;
                    evictable.add(k);
                    p.onEvictable(k);
                }
                case 1 -> {
                    p.onPredicted(k, tick);
                    predicted.add(k);
                }
                case 2 -> {
                    if (evictable.remove(k)) p.onUnevictable(k);
                }
                default -> {
                    if (!evictable.isEmpty()) {
                        List<ExpertKey> c = new ArrayList<>(evictable);
                        c.sort(scanOrder);
                        ExpertKey want = c.getFirst();
                        assertEquals(want, p.victim(new ExpertKey(0, 0), false, tick), p.name() + " at step " + step);
                    }
                }
            }
        }
    }

    static final Comparator<ExpertKey> BY_KEY = Comparator.comparingInt(ExpertKey::layer).thenComparingInt(ExpertKey::expert);

    @Test
    void lruLfuAndPredictiveChooseWhatAScanWould() {
        for (long seed = 1; seed <= 5; seed++) {
            Map<ExpertKey, Long> last = new HashMap<>(), count = new HashMap<>();
            agree(new LruPolicy(), Comparator.comparingLong((ExpertKey k) -> last.getOrDefault(k, Long.MIN_VALUE)).thenComparing(BY_KEY),
                    last, count, new HashSet<>(), new int[1], seed);

            Map<ExpertKey, Long> last2 = new HashMap<>(), count2 = new HashMap<>();
            agree(new LfuPolicy(), Comparator.comparingLong((ExpertKey k) -> count2.getOrDefault(k, 0L))
                    .thenComparingLong(k -> last2.getOrDefault(k, Long.MIN_VALUE)).thenComparing(BY_KEY), last2, count2, new HashSet<>(), new int[1], seed);

            // predictive: the victim's expected wait is the largest among the evictable (ties may go either way)
            PredictivePolicy pp = new PredictivePolicy(LAYERS);
            SplittableRandom r = new SplittableRandom(seed);
            Set<ExpertKey> evictable = new HashSet<>();
            long tick = 0;
            for (int step = 0; step < 4000; step++) {
                ExpertKey k = new ExpertKey(r.nextInt(LAYERS), r.nextInt(EXPERTS));
                switch (r.nextInt(4)) {
                    case 0 -> {
                        if (evictable.remove(k)) pp.onUnevictable(k);
                        pp.onAccess(k, tick++);
                        evictable.add(k);
                        pp.onEvictable(k);
                    }
                    case 1 -> pp.onPredicted(k, tick, r.nextDouble());
                    case 2 -> {
                        if (evictable.remove(k)) pp.onUnevictable(k);
                    }
                    default -> {
                        if (evictable.isEmpty()) break;
                        double max = evictable.stream().mapToDouble(pp::expectedWait).max().orElseThrow();
                        ExpertKey v = pp.victim(new ExpertKey(0, 0), false, tick);
                        assertEquals(max, pp.expectedWait(v), 1e-9, "predictive at step " + step);
                    }
                }
            }
        }
    }
}
