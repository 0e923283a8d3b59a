package org.moeserve.cache;

/** A logical expert: expert {@code expert} of MoE layer {@code layer}. */
public record ExpertKey(int layer, int expert) {
    public ExpertKey {
        if (layer < 0 || expert < 0) {
            throw new IllegalArgumentException("expert key (" + layer + ", " + expert + ") must have layer and expert >= 0");
        }
    }

    @Override
    public String toString() { return "L" + layer + "E" + expert; }
}
