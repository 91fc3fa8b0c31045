// The search objective: one home for how a mask is scored, compared and kept, shared by every kernel
// and both backends (the Python twin is invert_fast/core/objectives.py). AUROC is the objective today.
//
// Per-region statistics: the doubled rank sum S2 and the size P of a mask (integer sums over the
// mask's regions). Exact score: AUC = num / den with num = S2 - P (P + 1) and den = 2 P (N - P), a
// rational of integers (see invert_fast/core/auroc.py). Every comparison of the search goes through
// compare_scores: float64 values first (a correctly rounded division orders like the rationals
// wherever the floats differ), then, for equal floats, the exact cross products in 128-bit integers
// (num and den are below 2^63, so each product fits). The exact search's bound lives beside its
// kernel (pair_step_select.h) and in invert_fast/core/exact.py.
#pragma once

#include <cmath>
#include <cstdint>

#include "macros.h"

namespace invert_fast {

struct Score {
  int64_t num, den;  // den > 0 for every mask with 0 < P < N
  double value;      // num / den, correctly rounded
};

INVERT_FAST_HD inline Score mask_auc(int64_t s2, int64_t p, int64_t n) {
  const int64_t num = s2 - p * (p + 1), den = 2 * p * (n - p);
  return {num, den, static_cast<double>(num) / static_cast<double>(den)};
}

// -1, 0 or +1 as a is worse, equal or better than b: higher AUC is better for sign > 0, lower for sign < 0.
INVERT_FAST_HD inline int compare_scores(const Score& a, const Score& b, double sign) {
  int c = 0;
  if (a.value != b.value) {
    c = a.value > b.value ? 1 : -1;
  } else {
    const __int128 l = static_cast<__int128>(a.num) * b.den, r = static_cast<__int128>(b.num) * a.den;
    c = l > r ? 1 : (l < r ? -1 : 0);
  }
  return sign > 0 ? c : -c;
}

// The search's score of one mask: sign * exact AUC, or -inf when it is not kept (not admissible: its
// size outside [p_lo, p_hi], or excluded by the caller). Equal to invert_fast.auroc's arithmetic, so
// both backends agree to the bit.
INVERT_FAST_HD inline double mask_score(int64_t s, int64_t p, bool keep, int64_t n, int64_t p_lo, int64_t p_hi,
                                        double sign) {
  if (!keep || p < p_lo || p > p_hi) return -INFINITY;
  return sign * mask_auc(s, p, n).value;
}

}  // namespace invert_fast
