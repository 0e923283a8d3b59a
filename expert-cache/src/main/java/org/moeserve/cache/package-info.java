/**
 * The expert cache: a bounded fast tier (GPU memory, or an off-heap RAM budget) over the slow tier (the mmap'd
 * checkpoint or host memory), a transfer schedule over a modelled link (GB/s, latency), policies (LRU, LFU, pin,
 * predictive, Belady bound) in {@code policy}, and the prefetcher the predictor drives in {@code prefetch} (the one
 * loop live offload and the {@code sim} replay both run). The runtime reaches the cache through its ExpertStore seam
 * (moe-runtime, org.moeserve.runtime.engine.ExpertStore): acquire pins an expert's weights, release unpins them.
 * Layers are MoE layers. {@code disk} is a real slow tier: direct reads of checkpoint files (FFM {@code open}/{@code
 * pread} with {@code O_DIRECT}) and the probe that measures the disk as a link; with {@code Config.readers > 0} an
 * expert has arrived when its bytes have, and the (measured) link model only guides prefetch decisions.
 */
package org.moeserve.cache;
