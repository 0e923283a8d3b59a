/**
 * The expert cache: a bounded fast tier (GPU memory, or an off-heap RAM budget) over the slow tier (the mmap'd
 * checkpoint or host memory), a transfer engine with a modelled link (GB/s, latency), policies (LRU, LFU,
 * predictive, Belady bound) and the prefetcher the predictor drives. The runtime reaches it through its
 * ExpertStore seam (moe-runtime, org.moeserve.runtime.engine.ExpertStore): acquire pins an expert's weights,
 * release unpins them.
 */
package org.moeserve.cache;
