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
 * rows by two inputs, with each output's operations those of its one-input kernel. Decode forks few times a token: a fork
 * costs tens of microseconds on a VM (waking a parked worker), so products that are ready together share one
 * ({@link org.moeserve.runtime.kernel.Kernels#matvecs}: q/k/v, an FFN's gate and up, a token's experts), products under
 * 2M multiply-adds stay on the caller, and a fork hands out guided pieces (half of what is left over the threads, down to
 * 512 KB of BF16: long streams first, a short wait at the end), and workers spin between the forks of a decode step
 * instead of parking ({@link org.moeserve.runtime.kernel.Parallel#wake}); each thread reads four rows at a time
 * (four memory streams) unless decode steps' own times find one or two faster on the host
 * ({@link org.moeserve.runtime.kernel.ReadPattern}). Speed is measured by
 * {@code moe bench bandwidth} (triad, matvec, FMA peak, the tile's GFLOP/s), {@code moe bench quant} (each block
 * format) and {@code moe bench shape} (a real-shaped checkpoint), never in tests.
 */
package org.moeserve.runtime.kernel;
