// and_popcount: out[i, k] = sum over images n and words w of popcount(a[n, i, w] & b[n, k, w]).
//
// The tally of Network Dissection and of compositional explanations: a holds bit-packed unit (or
// unit AND formula) masks, b bit-packed concept masks, one row of W words per image; out counts the
// pixels both cover, summed over the images. Integer counts, so every backend gives the same numbers.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace invert_fast {

// a: [N, A, W] int64 packed masks;  b: [N, K, W] int64 packed masks
// returns: [A, K] int64
at::Tensor and_popcount_cpu(const at::Tensor& a, const at::Tensor& b);
at::Tensor and_popcount_cuda(const at::Tensor& a, const at::Tensor& b);

inline void check_and_popcount_input(const at::Tensor& a, const at::Tensor& b) {
  TORCH_CHECK_VALUE(a.dim() == 3 && b.dim() == 3, "and_popcount: a must be [N, A, W] and b [N, K, W], got shapes ",
                    a.sizes(), " and ", b.sizes());
  TORCH_CHECK_VALUE(a.size(0) == b.size(0) && a.size(2) == b.size(2),
                    "and_popcount: a and b must have the same images N and words W, got shapes ", a.sizes(), " and ",
                    b.sizes());
  TORCH_CHECK_TYPE(a.scalar_type() == at::kLong && b.scalar_type() == at::kLong,
                   "and_popcount: a and b must be int64 packed words, got ", a.scalar_type(), " and ", b.scalar_type());
  TORCH_CHECK_VALUE(a.device() == b.device(), "and_popcount: a and b must be on one device, got ", a.device(), " and ",
                    b.device());
}

}  // namespace invert_fast
