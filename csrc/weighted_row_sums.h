// weighted_row_sums: out[r, :] = sum over j in [indptr[r], indptr[r+1]) of weights[j] * table[indices[j], :].
//
// The beam-sparse form of a search step: a beam formula covering few regions (a class, a small
// union) gathers just those rows of the region -> concept table, weighted by the neuron's region rank
// sums, instead of touching every region of every concept.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace invert_fast {

// indptr:  [R + 1] int64 CSR row pointer;  indices: [nnz] int64 rows of table, each in [0, G)
// weights: [nnz] int64;  table: [G, K] bool (or uint8 0/1)
// returns: [R, K] int64
at::Tensor weighted_row_sums_cpu(const at::Tensor& indptr, const at::Tensor& indices, const at::Tensor& weights,
                                 const at::Tensor& table);
at::Tensor weighted_row_sums_cuda(const at::Tensor& indptr, const at::Tensor& indices, const at::Tensor& weights,
                                  const at::Tensor& table);

inline void check_weighted_row_sums_input(const at::Tensor& indptr, const at::Tensor& indices,
                                          const at::Tensor& weights, const at::Tensor& table) {
  TORCH_CHECK_VALUE(indptr.dim() == 1 && indptr.size(0) >= 1, "weighted_row_sums: indptr must be [R + 1], got shape ",
                    indptr.sizes());
  TORCH_CHECK_VALUE(indices.dim() == 1 && weights.sizes() == indices.sizes(),
                    "weighted_row_sums: indices and weights must be [nnz], got shapes ", indices.sizes(), " and ",
                    weights.sizes());
  TORCH_CHECK_VALUE(table.dim() == 2, "weighted_row_sums: table must be [G, K], got shape ", table.sizes());
  TORCH_CHECK_TYPE(
      indptr.scalar_type() == at::kLong && indices.scalar_type() == at::kLong && weights.scalar_type() == at::kLong,
      "weighted_row_sums: indptr, indices and weights must be int64, got ", indptr.scalar_type(), ", ",
      indices.scalar_type(), " and ", weights.scalar_type());
  TORCH_CHECK_TYPE(table.scalar_type() == at::kBool || table.scalar_type() == at::kByte,
                   "weighted_row_sums: table must be bool or uint8, got ", table.scalar_type());
  TORCH_CHECK_VALUE(
      indptr.device() == table.device() && indices.device() == table.device() && weights.device() == table.device(),
      "weighted_row_sums: all tensors must be on one device, got ", indptr.device(), ", ", indices.device(), ", ",
      weights.device(), " and ", table.device());
}

}  // namespace invert_fast
