// CUDA kernel of pair_sums: a block per (region, neuron); its threads add the weight to every pair of
// concepts holding the region, with 64-bit integer atomics (exact and order-independent, so the
// result equals the CPU's bit for bit).
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../csr_gather_sum.h"
#include "../pair_sums.h"

namespace invert_fast {
namespace {

constexpr int kThreads = 256;

__global__ void pair_sums_kernel(const int64_t* __restrict__ weights,   // [G, Db]
                                 const int64_t* __restrict__ indptr,    // [G + 1]
                                 const int64_t* __restrict__ concepts,  // [nnz]
                                 int64_t* __restrict__ out,             // [Db, K, K]
                                 int64_t Db, int64_t K) {
  const int64_t g = blockIdx.x, d = blockIdx.y;
  const int64_t v = weights[g * Db + d];
  if (v == 0) return;
  const int64_t p0 = indptr[g], len = indptr[g + 1] - p0;
  unsigned long long* slab = reinterpret_cast<unsigned long long*>(out + d * K * K);
  for (int64_t t = threadIdx.x; t < len * len; t += kThreads) {
    const int64_t i = concepts[p0 + t / len], j = concepts[p0 + t % len];
    atomicAdd(slab + i * K + j, static_cast<unsigned long long>(v));
  }
}

}  // namespace

at::Tensor pair_sums_cuda(const at::Tensor& weights, const at::Tensor& indptr, const at::Tensor& concepts, int64_t K) {
  check_pair_sums_input(weights, indptr, concepts, K);
  TORCH_INTERNAL_ASSERT(weights.device().is_cuda());
  const c10::cuda::OptionalCUDAGuard guard(weights.device());
  check_csr(indptr, concepts, K);
  const int64_t G = weights.size(0), D = weights.size(1);
  at::Tensor out = at::zeros({D, K, K}, weights.options());
  if (D == 0 || K == 0 || G == 0) return out;
  TORCH_CHECK_VALUE(G <= 2147483647 && D <= 65535, "pair_sums: CUDA grid limits exceeded, got G = ", G,
                    " and Db = ", D);
  const at::Tensor w = weights.contiguous(), ptr = indptr.contiguous(), idx = concepts.contiguous();
  const dim3 grid(static_cast<unsigned>(G), static_cast<unsigned>(D));
  pair_sums_kernel<<<grid, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      w.const_data_ptr<int64_t>(), ptr.const_data_ptr<int64_t>(), idx.const_data_ptr<int64_t>(),
      out.data_ptr<int64_t>(), D, K);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

TORCH_LIBRARY_IMPL(invert_fast, CUDA, m) { m.impl("pair_sums", &pair_sums_cuda); }

}  // namespace invert_fast
