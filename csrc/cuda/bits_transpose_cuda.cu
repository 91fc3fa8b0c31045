// CUDA kernel of bits_transpose: a thread per (sample, block of 64 concepts) gathers its 64 bits.
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../bits_transpose.h"

namespace invert_fast {
namespace {

constexpr int kThreads = 256;

__global__ void bits_transpose_kernel(const uint64_t* __restrict__ bits, uint64_t* __restrict__ out, int64_t K,
                                      int64_t W, int64_t J, int64_t n) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (t >= n * J) return;
  const int64_t s = t / J, j = t % J;
  uint64_t v = 0;
  for (int64_t u = 0; u < 64 && 64 * j + u < K; ++u) v |= ((bits[(64 * j + u) * W + s / 64] >> (s % 64)) & 1ull) << u;
  out[t] = v;
}

}  // namespace

at::Tensor bits_transpose_cuda(const at::Tensor& bits, int64_t n) {
  check_bits_transpose_input(bits, n);
  TORCH_INTERNAL_ASSERT(bits.device().is_cuda());
  const c10::cuda::OptionalCUDAGuard guard(bits.device());
  const int64_t K = bits.size(0), W = bits.size(1), J = (K + 63) / 64;
  at::Tensor out = at::zeros({n, J}, bits.options());
  if (n == 0 || K == 0) return out;
  const at::Tensor b = bits.contiguous();
  const int64_t blocks = (n * J + kThreads - 1) / kThreads;
  TORCH_CHECK_VALUE(blocks <= 2147483647, "bits_transpose: too many samples for one launch, got ", n);
  bits_transpose_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      reinterpret_cast<const uint64_t*>(b.const_data_ptr<int64_t>()),
      reinterpret_cast<uint64_t*>(out.data_ptr<int64_t>()), K, W, J, n);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

TORCH_LIBRARY_IMPL(invert_fast, CUDA, m) { m.impl("bits_transpose", &bits_transpose_cuda); }

}  // namespace invert_fast
