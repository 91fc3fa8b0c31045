// CUDA kernel of and_popcount: a 16 x 16 tile of (row of a, row of b) pairs per block, the words of
// one image staged in shared memory; images are split over gridDim.z (each slice adds its partial
// counts with one atomicAdd per pair) so that small A x K still fill the GPU.
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>

#include "../and_popcount.h"

namespace invert_fast {
namespace {

constexpr int kTile = 16;

__global__ void and_popcount_kernel(const unsigned long long* __restrict__ a,  // [N, A, W]
                                    const unsigned long long* __restrict__ b,  // [N, K, W]
                                    unsigned long long* __restrict__ out,      // [A, K]
                                    int64_t N, int64_t A, int64_t K, int64_t W, int64_t images_per_slice) {
  __shared__ unsigned long long sa[kTile][kTile + 1], sb[kTile][kTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t i0 = static_cast<int64_t>(blockIdx.y) * kTile, k0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int64_t n0 = static_cast<int64_t>(blockIdx.z) * images_per_slice;
  const int64_t n1 = n0 + images_per_slice < N ? n0 + images_per_slice : N;
  unsigned long long acc = 0;
  for (int64_t n = n0; n < n1; ++n) {
    for (int64_t w0 = 0; w0 < W; w0 += kTile) {
      // Thread (ty, tx) stages word w0 + tx of row i0 + ty of a and row k0 + ty of b.
      const int64_t w = w0 + tx;
      sa[ty][tx] = (i0 + ty < A && w < W) ? a[(n * A + i0 + ty) * W + w] : 0ull;
      sb[ty][tx] = (k0 + ty < K && w < W) ? b[(n * K + k0 + ty) * W + w] : 0ull;
      __syncthreads();
#pragma unroll
      for (int j = 0; j < kTile; ++j) acc += __popcll(sa[ty][j] & sb[tx][j]);
      __syncthreads();
    }
  }
  if (i0 + ty < A && k0 + tx < K && acc != 0) atomicAdd(out + (i0 + ty) * K + k0 + tx, acc);
}

}  // namespace

at::Tensor and_popcount_cuda(const at::Tensor& a, const at::Tensor& b) {
  check_and_popcount_input(a, b);
  TORCH_INTERNAL_ASSERT(a.device().is_cuda());
  const c10::cuda::OptionalCUDAGuard guard(a.device());
  const int64_t N = a.size(0), A = a.size(1), K = b.size(1), W = a.size(2);
  at::Tensor out = at::zeros({A, K}, a.options());
  if (N == 0 || A == 0 || K == 0 || W == 0) return out;
  const int64_t gx = (K + kTile - 1) / kTile, gy = (A + kTile - 1) / kTile;
  TORCH_CHECK_VALUE(gx <= 2147483647 && gy <= 65535, "and_popcount: CUDA grid limits exceeded, got A = ", A,
                    " and K = ", K);
  // Enough image slices for ~4 blocks per SM, but at least 8 images per slice to keep atomics rare.
  const int64_t sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  const int64_t slices =
      std::max<int64_t>(1, std::min<int64_t>({(4 * sms + gx * gy - 1) / (gx * gy), N / 8 + 1, 65535}));
  const int64_t per_slice = (N + slices - 1) / slices;
  const at::Tensor ac = a.contiguous(), bc = b.contiguous();
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy),
                  static_cast<unsigned>((N + per_slice - 1) / per_slice));
  const dim3 block(kTile, kTile);
  and_popcount_kernel<<<grid, block, 0, at::cuda::getCurrentCUDAStream()>>>(
      reinterpret_cast<const unsigned long long*>(ac.const_data_ptr<int64_t>()),
      reinterpret_cast<const unsigned long long*>(bc.const_data_ptr<int64_t>()),
      reinterpret_cast<unsigned long long*>(out.data_ptr<int64_t>()), N, A, K, W, per_slice);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

TORCH_LIBRARY_IMPL(invert_fast, CUDA, m) { m.impl("and_popcount", &and_popcount_cuda); }

}  // namespace invert_fast
