/**
 * The hot math: Vector API kernels, each with a scalar twin, over weights in memory segments (BF16/F16/F32 in
 * {@link org.moeserve.runtime.kernel.Kernels}; llama.cpp's block formats Q8_0, Q4_0, Q5_0, Q4_K, Q6_K in
 * {@link org.moeserve.runtime.kernel.QuantKernels}, whose scalar twin is the reference decoder
 * {@link org.moeserve.runtime.model.Blocks}) and fp32 activations; and {@link org.moeserve.runtime.kernel.Parallel},
 * the fixed worker pool that splits products by output row. Kernels are deterministic to the bit (see
 * {@link org.moeserve.runtime.kernel.Kernels}): every output has one summation order, whether the single-row decode
 * kernel or a register tile (prefill, batches, expert groups) computes it. Q4_K and Q6_K rows are read as int lanes and
 * their values come out in an order of their own within each 256-value super-block, so x is reordered to match once
 * per input ({@link org.moeserve.runtime.kernel.QuantKernels#kernelInput}); batches of Q4_K, Q8_0 and Q6_K rows run two
 * rows by two inputs, with each output's operations those of its one-input kernel. Speed is measured by
 * {@code moe bench bandwidth} (triad, matvec, FMA peak, the tile's GFLOP/s), {@code moe bench quant} (each block
 * format) and {@code moe bench shape} (a real-shaped checkpoint), never in tests.
 */
package org.moeserve.runtime.kernel;
