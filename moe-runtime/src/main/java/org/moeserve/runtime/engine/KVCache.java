package org.moeserve.runtime.engine;

import java.util.Arrays;

/**
 * Keys and values of one sequence, per layer: k[layer] is (capacity, kDim) row-major, fp32, v[layer] (capacity, vDim).
 * Grouped-query attention keeps kvHeads x headDim of each; multi-head latent attention keeps the normalised latent
 * (kv_lora_rank) in k and the rotated rope key (qk_rope_head_dim) in v, never the expanded keys and values.
 * Grows by doubling up to the model's context length.
 */
public final class KVCache {
    final float[][] k;
    final float[][] v;
    private final int kDim, vDim;
    private final int maxPositions;
    private int capacity;

    public KVCache(int layers, int kDim, int vDim, int initialCapacity, int maxPositions) {
        this.kDim = kDim;
        this.vDim = vDim;
        this.maxPositions = maxPositions;
        this.capacity = Math.max(1, Math.min(initialCapacity, maxPositions));
        this.k = new float[layers][capacity * kDim];
        this.v = new float[layers][capacity * vDim];
    }

    public int capacity() { return capacity; }

    void ensureCapacity(int positions) {
        if (positions <= capacity) return;
        int c = Math.min(maxPositions, Math.max(positions, capacity * 2));
        for (int l = 0; l < k.length; l++) {
            k[l] = Arrays.copyOf(k[l], c * kDim);
            v[l] = Arrays.copyOf(v[l], c * vDim);
        }
        capacity = c;
    }

    public long byteSize() { return (long) k.length * capacity * (kDim + vDim) * Float.BYTES; }
}
