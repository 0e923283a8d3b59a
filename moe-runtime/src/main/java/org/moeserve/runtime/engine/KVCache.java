package org.moeserve.runtime.engine;

import java.util.Arrays;

/**
 * Keys and values of one sequence, per layer: k[layer] is (capacity, kvHeads * headDim) row-major, fp32.
 * Grows by doubling up to the model's context length.
 */
public final class KVCache {
    final float[][] k;
    final float[][] v;
    private final int kvDim;
    private final int maxPositions;
    private int capacity;

    public KVCache(int layers, int kvDim, int initialCapacity, int maxPositions) {
        this.kvDim = kvDim;
        this.maxPositions = maxPositions;
        this.capacity = Math.max(1, Math.min(initialCapacity, maxPositions));
        this.k = new float[layers][capacity * kvDim];
        this.v = new float[layers][capacity * kvDim];
    }

    public int capacity() { return capacity; }

    void ensureCapacity(int positions) {
        if (positions <= capacity) return;
        int c = Math.min(maxPositions, Math.max(positions, capacity * 2));
        for (int l = 0; l < k.length; l++) {
            k[l] = Arrays.copyOf(k[l], c * kvDim);
            v[l] = Arrays.copyOf(v[l], c * kvDim);
        }
        capacity = c;
    }

    public long byteSize() { return 2L * k.length * capacity * kvDim * Float.BYTES; }
}
