package org.moeserve.comms;

/**
 * How tokens meet their experts on other devices, per MoE layer.
 * <ul>
 *   <li>{@link #TWO_ALL_TO_ALL}: the usual expert parallelism. A token lives on its home device (where its sequence's
 *   attention runs); each layer it is dispatched to the devices of its k experts and their outputs are combined back
 *   home: two all-to-alls per layer.</li>
 *   <li>{@link #CONTEXT_COHERENT}: ExFlow's scheme. The token does not go home: it is dispatched from wherever it is
 *   to its experts, and the outputs are combined on the device of its first (highest-weight) expert, where it
 *   stays for the next layer; one all-to-all per layer (the partial outputs of its other k-1 experts travel to that
 *   device), and one trip home after the last layer for the logits. ExFlow keeps every token's attention context
 *   on every device so attention can run where the token is; that replication (an all-gather of each new token's
 *   keys and values) is not counted here, as ExFlow does not count it either.</li>
 * </ul>
 */
public enum Scheme {
    TWO_ALL_TO_ALL("two all-to-alls"), CONTEXT_COHERENT("context-coherent (ExFlow)");

    private final String label;

    Scheme(String label) { this.label = label; }

    public String label() { return label; }

    /** From a command-line word: "two", "a2a", "exflow", "coherent". */
    public static Scheme parse(String s) {
        return switch (s.toLowerCase(java.util.Locale.ROOT)) {
            case "two", "a2a", "two-all-to-all", "standard" -> TWO_ALL_TO_ALL;
            case "exflow", "coherent", "context-coherent" -> CONTEXT_COHERENT;
            default -> throw new IllegalArgumentException("dispatch scheme '" + s + "' is unknown; use 'two' (two all-to-alls) or 'exflow' (context-coherent)");
        };
    }
}
