package org.moeserve.runtime.engine;

import org.moeserve.cache.ExpertCache;
import org.moeserve.cache.ExpertKey;
import org.moeserve.cache.ExpertSource;
import org.moeserve.runtime.model.ExpertWeights;
import org.moeserve.runtime.model.MoeModel;
import org.moeserve.runtime.model.Tensor;

import java.lang.foreign.MemorySegment;

/**
 * Experts served from the expert cache's fast tier: the engine's {@link ExpertStore} over an {@link ExpertCache}.
 * A slot holds one expert as [gate | up | down], byte copies of the checkpoint's tensors, so the weights (and
 * the output) are exactly those of the all-resident run.
 */
public final class CachedExpertStore implements ExpertStore {
    private final MoeModel model;
    private final ExpertCache cache;

    public CachedExpertStore(MoeModel model, ExpertCache cache) {
        this.model = model;
        this.cache = cache;
    }

    /** The model's checkpoint as the cache's slow tier. */
    public static ExpertSource source(MoeModel model) {
        return new ExpertSource() {
            @Override
            public long expertBytes() { return model.expertBytes(); }

            @Override
            public void copyTo(ExpertKey k, MemorySegment dst) {
                ExpertWeights w = model.expert(k.layer(), k.expert());
                long off = 0;
                for (Tensor t : new Tensor[]{w.gate(), w.up(), w.down()}) {
                    MemorySegment.copy(t.data(), 0, dst, off, t.data().byteSize());
                    off += t.data().byteSize();
                }
            }
        };
    }

    public ExpertCache cache() { return cache; }

    @Override
    public ExpertWeights acquire(int moeLayer, int expert) {
        MemorySegment slot = cache.acquire(new ExpertKey(moeLayer, expert));
        ExpertWeights src = model.expert(moeLayer, expert); // shapes and dtypes only
        long g = src.gate().data().byteSize(), u = src.up().data().byteSize(), d = src.down().data().byteSize();
        return new ExpertWeights(
                new Tensor(src.gate().name(), src.gate().dtype(), src.gate().shape(), slot.asSlice(0, g)),
                new Tensor(src.up().name(), src.up().dtype(), src.up().shape(), slot.asSlice(g, u)),
                new Tensor(src.down().name(), src.down().dtype(), src.down().shape(), slot.asSlice(g + u, d)));
    }

    @Override
    public void release(int moeLayer, int expert) { cache.release(new ExpertKey(moeLayer, expert)); }

    @Override
    public void reserve(int moeLayer, int[] experts) {
        java.util.List<ExpertKey> keys = new java.util.ArrayList<>(experts.length);
        for (int e : experts) keys.add(new ExpertKey(moeLayer, e));
        cache.reserve(keys);
    }
}
