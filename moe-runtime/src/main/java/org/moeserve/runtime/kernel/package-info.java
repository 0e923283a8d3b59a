/**
 * The hot math: Vector API kernels, each with a scalar twin, over BF16/F16/F32 weights in memory segments and
 * fp32 activations; and {@link org.moeserve.runtime.kernel.Parallel}, the fixed worker pool that splits products
 * by output row. Kernels are deterministic to the bit (see {@link org.moeserve.runtime.kernel.Kernels}): every BF16
 * output has one summation order, whether the single-row decode kernel or a 4x2 register tile (prefill, batches,
 * expert groups) computes it. Speed is measured by {@code moe bench bandwidth} (triad, matvec, FMA peak, the tile's
 * GFLOP/s) and {@code moe bench shape} (a real-shaped checkpoint), never in tests.
 */
package org.moeserve.runtime.kernel;
