package org.moeserve.runtime.engine;

import org.moeserve.cache.prefetch.Prefetcher;

/**
 * Live offload's side of the {@link Prefetcher} (expert-cache's, the one cache-sim replays with): as each MoE layer
 * finishes, the prefetcher is told the layer is done and then, row by row, what is known of each token.
 */
public final class LivePrefetch implements MoeLayerListener {
    private final Prefetcher prefetcher;

    public LivePrefetch(Prefetcher prefetcher) { this.prefetcher = prefetcher; }

    public Prefetcher prefetcher() { return prefetcher; }

    public LivePrefetch attach(Engine e) {
        e.addListener(this);
        return this;
    }

    @Override
    public boolean needsHidden() { return prefetcher.predictor().needsHidden(); }

    @Override
    public void onMoeLayer(Routing rt, int m) {
        long now = System.nanoTime();
        prefetcher.layerDone(m, now);
        for (int r = 0; r < rt.rows(); r++) prefetcher.afterLayer(rt.context(r, m), now, r);
    }
}
