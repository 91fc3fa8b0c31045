// CUDA kernel of csr_gather_sum: a block row per output row k, a thread per column, so the rows
// of `values` are read coalesced.
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../csr_gather_sum.h"

namespace invert_fast {
namespace {

constexpr int kThreads = 256;

template <typename index_t>
__global__ void csr_gather_sum_kernel(const index_t* __restrict__ values,   // [M, C]
                                      const int64_t* __restrict__ indptr,   // [K + 1]
                                      const int64_t* __restrict__ indices,  // [nnz]
                                      int64_t* __restrict__ out,            // [K, C]
                                      int64_t C) {
  const int64_t k = blockIdx.x;
  const int64_t c = static_cast<int64_t>(blockIdx.y) * kThreads + threadIdx.x;
  if (c >= C) return;
  int64_t acc = 0;
  for (int64_t j = indptr[k]; j < indptr[k + 1]; ++j) acc += values[indices[j] * C + c];
  out[k * C + c] = acc;
}

}  // namespace

at::Tensor csr_gather_sum_cuda(const at::Tensor& values, const at::Tensor& indptr, const at::Tensor& indices) {
  check_csr_gather_sum_input(values, indptr, indices);
  TORCH_INTERNAL_ASSERT(values.device().is_cuda());
  const c10::cuda::OptionalCUDAGuard guard(values.device());
  check_csr(indptr, indices, values.size(0));
  const int64_t C = values.size(1), K = indptr.size(0) - 1, nnz = indices.size(0);
  at::Tensor out = at::zeros({K, C}, values.options().dtype(at::kLong));
  if (K == 0 || C == 0 || nnz == 0) return out;
  const int64_t col_blocks = (C + kThreads - 1) / kThreads;
  TORCH_CHECK_VALUE(K <= 2147483647 && col_blocks <= 65535, "csr_gather_sum: CUDA grid limits exceeded, got K = ", K,
                    " rows and C = ", C, " columns (at most 2^31 - 1 and ", 65535 * kThreads, ")");
  const at::Tensor vals = values.contiguous(), ptr = indptr.contiguous(), idx = indices.contiguous();
  const dim3 grid(static_cast<unsigned>(K), static_cast<unsigned>(col_blocks));
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_INDEX_TYPES(vals.scalar_type(), "csr_gather_sum_cuda", [&] {
    csr_gather_sum_kernel<index_t>
        <<<grid, kThreads, 0, stream>>>(vals.const_data_ptr<index_t>(), ptr.const_data_ptr<int64_t>(),
                                        idx.const_data_ptr<int64_t>(), out.data_ptr<int64_t>(), C);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

TORCH_LIBRARY_IMPL(invert_fast, CUDA, m) { m.impl("csr_gather_sum", &csr_gather_sum_cuda); }

}  // namespace invert_fast
