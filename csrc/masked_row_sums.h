// masked_row_sums: for every beam formula of every neuron, the weighted sum of the region -> concept
// table over the formula's regions -- the product of a search step, read straight from bit-packed masks.
//
// out[d, b, :] = sum over regions g in mask (d, b) of weights[g, d] * table[g, :]; with outside[d, b] the
// regions NOT in the mask are summed instead (the caller subtracts from the total: cheaper when a
// formula covers more than half the regions). No [Db, B, G] bool mask and no CSR of regions is built.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstdint>

#include "macros.h"

namespace invert_fast {

// words: [Db, B, W] int64 packed region masks (region g at bit g % 64 of word g / 64), W >= ceil(G / 64)
// outside: [Db, B] bool;  weights: [G, Db] int64;  table: [G, K] bool or uint8 0/1
// returns: [Db, B, K] int64
at::Tensor masked_row_sums_cpu(const at::Tensor& words, const at::Tensor& outside, const at::Tensor& weights,
                               const at::Tensor& table);
at::Tensor masked_row_sums_cuda(const at::Tensor& words, const at::Tensor& outside, const at::Tensor& weights,
                                const at::Tensor& table);

// The regions a row sums from word j of its mask: the word's set bits, or with `outside` its clear
// bits, never the padding bits at and past region G. Both kernels walk exactly these.
INVERT_FAST_HD inline uint64_t row_word_bits(uint64_t word, bool outside, int64_t j, int64_t G) {
  const uint64_t bits = outside ? ~word : word;
  const int64_t valid = G - 64 * j;  // regions of this word that exist (> 0 for every word walked)
  return valid < 64 ? bits & ((uint64_t{1} << valid) - 1) : bits;
}

// Calls visit(g) for every region g a row sums, in ascending order: the set bits of its W words (the clear
// ones with `outside`), padding excluded. The one walk of masked_row_sums and masked_csr_sums, both backends.
template <typename Visit>
INVERT_FAST_HD inline void for_each_row_region(const uint64_t* words, int64_t W, int64_t G, bool outside,
                                               Visit&& visit) {
  for (int64_t j = 0; j < W && 64 * j < G; ++j) {
    uint64_t bits = row_word_bits(words[j], outside, j, G);
    while (bits) {
#ifdef __CUDA_ARCH__
      const int64_t g = 64 * j + __ffsll(static_cast<long long>(bits)) - 1;
#else
      const int64_t g = 64 * j + __builtin_ctzll(bits);
#endif
      bits &= bits - 1;
      visit(g);
    }
  }
}

inline void check_masked_row_sums_input(const at::Tensor& words, const at::Tensor& outside, const at::Tensor& weights,
                                        const at::Tensor& table) {
  TORCH_CHECK_VALUE(words.dim() == 3, "masked_row_sums: words must be [Db, B, W], got shape ", words.sizes());
  TORCH_CHECK_VALUE(outside.dim() == 2 && outside.size(0) == words.size(0) && outside.size(1) == words.size(1),
                    "masked_row_sums: outside must be [", words.size(0), ", ", words.size(1), "], got ",
                    outside.sizes());
  TORCH_CHECK_VALUE(weights.dim() == 2 && weights.size(1) == words.size(0), "masked_row_sums: weights must be [G, ",
                    words.size(0), "], got ", weights.sizes());
  TORCH_CHECK_VALUE(table.dim() == 2 && table.size(0) == weights.size(0), "masked_row_sums: table must be [G, K] = [",
                    weights.size(0), ", K], got ", table.sizes());
  TORCH_CHECK_VALUE(64 * words.size(2) >= weights.size(0), "masked_row_sums: words must hold ", weights.size(0),
                    " regions, got ", words.size(2), " words");
  TORCH_CHECK_TYPE(
      words.scalar_type() == at::kLong && weights.scalar_type() == at::kLong && outside.scalar_type() == at::kBool &&
          (table.scalar_type() == at::kBool || table.scalar_type() == at::kByte),
      "masked_row_sums: words and weights int64, outside bool, table bool or uint8 expected, got ", words.scalar_type(),
      ", ", weights.scalar_type(), ", ", outside.scalar_type(), " and ", table.scalar_type());
  TORCH_CHECK_VALUE(
      words.device() == outside.device() && words.device() == weights.device() && words.device() == table.device(),
      "masked_row_sums: all tensors must be on one device, got ", words.device(), ", ", outside.device(), ", ",
      weights.device(), " and ", table.device());
}

}  // namespace invert_fast
