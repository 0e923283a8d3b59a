/**
 * The GPU tier ({@code --device gpu}): CUDA through FFM ({@link org.moeserve.runtime.gpu.Cuda}: the runtime, the
 * driver, cuBLAS and NVRTC, opened at run time; no JNI and no native build), and
 * {@link org.moeserve.runtime.gpu.GpuTier}, which runs each MoE layer's routed experts on the GPU from expert slots in
 * GPU memory. The slots are the expert cache's ({@link org.moeserve.cache.ExpertCache.Slots}): its policies, its
 * reservations and its prefetcher decide what is resident, exactly as for the host tiers; a fill is an asynchronous
 * PCIe copy from page-locked host memory on the filling thread's own stream. Design decisions:
 * <ul>
 *   <li>Experts only: attention, norms, routers and shared experts stay on the CPU, so one layer costs one upload of
 *       its routed rows and one download of their outputs (next: attention on the GPU, where it pays).</li>
 *   <li>fp32 arithmetic on BF16 weights, as on the CPU: decode (up to 32 rows an expert) uses our own GEMV kernel, which
 *       reads BF16 straight from the slot; larger groups widen the expert to fp32 and call SGEMM. The summation order
 *       differs from the CPU's, so logits agree to rounding, not to the bit; greedy text is what gpu-check compares.</li>
 *   <li>A GPU that is not there is not an error: {@link org.moeserve.runtime.gpu.Cuda#open} returns a one-line reason
 *       and the CLI prints it as one INFO line and runs on the CPU.</li>
 * </ul>
 */
package org.moeserve.runtime.gpu;
