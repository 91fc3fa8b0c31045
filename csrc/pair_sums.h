// pair_sums: sums over the regions two concepts share, for every pair of concepts -- the product
// behind the exact search of all formulas of two atoms.
//
// out[d, i, j] = sum over regions g holding both concept i and concept j of weights[g, d]. With the
// weights a neuron's per-region (rank sum << s) + size, this is the rank sum and size of i AND j for
// every pair; the other pairs of atoms (i AND ~j, ~i OR j, ...) follow by inclusion-exclusion. The
// work is sum over regions of (concepts holding the region)^2: far below a dense [K, G] x [G, K]
// product per neuron when concepts overlap in few regions (ImageNet: ~72 of 1,473 per region).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace invert_fast {

// weights: [G, Db] int64 (non-negative);  indptr: [G + 1] int64 and concepts: [nnz] int64 in [0, K),
// the CSR of the concepts holding each region;  K: concepts
// returns: [Db, K, K] int64 (symmetric in i, j)
at::Tensor pair_sums_cpu(const at::Tensor& weights, const at::Tensor& indptr, const at::Tensor& concepts, int64_t K);
at::Tensor pair_sums_cuda(const at::Tensor& weights, const at::Tensor& indptr, const at::Tensor& concepts, int64_t K);

inline void check_pair_sums_input(const at::Tensor& weights, const at::Tensor& indptr, const at::Tensor& concepts,
                                  int64_t K) {
  TORCH_CHECK_VALUE(weights.dim() == 2, "pair_sums: weights must be [G, Db], got shape ", weights.sizes());
  TORCH_CHECK_VALUE(indptr.dim() == 1 && indptr.size(0) == weights.size(0) + 1, "pair_sums: indptr must be [G + 1] = [",
                    weights.size(0) + 1, "], got shape ", indptr.sizes());
  TORCH_CHECK_VALUE(concepts.dim() == 1, "pair_sums: concepts must be [nnz], got shape ", concepts.sizes());
  TORCH_CHECK_TYPE(
      weights.scalar_type() == at::kLong && indptr.scalar_type() == at::kLong && concepts.scalar_type() == at::kLong,
      "pair_sums: weights, indptr and concepts must be int64, got ", weights.scalar_type(), ", ", indptr.scalar_type(),
      " and ", concepts.scalar_type());
  TORCH_CHECK_VALUE(K >= 0, "pair_sums: K must be >= 0, got ", K);
  TORCH_CHECK_VALUE(weights.device() == indptr.device() && weights.device() == concepts.device(),
                    "pair_sums: all tensors must be on one device, got ", weights.device(), ", ", indptr.device(),
                    " and ", concepts.device());
}

}  // namespace invert_fast
