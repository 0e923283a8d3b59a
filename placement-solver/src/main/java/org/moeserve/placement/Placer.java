package org.moeserve.placement;

/** A way to place experts. Implementations in {@code greedy} (baselines, EPLB) and {@code cpsat} (affinity). */
public interface Placer {
    String name();

    PlacementPlan place(PlacementProblem problem);
}
