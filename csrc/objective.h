// The search objective: one home for how a mask is scored, compared and kept, shared by every kernel
// and both backends (the Python twin is invert_fast/core/objectives.py).
//
// Every objective scores a mask from two integer sums over the mask's regions -- its statistic S and its
// size P -- and one per-neuron constant, the statistic's total over all N samples (what the complement
// of a mask leaves: S(~m) = total - S(m)). Its exact score is a rational num / den of integers with
// den > 0 for every admissible mask; the kernels are written once against `Objective` below:
//
//   code  name   S of a mask                         total           score = num / den
//   0     auroc  doubled mid-rank sum S2              N (N + 1)       (S2 - P (P + 1)) / (2 P (N - P))
//   1     iou    |T & M|, T the neuron's top samples  |T|             S / (|T| + P - S)
//   2     f1     |T & M|                              |T|             2 S / (|T| + P)
//   3     auprc  |T & M|                              |T|             (N S^2 + P |T| (|T| - S)) / (N P |T|)
//   4     correlation  sum of q over M               sum of q        (N S - P total) / sqrt(P (N - P))
//   5     cosine       sum of q over M               sum of q        S / sqrt(P)
//
// Correlation and cosine are not rationals: q is the neuron's activations scaled by a power of two and
// rounded to integers (core/objectives.py: N max|q| <= 2^52, so every sum is exact in int64 and in the
// float64 products), and their score is the float64 value of the formula above, each operation rounded
// once in the order written (rounding.h: no FMA, correctly rounded sqrt and division), on both
// backends. That value is proportional to Pearson's r of q and the mask (correlation: times the neuron's
// constant 1 / sqrt(N sum q^2 - total^2)) and to the cosine of q and the mask (times 1 / |q|), so it
// orders a neuron's masks as r and cosine do. Its Score has den = 0: compared by the value alone, equal
// values tie (then the search's own ties: length, text).
//
// AUPRC's numerator and denominator pass 2^53, so its float is not always the correctly rounded value
// (core/objectives.py limits N so they stay below 2^63): compare_scores decides by floats only where they
// are far apart, and the kernels relax their thresholds for it (relaxed_threshold, beam_step_select.h).
//
// A new objective is a struct with a static score() below, one case in Objective::score and its
// Python class (core/objectives.py) with the same code. Every comparison of the search goes through
// compare_scores: float64 values first (a correctly rounded division orders like the rationals
// wherever the floats differ), then, for equal floats, the exact cross products in 128-bit integers
// (num and den are below 2^63, so each product fits). The exact search's bound (AUROC's) lives beside
// its kernel (pair_step_select.h) and in invert_fast/core/exact.py.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <cstdint>

#include "macros.h"
#include "rounding.h"

namespace invert_fast {

struct Score {
  int64_t num, den;  // den > 0 for every admissible mask
  double value;      // num / den, correctly rounded
};

INVERT_FAST_HD inline Score make_score(int64_t num, int64_t den) {
  return {num, den, static_cast<double>(num) / static_cast<double>(den)};
}

// AUROC (Mann-Whitney U over P (N - P), ties 1/2): |num|, den < 2^53 for N < 1.3e8 (see core/auroc.py).
struct Auroc {
  static constexpr int64_t kCode = 0;
  INVERT_FAST_HD static Score score(int64_t s2, int64_t p, int64_t n, int64_t /*total*/) {
    return make_score(s2 - p * (p + 1), 2 * p * (n - p));
  }
};

// Intersection over union of the mask with the neuron's top samples T: |T & M| / |T | M|.
struct Iou {
  static constexpr int64_t kCode = 1;
  INVERT_FAST_HD static Score score(int64_t s, int64_t p, int64_t /*n*/, int64_t t) {
    return t + p - s > 0 ? make_score(s, t + p - s) : make_score(0, 1);  // an empty union: 0, as NetDissect
  }
};

// F1 (Dice) of the mask against T: 2 |T & M| / (|T| + |M|).
struct F1 {
  static constexpr int64_t kCode = 2;
  INVERT_FAST_HD static Score score(int64_t s, int64_t p, int64_t /*n*/, int64_t t) {
    return t + p > 0 ? make_score(2 * s, t + p) : make_score(0, 1);  // both empty: 0
  }
};

// Average precision of the binary score M against T (scikit-learn's average_precision_score):
// P R + (1 - R) |T| / N with P = S / P, R = S / |T|.
struct Auprc {
  static constexpr int64_t kCode = 3;
  INVERT_FAST_HD static Score score(int64_t s, int64_t p, int64_t n, int64_t t) {
    return t > 0 && p > 0 ? make_score(n * s * s + p * t * (t - s), n * p * t) : make_score(0, 1);
  }
};

// A float-valued score (den = 0: compare_scores orders it by its value alone).
INVERT_FAST_HD inline Score float_score(double value) { return {0, 0, value}; }

// Pearson's r of the scaled activations q and the mask, up to the neuron's positive constant (above).
struct Correlation {
  static constexpr int64_t kCode = 4;
  INVERT_FAST_HD static Score score(int64_t s, int64_t p, int64_t n, int64_t total) {
    if (p <= 0 || p >= n) return float_score(0.0);  // a constant mask: no correlation
    const double num = add_rn(mul_rn(static_cast<double>(n), static_cast<double>(s)),
                              -mul_rn(static_cast<double>(p), static_cast<double>(total)));
    return float_score(div_rn(num, sqrt_rn(static_cast<double>(p * (n - p)))));  // p (n - p) < 2^53: exact
  }
};

// Cosine similarity of q and the mask, up to the neuron's positive constant 1 / |q|.
struct Cosine {
  static constexpr int64_t kCode = 5;
  INVERT_FAST_HD static Score score(int64_t s, int64_t p, int64_t /*n*/, int64_t /*total*/) {
    if (p <= 0) return float_score(0.0);
    return float_score(div_rn(static_cast<double>(s), sqrt_rn(static_cast<double>(p))));  // |s| < 2^53: exact
  }
};

constexpr int64_t kObjectives = 6;

// Objectives whose float value may not be the correctly rounded rational (see above).
INVERT_FAST_HD inline bool inexact_floats(int64_t code) { return code == Auprc::kCode; }

// One neuron's objective: which one, the samples N, and the neuron's statistic total.
struct Objective {
  int64_t code, n, total;
  INVERT_FAST_HD Score score(int64_t s, int64_t p) const {
    switch (code) {
      case Iou::kCode:
        return Iou::score(s, p, n, total);
      case F1::kCode:
        return F1::score(s, p, n, total);
      case Auprc::kCode:
        return Auprc::score(s, p, n, total);
      case Correlation::kCode:
        return Correlation::score(s, p, n, total);
      case Cosine::kCode:
        return Cosine::score(s, p, n, total);
      default:
        return Auroc::score(s, p, n, total);
    }
  }
};

// The exact AUC of a mask (what every label reports, whatever the search's objective).
INVERT_FAST_HD inline Score mask_auc(int64_t s2, int64_t p, int64_t n) { return Auroc::score(s2, p, n, 0); }

// -1, 0 or +1 as a is worse, equal or better than b: higher scores are better for sign > 0, lower for sign < 0.
// Floats decide where they are more than 2^-50 apart relatively (far beyond any rounding of num / den, even
// of numerators and denominators past 2^53); closer ones, exact cross products. Float-valued scores
// (den = 0: correlation, cosine) are their values, compared as they are.
INVERT_FAST_HD inline int compare_scores(const Score& a, const Score& b, double sign) {
  int c = 0;
  if (a.den == 0 || b.den == 0) {
    c = a.value > b.value ? 1 : (a.value < b.value ? -1 : 0);
  } else if (fabs(a.value - b.value) > 0x1p-50 * fmax(fabs(a.value), fabs(b.value))) {
    c = a.value > b.value ? 1 : -1;
  } else {
    const __int128 l = static_cast<__int128>(a.num) * b.den, r = static_cast<__int128>(b.num) * a.den;
    c = l > r ? 1 : (l < r ? -1 : 0);
  }
  return sign > 0 ? c : -c;
}

// With a length penalty (Mu & Andreas' compositional explanations), a label of j atoms beyond its
// first scores s - penalty * j. compare_penalized orders two such scores exactly: the difference of the
// two rationals, p / q (128-bit), against penalty * (ja - jb), the penalty an exact double M * 2^e, by
// bit lengths where they decide and otherwise in 320-bit integers. Host code (the selection).
struct U320 {
  uint64_t w[5] = {0, 0, 0, 0, 0};
  int bits() const {
    for (int i = 4; i >= 0; --i)
      if (w[i]) return 64 * i + 64 - __builtin_clzll(w[i]);
    return 0;
  }
  static U320 of(unsigned __int128 v) {
    U320 r;
    r.w[0] = static_cast<uint64_t>(v), r.w[1] = static_cast<uint64_t>(v >> 64);
    return r;
  }
  U320 times(uint64_t m) const {  // exact while the product fits
    U320 r;
    unsigned __int128 carry = 0;
    for (int i = 0; i < 5; ++i) {
      const unsigned __int128 t = static_cast<unsigned __int128>(w[i]) * m + carry;
      r.w[i] = static_cast<uint64_t>(t), carry = t >> 64;
    }
    return r;
  }
  U320 shifted(int s) const {  // << s, exact while the result fits
    U320 r;
    const int words = s / 64, b = s % 64;
    for (int i = 4; i >= words; --i) {
      uint64_t v = w[i - words] << b;
      if (b && i - words - 1 >= 0) v |= w[i - words - 1] >> (64 - b);
      r.w[i] = v;
    }
    return r;
  }
  int compare(const U320& o) const {
    for (int i = 4; i >= 0; --i)
      if (w[i] != o.w[i]) return w[i] > o.w[i] ? 1 : -1;
    return 0;
  }
};

// Sign of x * 2^s - y (x, y >= 0; s may be negative), exactly.
inline int compare_scaled(const U320& x, int s, const U320& y) {
  const int bx = x.bits(), by = y.bits();
  if (bx == 0) return by == 0 ? 0 : -1;
  if (by == 0) return 1;
  if (bx + s > by + 1) return 1;                                       // x 2^s >= 2^(bx - 1 + s) > 2^by > y
  if (bx + s < by) return -1;                                          // x 2^s < 2^(bx + s) <= 2^(by - 1) <= y
  return s >= 0 ? x.shifted(s).compare(y) : x.compare(y.shifted(-s));  // both below 2^(by + 2) <= 2^195
}

// -1, 0 or +1 as a.value - penalty * ja is below, equal to or above b.value - penalty * jb (higher is
// better; sign < 0 reverses), exactly; penalty >= 0.
inline int compare_penalized(const Score& a, int64_t ja, const Score& b, int64_t jb, double penalty, double sign) {
  if (penalty == 0 || ja == jb) return compare_scores(a, b, sign);
  TORCH_CHECK_VALUE(a.den > 0 && b.den > 0, "a length penalty needs an objective with rational scores");
  // a - b = p / q - penalty * (ja - jb), q > 0.
  const __int128 p = static_cast<__int128>(a.num) * b.den - static_cast<__int128>(b.num) * a.den;
  const unsigned __int128 q = static_cast<unsigned __int128>(a.den) * static_cast<unsigned __int128>(b.den);
  const int64_t dj = ja - jb;
  int e = 0;
  const double f = std::frexp(penalty, &e);                           // penalty = f 2^e, f in [0.5, 1)
  const uint64_t m = static_cast<uint64_t>(std::ldexp(f, 53));        // penalty = m 2^(e - 53), exactly
  const int ps = p > 0 ? 1 : (p < 0 ? -1 : 0), rs = dj > 0 ? 1 : -1;  // signs of p and of penalty * dj
  int c = 0;
  if (ps != rs) {
    c = ps > 0 || (ps == 0 && rs < 0) ? 1 : -1;
  } else {  // same sign: compare |p| with q m |dj| 2^(e - 53)
    const unsigned __int128 ap = p > 0 ? static_cast<unsigned __int128>(p) : static_cast<unsigned __int128>(-p);
    const U320 rhs = U320::of(q).times(m).times(static_cast<uint64_t>(dj > 0 ? dj : -dj));
    const int mag = compare_scaled(U320::of(ap), 53 - e, rhs);  // |p| 2^(53 - e) vs q m |dj|
    c = ps > 0 ? mag : -mag;
  }
  return sign > 0 ? c : -c;
}

// The search's score of one mask: sign * its exact score, or -inf when it is not kept (not admissible:
// its size outside [p_lo, p_hi], or excluded by the caller). The same arithmetic as core/objectives.py,
// so both backends agree to the bit.
INVERT_FAST_HD inline double mask_score(int64_t s, int64_t p, bool keep, const Objective& obj, int64_t p_lo,
                                        int64_t p_hi, double sign) {
  if (!keep || p < p_lo || p > p_hi) return -INFINITY;
  return sign * obj.score(s, p).value;
}

// totals [D] int64 and an objective code (above), for every kernel that scores masks.
inline void check_objective(const char* op, const at::Tensor& totals, int64_t D, int64_t objective) {
  TORCH_CHECK_VALUE(objective >= 0 && objective < kObjectives, op, ": objective must be a code in [0, ", kObjectives,
                    "), got ", objective);
  TORCH_CHECK_VALUE(totals.dim() == 1 && totals.size(0) == D, op, ": totals must be [", D, "], got shape ",
                    totals.sizes());
  TORCH_CHECK_TYPE(totals.scalar_type() == at::kLong, op, ": totals must be int64, got ", totals.scalar_type());
}

}  // namespace invert_fast
