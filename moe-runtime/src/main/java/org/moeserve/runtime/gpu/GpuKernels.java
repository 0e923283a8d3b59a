package org.moeserve.runtime.gpu;

/**
 * The GPU tier's own kernels, CUDA C compiled by NVRTC at start-up (no build step). Everything else is cuBLAS.
 * <ul>
 *   <li>{@code gemv_bf16}: Y[r][o] = sum_k W[o][k] X[r][k] for up to 8 rows, BF16 weights read straight from an
 *       expert's slot (8 at a time, one warp per output), fp32 activations and sums: a decode step's expert
 *       product reads each weight once, at the memory's speed.</li>
 *   <li>{@code widen_bf16}: BF16 to fp32, for larger row groups (prefill), which then go through cuBLAS SGEMM.</li>
 *   <li>{@code swiglu}: g = silu(g) * u, silu in double as the CPU kernel computes it.</li>
 * </ul>
 * The arithmetic is fp32 as on the CPU, but summed in another order: logits agree to rounding, not to the bit.
 */
final class GpuKernels {
    private GpuKernels() {}

    /** Rows one gemv launch takes (more: cuBLAS). */
    static final int GEMV_ROWS = 8;
    /** Threads per block; gemv: one warp per output, so 8 outputs per block. */
    static final int BLOCK = 256;

    static final String[] NAMES = {"gemv_bf16", "widen_bf16", "swiglu"};

    static final String SOURCE = """
            #define MAXR 8
            extern "C" __global__ void gemv_bf16(const unsigned short* __restrict__ W, const float* __restrict__ X,
                                                 float* __restrict__ Y, int outDim, int inDim, int rows) {
                int o = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
                int lane = threadIdx.x & 31;
                if (o >= outDim) return;
                const unsigned short* w = W + (unsigned long long) o * inDim;
                float acc[MAXR];
                #pragma unroll
                for (int r = 0; r < MAXR; r++) acc[r] = 0.f;
                for (int k = lane * 8; k < inDim; k += 256) {
                    uint4 p = *reinterpret_cast<const uint4*>(w + k);
                    float wv[8];
                    wv[0] = __uint_as_float(p.x << 16); wv[1] = __uint_as_float(p.x & 0xffff0000u);
                    wv[2] = __uint_as_float(p.y << 16); wv[3] = __uint_as_float(p.y & 0xffff0000u);
                    wv[4] = __uint_as_float(p.z << 16); wv[5] = __uint_as_float(p.z & 0xffff0000u);
                    wv[6] = __uint_as_float(p.w << 16); wv[7] = __uint_as_float(p.w & 0xffff0000u);
                    #pragma unroll
                    for (int r = 0; r < MAXR; r++) {
                        if (r < rows) {
                            const float4* x = reinterpret_cast<const float4*>(X + (unsigned long long) r * inDim + k);
                            float4 a = x[0], b = x[1];
                            acc[r] += wv[0] * a.x + wv[1] * a.y + wv[2] * a.z + wv[3] * a.w
                                    + wv[4] * b.x + wv[5] * b.y + wv[6] * b.z + wv[7] * b.w;
                        }
                    }
                }
                #pragma unroll
                for (int r = 0; r < MAXR; r++) {
                    float v = acc[r];
                    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
                    if (lane == 0 && r < rows) Y[(unsigned long long) r * outDim + o] = v;
                }
            }

            extern "C" __global__ void widen_bf16(const unsigned short* __restrict__ in, float* __restrict__ out, long long n) {
                for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
                    out[i] = __uint_as_float(((unsigned int) in[i]) << 16);
                }
            }

            extern "C" __global__ void swiglu(float* __restrict__ g, const float* __restrict__ u, long long n) {
                for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
                    double x = g[i];
                    g[i] = (float) (x / (1.0 + exp(-x))) * u[i];
                }
            }
            """;
}
