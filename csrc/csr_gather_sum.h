// csr_gather_sum: integer sums of selected rows, the sparse product behind every rank sum.
//
// out[k, :] = sum over j in [indptr[k], indptr[k+1]) of values[indices[j], :]
// i.e. out = A @ values for a 0/1 matrix A [K, M] in CSR form. Used twice: samples -> regions
// (rank sums per group of samples sharing one concept vector) and regions -> concepts.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace invert_fast {

// values:  [M, C] int32 or int64, contiguous
// indptr:  [K + 1] int64, indptr[0] == 0, non-decreasing, indptr[K] == nnz
// indices: [nnz] int64, each in [0, M)
// returns: [K, C] int64
at::Tensor csr_gather_sum_cpu(const at::Tensor& values, const at::Tensor& indptr, const at::Tensor& indices);
at::Tensor csr_gather_sum_cuda(const at::Tensor& values, const at::Tensor& indptr, const at::Tensor& indices);

// Shape, dtype and device checks shared by both backends; index ranges are checked by each backend.
inline void check_csr_gather_sum_input(const at::Tensor& values, const at::Tensor& indptr, const at::Tensor& indices) {
  TORCH_CHECK_VALUE(values.dim() == 2, "csr_gather_sum: values must be 2-D [M, C], got shape ", values.sizes());
  TORCH_CHECK_TYPE(values.scalar_type() == at::kInt || values.scalar_type() == at::kLong,
                   "csr_gather_sum: values must be int32 or int64, got ", values.scalar_type());
  TORCH_CHECK_VALUE(indptr.dim() == 1 && indptr.size(0) >= 1,
                    "csr_gather_sum: indptr must be 1-D [K + 1] with K >= 0, got shape ", indptr.sizes());
  TORCH_CHECK_VALUE(indices.dim() == 1, "csr_gather_sum: indices must be 1-D [nnz], got shape ", indices.sizes());
  TORCH_CHECK_TYPE(indptr.scalar_type() == at::kLong && indices.scalar_type() == at::kLong,
                   "csr_gather_sum: indptr and indices must be int64, got ", indptr.scalar_type(), " and ",
                   indices.scalar_type());
  TORCH_CHECK_VALUE(values.device() == indptr.device() && values.device() == indices.device(),
                    "csr_gather_sum: values, indptr and indices must be on one device, got ", values.device(), ", ",
                    indptr.device(), " and ", indices.device());
}

// indptr: [K + 1] on the CPU. Checks that it is a valid CSR row pointer for nnz entries.
inline void check_csr_indptr(const int64_t* p, int64_t K, int64_t nnz) {
  TORCH_CHECK_VALUE(p[0] == 0 && p[K] == nnz, "csr_gather_sum: indptr must start at 0 and end at nnz = ", nnz,
                    ", got indptr[0] = ", p[0], " and indptr[K] = ", p[K]);
  for (int64_t k = 0; k < K; ++k) {
    TORCH_CHECK_VALUE(p[k] <= p[k + 1], "csr_gather_sum: indptr must be non-decreasing, got indptr[", k, "] = ", p[k],
                      " > indptr[", k + 1, "] = ", p[k + 1]);
  }
}

// lo, hi: smallest and largest entry of indices (only called when nnz > 0).
inline void check_csr_indices(int64_t lo, int64_t hi, int64_t M) {
  TORCH_CHECK_VALUE(lo >= 0 && hi < M, "csr_gather_sum: indices must lie in [0, ", M, "), got values from ", lo, " to ",
                    hi);
}

// The structure checks every CSR op runs, on either device: indptr [K + 1] a valid row pointer for
// indices [nnz], and every index in [0, M). (Copies K + 1 pointers to the CPU; two reductions.)
inline void check_csr(const at::Tensor& indptr, const at::Tensor& indices, int64_t M) {
  const at::Tensor ptr = indptr.to(at::kCPU).contiguous();
  const int64_t K = ptr.size(0) - 1, nnz = indices.size(0);
  check_csr_indptr(ptr.const_data_ptr<int64_t>(), K, nnz);
  if (nnz > 0) check_csr_indices(indices.min().item<int64_t>(), indices.max().item<int64_t>(), M);
}

}  // namespace invert_fast
