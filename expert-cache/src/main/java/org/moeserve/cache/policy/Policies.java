package org.moeserve.cache.policy;

import org.moeserve.cache.ExpertKey;

import java.util.List;

/** Policies by the names users pass (--policy). */
public final class Policies {
    private Policies() {}

    public static final List<String> NAMES = List.of("lru", "lfu", "pin", "predictive", "belady", "oracle");

    /**
     * @param topK   the most experts one layer (of one step) uses at once: the slots pin leaves free
     * @param load   a load profile load[layer][expert] (pin needs it; others ignore it)
     * @param future the future access sequence (belady and oracle need it; null when unknown)
     */
    public static EvictionPolicy create(String name, int layers, int slots, int topK, long[][] load, List<ExpertKey> future) {
        return switch (name) {
            case "lru" -> new LruPolicy();
            case "lfu" -> new LfuPolicy();
            case "pin" -> {
                if (load == null) throw new IllegalArgumentException("the pin policy needs a load profile (a trace)");
                yield new PinPolicy(load, Math.max(0, slots - topK));
            }
            case "predictive" -> new PredictivePolicy(layers);
            case "belady", "oracle" -> {
                if (future == null) {
                    throw new IllegalArgumentException(name + " needs the future accesses, so it runs only on a recorded "
                            + "trace (moe cache-sim)");
                }
                yield new BeladyPolicy(future);
            }
            default -> throw new IllegalArgumentException("--policy is " + name + " but must be one of " + String.join(", ", NAMES));
        };
    }
}
