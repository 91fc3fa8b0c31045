// masked_csr_sums: masked_row_sums with the region -> concept table given as CSR (each region's concept
// list), for tables where a region holds few of the K concepts (token concepts: ~17 of 300).
//
// out[d, b, c] = sum over regions g in mask (d, b) (with outside[d, b]: not in it) holding concept c of
// weights[g, d]: the same integers as masked_row_sums on the dense table; each region costs its own
// concept count instead of K.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstdint>

#include "macros.h"
#include "masked_row_sums.h"

namespace invert_fast {

// words: [Db, B, W] int64 packed region masks; outside: [Db, B] bool; weights: [G, Db] int64
// indptr: [G + 1] int64, concepts: [nnz] int64 in [0, K): region g holds concepts[indptr[g]:indptr[g+1]]
// returns: [Db, B, K] int64
at::Tensor masked_csr_sums_cpu(const at::Tensor& words, const at::Tensor& outside, const at::Tensor& weights,
                               const at::Tensor& indptr, const at::Tensor& concepts, int64_t K);
at::Tensor masked_csr_sums_cuda(const at::Tensor& words, const at::Tensor& outside, const at::Tensor& weights,
                                const at::Tensor& indptr, const at::Tensor& concepts, int64_t K);

inline void check_masked_csr_sums_input(const at::Tensor& words, const at::Tensor& outside, const at::Tensor& weights,
                                        const at::Tensor& indptr, const at::Tensor& concepts, int64_t K) {
  TORCH_CHECK_VALUE(words.dim() == 3, "masked_csr_sums: words must be [Db, B, W], got shape ", words.sizes());
  TORCH_CHECK_VALUE(outside.dim() == 2 && outside.size(0) == words.size(0) && outside.size(1) == words.size(1),
                    "masked_csr_sums: outside must be [", words.size(0), ", ", words.size(1), "], got ",
                    outside.sizes());
  TORCH_CHECK_VALUE(weights.dim() == 2 && weights.size(1) == words.size(0), "masked_csr_sums: weights must be [G, ",
                    words.size(0), "], got ", weights.sizes());
  TORCH_CHECK_VALUE(indptr.dim() == 1 && indptr.size(0) == weights.size(0) + 1,
                    "masked_csr_sums: indptr must be [G + 1] = [", weights.size(0) + 1, "], got ", indptr.sizes());
  TORCH_CHECK_VALUE(concepts.dim() == 1, "masked_csr_sums: concepts must be 1-D, got ", concepts.sizes());
  TORCH_CHECK_VALUE(K >= 0, "masked_csr_sums: K must be >= 0, got ", K);
  TORCH_CHECK_VALUE(64 * words.size(2) >= weights.size(0), "masked_csr_sums: words must hold ", weights.size(0),
                    " regions, got ", words.size(2), " words");
  TORCH_CHECK_TYPE(words.scalar_type() == at::kLong && weights.scalar_type() == at::kLong &&
                       outside.scalar_type() == at::kBool && indptr.scalar_type() == at::kLong &&
                       concepts.scalar_type() == at::kLong,
                   "masked_csr_sums: words, weights, indptr and concepts int64, outside bool expected, got ",
                   words.scalar_type(), ", ", weights.scalar_type(), ", ", indptr.scalar_type(), ", ",
                   concepts.scalar_type(), " and ", outside.scalar_type());
  TORCH_CHECK_VALUE(words.device() == outside.device() && words.device() == weights.device() &&
                        words.device() == indptr.device() && words.device() == concepts.device(),
                    "masked_csr_sums: all tensors must be on one device");
}

}  // namespace invert_fast
