// CUDA kernel of csr_gather_or: a block row per output row, a thread per column (coalesced reads).
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../csr_gather_or.h"
#include "../csr_gather_sum.h"

namespace invert_fast {
namespace {

constexpr int kThreads = 256;

__global__ void csr_gather_or_kernel(const int64_t* __restrict__ values, const int64_t* __restrict__ indptr,
                                     const int64_t* __restrict__ indices, int64_t* __restrict__ out, int64_t C) {
  const int64_t k = blockIdx.x;
  const int64_t c = static_cast<int64_t>(blockIdx.y) * kThreads + threadIdx.x;
  if (c >= C) return;
  int64_t acc = 0;
  for (int64_t j = indptr[k]; j < indptr[k + 1]; ++j) acc |= values[indices[j] * C + c];
  out[k * C + c] = acc;
}

}  // namespace

at::Tensor csr_gather_or_cuda(const at::Tensor& values, const at::Tensor& indptr, const at::Tensor& indices) {
  check_csr_gather_or_input(values, indptr, indices);
  TORCH_INTERNAL_ASSERT(values.device().is_cuda());
  const c10::cuda::OptionalCUDAGuard guard(values.device());
  check_csr(indptr, indices, values.size(0));
  const int64_t C = values.size(1), K = indptr.size(0) - 1;
  at::Tensor out = at::zeros({K, C}, values.options());
  if (K == 0 || C == 0 || indices.size(0) == 0) return out;
  const int64_t col_blocks = (C + kThreads - 1) / kThreads;
  TORCH_CHECK_VALUE(K <= 2147483647 && col_blocks <= 65535, "csr_gather_or: CUDA grid limits exceeded, got K = ", K,
                    " and C = ", C);
  const at::Tensor v = values.contiguous(), ptr = indptr.contiguous(), idx = indices.contiguous();
  const dim3 grid(static_cast<unsigned>(K), static_cast<unsigned>(col_blocks));
  csr_gather_or_kernel<<<grid, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      v.const_data_ptr<int64_t>(), ptr.const_data_ptr<int64_t>(), idx.const_data_ptr<int64_t>(),
      out.data_ptr<int64_t>(), C);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

TORCH_LIBRARY_IMPL(invert_fast, CUDA, m) { m.impl("csr_gather_or", &csr_gather_or_cuda); }

}  // namespace invert_fast
