// pair_step_select: every formula of two atoms, scored, and each neuron's best kept -- the exact
// search's first stage (invert_fast/core/exact.py).
//
// For concepts i < j with X = (statistic, size) of i AND j (pair_sums) and the concepts' own sums,
// the eight formulas of their atoms follow by inclusion-exclusion (total: the neuron's statistic over
// all samples; objective.h):
//   i & j = X,  i & ~j = i - X,  ~i & j = j - X,  ~i & ~j = total - i - j + X,
//   i | j = i + j - X,  i | ~j = total - j + X,  ~i | j = total - i + X,  ~i | ~j = total - X.
// Each unordered pair is enumerated once; a formula whose mask equals one of its atoms' (same size)
// is left out, as the atom itself (shorter) is a candidate too. Columns use the beam-step pool layout
// with the 2K atoms as beams (beam_step_select.h): formula (atom b) op (atom a) -> pool_candidate_column
// (b, op, a, K), with b the atom of concept i; atom b alone -> pool_beam_column(b, 2K, K).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <tuple>

#include "beam_step_select.h"
#include "macros.h"

namespace invert_fast {

// x:       [Db, K, K] int64 (statistic << shift) + size of i AND j when shift > 0, else the statistic
//          with x_p [Db, K, K] the size (x_p empty when packed)
// conc_s:  [Db, K] int64 concept statistics;  conc_p: [K] int64 concept sizes
// n, p_lo, p_hi, sign, k, totals, objective: as beam_step_select (scores sign * the objective's score,
//          the k-th best sets the threshold)
// returns: indptr [Db + 1], cols [M] (ascending per neuron), vals [M] float64, valid [Db] int64
SelectResult pair_step_select_cpu(const at::Tensor& x, const at::Tensor& x_p, int64_t shift, const at::Tensor& conc_s,
                                  const at::Tensor& conc_p, int64_t n, int64_t p_lo, int64_t p_hi, double sign,
                                  int64_t k, const at::Tensor& totals, int64_t objective);
SelectResult pair_step_select_cuda(const at::Tensor& x, const at::Tensor& x_p, int64_t shift, const at::Tensor& conc_s,
                                   const at::Tensor& conc_p, int64_t n, int64_t p_lo, int64_t p_hi, double sign,
                                   int64_t k, const at::Tensor& totals, int64_t objective);

inline void check_pair_step_inputs(const at::Tensor& x, const at::Tensor& x_p, int64_t shift, const at::Tensor& conc_s,
                                   const at::Tensor& conc_p, int64_t k, const at::Tensor& totals, int64_t objective) {
  TORCH_CHECK_VALUE(x.dim() == 3 && x.size(1) == x.size(2), "pair_step_select: x must be [Db, K, K], got shape ",
                    x.sizes());
  const int64_t D = x.size(0), K = x.size(1);
  check_objective("pair_step_select", totals, D, objective);
  TORCH_CHECK_VALUE(shift >= 0 && shift < 63, "pair_step_select: shift must be in [0, 63), got ", shift);
  if (shift > 0) {
    TORCH_CHECK_VALUE(x_p.numel() == 0, "pair_step_select: x_p must be empty when x is packed, got shape ",
                      x_p.sizes());
  } else {
    TORCH_CHECK_VALUE(x_p.sizes() == x.sizes(), "pair_step_select: x_p must match x ", x.sizes(), ", got ",
                      x_p.sizes());
  }
  TORCH_CHECK_VALUE(conc_s.sizes() == at::IntArrayRef({D, K}) && conc_p.sizes() == at::IntArrayRef({K}),
                    "pair_step_select: conc_s must be [", D, ", ", K, "] and conc_p [", K, "], got ", conc_s.sizes(),
                    " and ", conc_p.sizes());
  for (const at::Tensor* t : {&x, &conc_s, &conc_p}) {
    TORCH_CHECK_TYPE(t->scalar_type() == at::kLong, "pair_step_select: sums and sizes must be int64, got ",
                     t->scalar_type());
  }
  TORCH_CHECK_VALUE(k >= 1, "pair_step_select: k must be >= 1, got ", k);
}

// Number of pool columns per neuron: 8 per unordered pair of concepts (enumerated in the full
// [2K, 4K] layout) plus the 2K atoms.
INVERT_FAST_HD inline int64_t pair_pool_width(int64_t K) { return pool_width(2 * K, K); }

// The eight formulas of atoms of concepts i < j: (statistic, size) of each, and its pool column.
// v: 0 i&j, 1 i&~j, 2 ~i&j, 3 ~i&~j, 4 i|j, 5 i|~j, 6 ~i|j, 7 ~i|~j.
struct PairFormula {
  int64_t s, p, col, p_b, p_a;  // sums, column, and the sizes of its two atoms
};
INVERT_FAST_HD inline PairFormula pair_formula(int v, int64_t i, int64_t j, int64_t K, int64_t xs, int64_t xp,
                                               int64_t si, int64_t pi, int64_t sj, int64_t pj, int64_t n,
                                               int64_t total) {
  const bool neg_i = v == 2 || v == 3 || v == 6 || v == 7, neg_j = v == 1 || v == 3 || v == 5 || v == 7;
  const int64_t op = v >= 4 ? 1 : 0;
  int64_t s = 0, p = 0;
  switch (v) {
    case 0:
      s = xs, p = xp;
      break;
    case 1:
      s = si - xs, p = pi - xp;
      break;
    case 2:
      s = sj - xs, p = pj - xp;
      break;
    case 3:
      s = total - si - sj + xs, p = n - pi - pj + xp;
      break;
    case 4:
      s = si + sj - xs, p = pi + pj - xp;
      break;
    case 5:
      s = total - sj + xs, p = n - pj + xp;
      break;
    case 6:
      s = total - si + xs, p = n - pi + xp;
      break;
    default:
      s = total - xs, p = n - xp;
      break;
  }
  const int64_t b = neg_i ? K + i : i, a = neg_j ? K + j : j;
  return {s, p, pool_candidate_column(b, op, a, K), neg_i ? n - pi : pi, neg_j ? n - pj : pj};
}

// The score of a pair formula: sign * its score, or -inf when not admissible or equal to one of its atoms.
INVERT_FAST_HD inline double pair_score(const PairFormula& f, const Objective& obj, int64_t p_lo, int64_t p_hi,
                                        double sign) {
  return mask_score(f.s, f.p, f.p != f.p_b && f.p != f.p_a, obj, p_lo, p_hi, sign);
}

// (statistic, size) of pair-pool column col of neuron d: an atom alone, or one of the eight formulas of
// its two atoms (x, x_p: [Db, K, K]; conc_s [Db, K]; conc_p [K]; total: the neuron's statistic).
INVERT_FAST_HD inline void pair_column_sums(int64_t col, int64_t d, int64_t K, const int64_t* x, const int64_t* x_p,
                                            int64_t shift, const int64_t* conc_s, const int64_t* conc_p, int64_t n,
                                            int64_t total, int64_t* s_out, int64_t* p_out) {
  const PoolColumn pc = decode_pool_column(col, 2 * K, K);
  const int64_t* sd = conc_s + d * K;
  if (pc.op < 0) {
    const int64_t c = pc.b % K;
    *s_out = pc.b < K ? sd[c] : total - sd[c];
    *p_out = pc.b < K ? conc_p[c] : n - conc_p[c];
    return;
  }
  const int64_t i = pc.b % K, j = pc.a % K, r = (d * K + i) * K + j, v = x[r];
  const int64_t xs = shift > 0 ? v >> shift : v, xp = shift > 0 ? v & ((int64_t{1} << shift) - 1) : x_p[r];
  const int t = static_cast<int>(pc.op * 4 + (pc.b >= K ? 2 : 0) + (pc.a >= K ? 1 : 0));
  const PairFormula f = pair_formula(t, i, j, K, xs, xp, sd[i], conc_p[i], sd[j], conc_p[j], n, total);
  *s_out = f.s, *p_out = f.p;
}

}  // namespace invert_fast
