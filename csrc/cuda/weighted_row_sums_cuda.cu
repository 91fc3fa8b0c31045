// CUDA kernel of weighted_row_sums: a block row per output row, a thread per column (coalesced reads
// of the table rows).
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../csr_gather_sum.h"
#include "../weighted_row_sums.h"

namespace invert_fast {
namespace {

constexpr int kThreads = 256;

__global__ void weighted_row_sums_kernel(const int64_t* __restrict__ indptr,   // [R + 1]
                                         const int64_t* __restrict__ indices,  // [nnz]
                                         const int64_t* __restrict__ weights,  // [nnz]
                                         const uint8_t* __restrict__ table,    // [G, K]
                                         int64_t* __restrict__ out,            // [R, K]
                                         int64_t K) {
  const int64_t r = blockIdx.x;
  const int64_t c = static_cast<int64_t>(blockIdx.y) * kThreads + threadIdx.x;
  if (c >= K) return;
  int64_t acc = 0;
  for (int64_t j = indptr[r]; j < indptr[r + 1]; ++j) acc += weights[j] * table[indices[j] * K + c];
  out[r * K + c] = acc;
}

}  // namespace

at::Tensor weighted_row_sums_cuda(const at::Tensor& indptr, const at::Tensor& indices, const at::Tensor& weights,
                                  const at::Tensor& table) {
  check_weighted_row_sums_input(indptr, indices, weights, table);
  TORCH_INTERNAL_ASSERT(table.device().is_cuda());
  const c10::cuda::OptionalCUDAGuard guard(table.device());
  check_csr(indptr, indices, table.size(0));
  const int64_t R = indptr.size(0) - 1, nnz = indices.size(0), K = table.size(1);
  at::Tensor out = at::zeros({R, K}, table.options().dtype(at::kLong));
  if (R == 0 || K == 0 || nnz == 0) return out;
  const int64_t col_blocks = (K + kThreads - 1) / kThreads;
  TORCH_CHECK_VALUE(R <= 2147483647 && col_blocks <= 65535, "weighted_row_sums: CUDA grid limits exceeded, got R = ", R,
                    " and K = ", K);
  const at::Tensor ptr = indptr.contiguous(), idx = indices.contiguous(), w = weights.contiguous(),
                   tab = table.contiguous();
  const dim3 grid(static_cast<unsigned>(R), static_cast<unsigned>(col_blocks));
  weighted_row_sums_kernel<<<grid, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      ptr.const_data_ptr<int64_t>(), idx.const_data_ptr<int64_t>(), w.const_data_ptr<int64_t>(),
      static_cast<const uint8_t*>(tab.const_data_ptr()), out.data_ptr<int64_t>(), K);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

TORCH_LIBRARY_IMPL(invert_fast, CUDA, m) { m.impl("weighted_row_sums", &weighted_row_sums_cuda); }

}  // namespace invert_fast
