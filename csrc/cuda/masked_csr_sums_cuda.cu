// CUDA kernel of masked_csr_sums: a thread per (neuron, beam) row walks the row's set bits and adds each
// region's weight to the concepts it holds; rows are disjoint, so there are no atomics and the integer
// sums equal the CPU's.
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../csr_gather_sum.h"
#include "../masked_csr_sums.h"

namespace invert_fast {
namespace {

constexpr int kThreads = 128;

__global__ void masked_csr_sums_kernel(const uint64_t* __restrict__ words,    // [Db * B, W]
                                       const bool* __restrict__ outside,      // [Db * B]
                                       const int64_t* __restrict__ weights,   // [G, Db]
                                       const int64_t* __restrict__ indptr,    // [G + 1]
                                       const int64_t* __restrict__ concepts,  // [nnz]
                                       int64_t* __restrict__ out,             // [Db * B, K]
                                       int64_t rows, int64_t B, int64_t W, int64_t G, int64_t K, int64_t Db) {
  const int64_t r = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x;
  if (r >= rows) return;
  const int64_t d = r / B;
  int64_t* orow = out + r * K;
  for_each_row_region(words + r * W, W, G, outside[r], [&](int64_t g) {
    const int64_t v = weights[g * Db + d];
    for (int64_t t = indptr[g]; t < indptr[g + 1]; ++t) orow[concepts[t]] += v;
  });
}

}  // namespace

at::Tensor masked_csr_sums_cuda(const at::Tensor& words, const at::Tensor& outside, const at::Tensor& weights,
                                const at::Tensor& indptr, const at::Tensor& concepts, int64_t K) {
  check_masked_csr_sums_input(words, outside, weights, indptr, concepts, K);
  check_csr(indptr, concepts, K);
  TORCH_INTERNAL_ASSERT(words.device().is_cuda());
  const c10::cuda::OptionalCUDAGuard guard(words.device());
  const int64_t D = words.size(0), B = words.size(1), W = words.size(2), G = weights.size(0);
  at::Tensor out = at::zeros({D, B, K}, words.options());
  if (D * B == 0 || K == 0 || G == 0) return out;
  const at::Tensor wc = words.contiguous(), oc = outside.contiguous(), gc = weights.contiguous(),
                   ic = indptr.contiguous(), cc = concepts.contiguous();
  const int64_t rows = D * B;
  const unsigned blocks = static_cast<unsigned>((rows + kThreads - 1) / kThreads);
  masked_csr_sums_kernel<<<blocks, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      reinterpret_cast<const uint64_t*>(wc.const_data_ptr<int64_t>()), oc.const_data_ptr<bool>(),
      gc.const_data_ptr<int64_t>(), ic.const_data_ptr<int64_t>(), cc.const_data_ptr<int64_t>(), out.data_ptr<int64_t>(),
      rows, B, W, G, K, D);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

TORCH_LIBRARY_IMPL(invert_fast, CUDA, m) { m.impl("masked_csr_sums", &masked_csr_sums_cuda); }

}  // namespace invert_fast
