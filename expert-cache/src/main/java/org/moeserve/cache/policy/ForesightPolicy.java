package org.moeserve.cache.policy;

import org.moeserve.cache.ExpertKey;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * Belady's rule with limited foresight: the policy knows the true accesses of the current step and the next
 * {@code steps} steps, and nothing beyond. An expert whose next use falls inside that window is kept by Belady's
 * rule (the one used latest leaves first); one whose next use lies beyond it is known only to be farther than every
 * known one, so those leave first, ordered among themselves by the {@link PredictivePolicy}'s estimate (frequency and
 * layer distance). Not an online policy: a reference for what an online one could reach if a predictor told it the
 * whole routing of the next {@code steps} tokens. Decode cannot know a token's routing before the token exists, so
 * {@code belady:1} is already beyond any predictor, and {@code belady:0} (the rest of the current token known) is what
 * a perfect within-token predictor gives eviction.
 *
 * <p>As with {@link BeladyPolicy}, the cache's access counter is the position in the sequence. An evictable
 * expert's next use cannot change until it is accessed, so each is filed once: beyond the window, and moved into it
 * when the current step comes within {@code steps} of its next use.
 */
public final class ForesightPolicy implements EvictionPolicy {
    private final BeladyPolicy exact;
    private final int[] stepOf;
    private final int steps;
    private final PredictivePolicy beyond;
    private final OrderedCandidates known = new OrderedCandidates(); // lowest first: -(next use)
    private final Map<ExpertKey, Long> revealAt = new HashMap<>(); // evictable and beyond the window -> step it enters
    private final PriorityQueue<Reveal> reveals = new PriorityQueue<>((a, b) -> Long.compare(a.at, b.at));
    private long accesses;

    private record Reveal(long at, ExpertKey key) {}

    /**
     * @param future the whole access sequence, in replay order
     * @param stepOf the step (token, or batch step) of each access in {@code future}
     * @param steps  how many steps past the current one the policy sees
     */
    public ForesightPolicy(List<ExpertKey> future, int[] stepOf, int steps, int layers) {
        if (stepOf.length != future.size()) {
            throw new IllegalArgumentException("stepOf has " + stepOf.length + " entries for " + future.size() + " accesses");
        }
        if (steps < 0) throw new IllegalArgumentException("foresight is " + steps + " steps but must be >= 0");
        this.exact = new BeladyPolicy(future);
        this.stepOf = stepOf;
        this.steps = steps;
        this.beyond = new PredictivePolicy(layers);
    }

    @Override
    public String name() { return "belady:" + steps; }

    /** How many steps past the current one the policy sees. */
    public int steps() { return steps; }

    private long currentStep() { return accesses == 0 ? 0 : stepOf[(int) Math.min(accesses - 1, stepOf.length - 1)]; }

    @Override
    public void onAccess(ExpertKey k, long tick) {
        accesses++;
        exact.onAccess(k, tick);
        beyond.onAccess(k, tick);
        long now = currentStep();
        while (!reveals.isEmpty() && reveals.peek().at <= now) {
            Reveal r = reveals.poll();
            ExpertKey e = r.key;
            Long at = revealAt.get(e);
            if (at == null || at != r.at) continue; // no longer evictable, or filed again since
            revealAt.remove(e);
            beyond.onUnevictable(e);
            known.put(e, -exact.nextUse(e), 0);
        }
    }

    @Override
    public void onEvictable(ExpertKey k) {
        long next = exact.nextUse(k);
        long at = next >= stepOf.length ? Long.MAX_VALUE : stepOf[(int) next] - (long) steps;
        if (at <= currentStep()) {
            known.put(k, -next, 0);
        } else {
            revealAt.put(k, at);
            if (at != Long.MAX_VALUE) reveals.add(new Reveal(at, k));
            beyond.onEvictable(k);
        }
    }

    @Override
    public void onUnevictable(ExpertKey k) {
        known.remove(k);
        if (revealAt.remove(k) != null) beyond.onUnevictable(k);
    }

    @Override
    public ExpertKey victim(ExpertKey incoming, boolean forPrefetch, long tick) {
        ExpertKey far = beyond.victim(incoming, false, tick);
        if (far != null) return far;
        ExpertKey best = known.first();
        if (forPrefetch && best != null && exact.nextUse(best) <= exact.nextUse(incoming)) return null;
        return best;
    }
}
