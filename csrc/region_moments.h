// region_moments: per region and neuron, the float64 sums behind every label's correlation and cosine
// (invert_fast/core/metrics.py) and the top samples' counts behind its IoU, F1 and AUPRC -- two passes
// over the activations in one fixed order, so both backends (and the sparse path's index_add_ sums, which
// add the same terms in the same order) agree to the bit.
//
// For neuron d with activations a (only a != 0 are summed: a zero adds nothing to a sum, and skipping it
// is what makes sparse input and its dense twin identical):
//   A[g, d]  = sum of a over region g's samples, in sample order
//   sum_a[d] = sum of A[g, d] over regions in order;  mean = sum_a / N
//   Dv[g, d] = sum of (a - mean) over region g's nonzero samples in order, minus (its zeros) * mean
//   sq[d]    = sum of a * a (sample order);  ss[d] = sum of (a - mean)^2 over nonzero a, plus zeros * mean^2
//   T[g, d]  = samples of region g in the neuron's top set: a > cut (strict) or a >= cut
// Products and sums are rounded one by one (no fused multiply-add on either backend: add_rn / mul_rn).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <tuple>

#include "macros.h"
#include "rounding.h"

namespace invert_fast {

// x: [N, D] float16 / bfloat16 / float32 / float64;  region_of: [N] int64 in [0, G);  cut: [D] float64
// returns: A [G, D], Dv [G, D] float64; T [G, D] int64; moments [3, D] float64 (sum_a, sq, ss)
using MomentsResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
MomentsResult region_moments_cpu(const at::Tensor& x, const at::Tensor& region_of, int64_t G, const at::Tensor& cut,
                                 bool strict);
MomentsResult region_moments_cuda(const at::Tensor& x, const at::Tensor& region_of, int64_t G, const at::Tensor& cut,
                                  bool strict);

inline void check_region_moments_input(const at::Tensor& x, const at::Tensor& region_of, int64_t G,
                                       const at::Tensor& cut) {
  TORCH_CHECK_VALUE(x.dim() == 2, "region_moments: x must be [N, D], got shape ", x.sizes());
  TORCH_CHECK_VALUE(region_of.dim() == 1 && region_of.size(0) == x.size(0) && region_of.scalar_type() == at::kLong,
                    "region_moments: region_of must be [N] = [", x.size(0), "] int64, got ", region_of.sizes(), " ",
                    region_of.scalar_type());
  TORCH_CHECK_VALUE(G >= 0, "region_moments: G must be >= 0, got ", G);
  TORCH_CHECK_VALUE(cut.dim() == 1 && cut.size(0) == x.size(1) && cut.scalar_type() == at::kDouble,
                    "region_moments: cut must be [D] = [", x.size(1), "] float64, got ", cut.sizes(), " ",
                    cut.scalar_type());
  TORCH_CHECK_TYPE(at::isFloatingType(x.scalar_type()), "region_moments: x must be floating point, got ",
                   x.scalar_type());
  TORCH_CHECK_VALUE(x.device() == region_of.device() && x.device() == cut.device(),
                    "region_moments: x, region_of and cut must be on one device");
}

INVERT_FAST_HD inline bool in_top(double v, double cut, bool strict) { return strict ? v > cut : v >= cut; }

}  // namespace invert_fast
