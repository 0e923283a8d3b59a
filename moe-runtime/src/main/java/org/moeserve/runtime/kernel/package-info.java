/**
 * The hot math: Vector API kernels, each with a scalar twin, over BF16/F16/F32 weights in memory segments and
 * fp32 activations; and {@link org.moeserve.runtime.kernel.Parallel}, the fixed worker pool that splits products
 * by output row. Kernels are deterministic to the bit (see {@link org.moeserve.runtime.kernel.Kernels}).
 */
package org.moeserve.runtime.kernel;
