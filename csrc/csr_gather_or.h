// csr_gather_or: bitwise OR of selected rows: out[k] = OR of values[indices[indptr[k]:indptr[k+1]]].
//
// Unions of bit-packed concept masks (ConceptSet.with_unions: a WordNet hypernym is the OR of its
// classes' masks) in one pass, whatever the number of unions and members.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace invert_fast {

// values: [M, C] int64 (packed masks);  indptr: [K + 1] int64 CSR row pointer;  indices: [nnz] int64 in [0, M)
// returns: [K, C] int64 (0 for an empty row)
at::Tensor csr_gather_or_cpu(const at::Tensor& values, const at::Tensor& indptr, const at::Tensor& indices);
at::Tensor csr_gather_or_cuda(const at::Tensor& values, const at::Tensor& indptr, const at::Tensor& indices);

inline void check_csr_gather_or_input(const at::Tensor& values, const at::Tensor& indptr, const at::Tensor& indices) {
  TORCH_CHECK_VALUE(values.dim() == 2, "csr_gather_or: values must be 2-D [M, C], got shape ", values.sizes());
  TORCH_CHECK_TYPE(values.scalar_type() == at::kLong, "csr_gather_or: values must be int64, got ",
                   values.scalar_type());
  TORCH_CHECK_VALUE(indptr.dim() == 1 && indptr.size(0) >= 1 && indices.dim() == 1,
                    "csr_gather_or: indptr must be [K + 1] and indices [nnz], got shapes ", indptr.sizes(), " and ",
                    indices.sizes());
  TORCH_CHECK_TYPE(indptr.scalar_type() == at::kLong && indices.scalar_type() == at::kLong,
                   "csr_gather_or: indptr and indices must be int64, got ", indptr.scalar_type(), " and ",
                   indices.scalar_type());
  TORCH_CHECK_VALUE(values.device() == indptr.device() && values.device() == indices.device(),
                    "csr_gather_or: values, indptr and indices must be on one device, got ", values.device(), ", ",
                    indptr.device(), " and ", indices.device());
}

}  // namespace invert_fast
