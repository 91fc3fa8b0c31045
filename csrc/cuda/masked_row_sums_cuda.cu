// CUDA kernel of masked_row_sums: a block row per (neuron, beam) row and a thread per concept column;
// every thread walks the row's set bits (the same words for the whole block, read through the cache)
// and adds its column of each region's table row.
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../masked_row_sums.h"

namespace invert_fast {
namespace {

constexpr int kThreads = 128;

__global__ void masked_row_sums_kernel(const uint64_t* __restrict__ words,   // [Db * B, W]
                                       const bool* __restrict__ outside,     // [Db * B]
                                       const int64_t* __restrict__ weights,  // [G, Db]
                                       const uint8_t* __restrict__ table,    // [G, K]
                                       int64_t* __restrict__ out,            // [Db * B, K]
                                       int64_t B, int64_t W, int64_t G, int64_t K, int64_t Db) {
  const int64_t r = blockIdx.x;
  const int64_t c = static_cast<int64_t>(blockIdx.y) * kThreads + threadIdx.x;
  if (c >= K) return;
  const int64_t d = r / B;
  int64_t acc = 0;
  for_each_row_region(words + r * W, W, G, outside[r],
                      [&](int64_t g) { acc += weights[g * Db + d] * static_cast<int64_t>(table[g * K + c]); });
  out[r * K + c] = acc;
}

}  // namespace

at::Tensor masked_row_sums_cuda(const at::Tensor& words, const at::Tensor& outside, const at::Tensor& weights,
                                const at::Tensor& table) {
  check_masked_row_sums_input(words, outside, weights, table);
  TORCH_INTERNAL_ASSERT(words.device().is_cuda());
  const c10::cuda::OptionalCUDAGuard guard(words.device());
  const int64_t D = words.size(0), B = words.size(1), W = words.size(2), G = weights.size(0), K = table.size(1);
  at::Tensor out = at::zeros({D, B, K}, words.options());
  if (D * B == 0 || K == 0 || G == 0) return out;
  const int64_t col_blocks = (K + kThreads - 1) / kThreads;
  TORCH_CHECK_VALUE(D * B <= 2147483647 && col_blocks <= 65535, "masked_row_sums: CUDA grid limits exceeded, got ",
                    D * B, " rows and K = ", K);
  const at::Tensor wc = words.contiguous(), oc = outside.contiguous(), gc = weights.contiguous(),
                   tc = table.contiguous();
  const dim3 grid(static_cast<unsigned>(D * B), static_cast<unsigned>(col_blocks));
  masked_row_sums_kernel<<<grid, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      reinterpret_cast<const uint64_t*>(wc.const_data_ptr<int64_t>()), oc.const_data_ptr<bool>(),
      gc.const_data_ptr<int64_t>(), static_cast<const uint8_t*>(tc.const_data_ptr()), out.data_ptr<int64_t>(), B, W, G,
      K, D);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

TORCH_LIBRARY_IMPL(invert_fast, CUDA, m) { m.impl("masked_row_sums", &masked_row_sums_cuda); }

}  // namespace invert_fast
