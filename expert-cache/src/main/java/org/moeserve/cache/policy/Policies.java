package org.moeserve.cache.policy;

import org.moeserve.cache.ExpertKey;

import java.util.List;

/** Policies by the names users pass (--policy). */
public final class Policies {
    private Policies() {}

    public static final List<String> NAMES = List.of("lru", "lfu", "pin", "predictive", "belady", "oracle", "belady:N", "oracle:N");

    /** Whether {@code name} names a policy: one of {@link #NAMES}, with belady:N for any N >= 0. */
    public static boolean known(String name) {
        return NAMES.contains(name) && !name.endsWith(":N") || foresight(name) >= 0;
    }

    /** N of belady:N or oracle:N, or -1 when name is not of that form. */
    static int foresight(String name) {
        int colon = name.indexOf(':');
        if (colon < 0 || !(name.startsWith("belady:") || name.startsWith("oracle:"))) return -1;
        try {
            return Math.max(-1, Integer.parseInt(name.substring(colon + 1)));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** As below, for policies that need no step boundaries (all but belady:N). */
    public static EvictionPolicy create(String name, int layers, int slots, int topK, long[][] load, List<ExpertKey> future) {
        return create(name, layers, slots, topK, load, future, null);
    }

    /**
     * @param topK   the most experts one layer (of one step) uses at once: the slots pin leaves free
     * @param load   a load profile load[layer][expert] (pin needs it; others ignore it)
     * @param future the future access sequence (belady, belady:N and oracle need it; null when unknown)
     * @param stepOf the step of each access in {@code future} (belady:N and oracle:N need it; oracle:N is belady:N's
     *               eviction, the replay prefetching the true experts of the next layers)
     */
    public static EvictionPolicy create(String name, int layers, int slots, int topK, long[][] load, List<ExpertKey> future,
                                        int[] stepOf) {
        int n = foresight(name);
        if (n >= 0) {
            if (future == null || stepOf == null) {
                throw new IllegalArgumentException(name + " needs the future accesses, so it runs only on a recorded trace (moe cache-sim)");
            }
            return new ForesightPolicy(future, stepOf, n, layers);
        }
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
            default -> throw new IllegalArgumentException("--policy is " + name + " but must be one of " + String.join(", ", NAMES)
                    + " (N: steps of foresight, a whole number >= 0)");
        };
    }
}
