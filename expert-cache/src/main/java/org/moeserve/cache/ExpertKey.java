package org.moeserve.cache;

/** A logical expert: expert {@code expert} of MoE layer {@code layer}. */
public record ExpertKey(int layer, int expert) {
    public ExpertKey {
        if (layer < 0 || expert < 0) {
            throw new IllegalArgumentException("expert key (" + layer + ", " + expert + ") must have layer and expert >= 0");
        }
    }

    /** Spread over all bits (the record's default, 31 l + e, collides across layers; hash tables index by low bits). */
    @Override
    public int hashCode() { return (layer * 1_000_003 + expert) * 0x9E3779B9; }

    @Override
    public boolean equals(Object o) { return o instanceof ExpertKey k && k.layer == layer && k.expert == expert; }

    @Override
    public String toString() { return "L" + layer + "E" + expert; }
}
