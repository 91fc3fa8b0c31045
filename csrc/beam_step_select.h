// beam_step_select: the fused epilogue of one beam-search step -- score every candidate, keep the best.
//
// For beam formula b of neuron d and atom a (concept c = a mod K, negated when a >= K), the
// candidates b AND a and b OR a have statistics (the objective's S: the doubled rank sum for AUROC) and
// sizes that follow by inclusion-exclusion from X = (S, size) of b AND c (total: the neuron's S over all
// samples, objective.h):
//   b & c = X,  b & ~c = b - X,  b | c = b + c - X,  b | ~c = total - c + X.
// A neuron's pool is its B * 4K candidates plus its B current beam formulas. Each is scored with its
// exact AUC (sign * AUC; -inf for candidates not kept: not admissible, mask unchanged, atom outside
// the neuron's extension set, or an empty beam slot), and only the columns whose score reaches the
// neuron's k-th best distinct score value are returned, ties included -- so at least k distinct
// masks (and texts) come back whenever the pool has them; the scores never leave the kernel otherwise.
//
// Pool columns: see pool_candidate_column / pool_beam_column below.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include "macros.h"
#include "objective.h"

namespace invert_fast {

// x:           [Db, B, K] int64; with shift > 0, (statistic << shift) + size of (beam b AND concept c),
//              with shift == 0 the rank sum alone and x_p [Db, B, K] int64 the size (else x_p is empty)
// beam_s/p:    [Db, B] int64 statistic (AUROC: doubled rank sum) and size of each beam formula
// beam_valid:  [Db, B] bool, false for empty beam slots
// conc_s:      [Db, K] int64 statistic of each concept;  conc_p: [K] int64 concept sizes
// ext:         [Db, 2K] bool, atoms allowed to extend the neuron's beams
// n:           samples N;  p_lo, p_hi: admissible mask sizes are p_lo <= P <= p_hi
// sign:        +1 scores the objective (AUROC: mode positive), -1 scores its negative (mode negative)
// k:           how many of the best distinct score values set each neuron's threshold (all columns
//              scoring at least the k-th best distinct value are kept)
// totals:      [Db] int64 each neuron's statistic over all N samples;  objective: its code (objective.h)
// beam_len:    [Db, B] int64 atoms of each beam formula (read only with penalty > 0; else may be empty)
// penalty:     >= 0, subtracted from a score once per atom beyond a formula's first (compositional
//              explanations' length penalty; 0: none). The threshold then allows a few ulps, as the
//              penalized floats round twice; the selection compares exactly (compare_penalized).
// flags:       the grammar beyond INVERT's: kKeepUnchanged keeps candidates whose mask equals their
//              beam's (Mu & Andreas keep b & c where c covers b), kNoNegatedOr drops b | ~c (their
//              operators are OR, AND and AND NOT)
// returns:     indptr [Db + 1] int64, cols [M] int64 (ascending per neuron), vals [M] float64 scores,
//              valid [Db] int64 number of pool members with a finite score, s2 [M] and p [M] int64 the
//              kept columns' statistics and sizes
using SelectResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
SelectResult beam_step_select_cpu(const at::Tensor& x, const at::Tensor& x_p, int64_t shift, const at::Tensor& beam_s,
                                  const at::Tensor& beam_p, const at::Tensor& beam_valid, const at::Tensor& conc_s,
                                  const at::Tensor& conc_p, const at::Tensor& ext, int64_t n, int64_t p_lo,
                                  int64_t p_hi, double sign, int64_t k, const at::Tensor& totals, int64_t objective,
                                  const at::Tensor& beam_len, double penalty, int64_t flags);
SelectResult beam_step_select_cuda(const at::Tensor& x, const at::Tensor& x_p, int64_t shift, const at::Tensor& beam_s,
                                   const at::Tensor& beam_p, const at::Tensor& beam_valid, const at::Tensor& conc_s,
                                   const at::Tensor& conc_p, const at::Tensor& ext, int64_t n, int64_t p_lo,
                                   int64_t p_hi, double sign, int64_t k, const at::Tensor& totals, int64_t objective,
                                   const at::Tensor& beam_len, double penalty, int64_t flags);

constexpr int64_t kKeepUnchanged = 1, kNoNegatedOr = 2;

// The relaxed threshold where floats may misorder near-equal exact scores (penalized scores round twice;
// AUPRC's rationals pass 2^53): a few ulps below thr, so no candidate reaching the k-th best exact score
// is dropped; the exact selection decides among the few extra.
INVERT_FAST_HD inline bool relaxes_threshold(double penalty, int64_t objective) {
  return penalty > 0 || inexact_floats(objective);
}
constexpr double kRelaxation = 0x1p-44;  // relative; the CUDA twin (distinct_threshold.cuh) applies it to tensors
INVERT_FAST_HD inline double relaxed_threshold(double thr) { return thr - kRelaxation * (1 + fabs(thr)); }

inline void check_beam_step_inputs(const at::Tensor& x, const at::Tensor& x_p, int64_t shift, const at::Tensor& beam_s,
                                   const at::Tensor& beam_p, const at::Tensor& beam_valid, const at::Tensor& conc_s,
                                   const at::Tensor& conc_p, const at::Tensor& ext, int64_t k, const at::Tensor& totals,
                                   int64_t objective, const at::Tensor& beam_len, double penalty, int64_t flags) {
  TORCH_CHECK_VALUE(x.dim() == 3, "beam_step_select: x must be [Db, B, K], got shape ", x.sizes());
  const int64_t D = x.size(0), B = x.size(1), K = x.size(2);
  check_objective("beam_step_select", totals, D, objective);
  TORCH_CHECK_VALUE(penalty >= 0 && std::isfinite(penalty), "beam_step_select: penalty must be finite and >= 0, got ",
                    penalty);
  TORCH_CHECK_VALUE(flags >= 0 && flags <= (kKeepUnchanged | kNoNegatedOr), "beam_step_select: unknown flags ", flags);
  TORCH_CHECK_VALUE(
      penalty == 0 || (beam_len.sizes() == at::IntArrayRef({D, B}) && beam_len.scalar_type() == at::kLong),
      "beam_step_select: beam_len must be [", D, ", ", B, "] int64 with a penalty, got ", beam_len.sizes(), " ",
      beam_len.scalar_type());
  TORCH_CHECK_VALUE(shift >= 0 && shift < 63, "beam_step_select: shift must be in [0, 63), got ", shift);
  if (shift > 0) {
    TORCH_CHECK_VALUE(x_p.numel() == 0, "beam_step_select: x_p must be empty when x is packed (shift > 0), got shape ",
                      x_p.sizes());
  } else {
    TORCH_CHECK_VALUE(x_p.sizes() == x.sizes(), "beam_step_select: x_p must match x ", x.sizes(), ", got ",
                      x_p.sizes());
  }
  TORCH_CHECK_VALUE(beam_s.sizes() == at::IntArrayRef({D, B}) && beam_p.sizes() == beam_s.sizes() &&
                        beam_valid.sizes() == beam_s.sizes(),
                    "beam_step_select: beam_s, beam_p, beam_valid must be [", D, ", ", B, "], got ", beam_s.sizes(),
                    ", ", beam_p.sizes(), ", ", beam_valid.sizes());
  TORCH_CHECK_VALUE(conc_s.sizes() == at::IntArrayRef({D, K}) && conc_p.sizes() == at::IntArrayRef({K}),
                    "beam_step_select: conc_s must be [", D, ", ", K, "] and conc_p [", K, "], got ", conc_s.sizes(),
                    " and ", conc_p.sizes());
  TORCH_CHECK_VALUE(ext.sizes() == at::IntArrayRef({D, 2 * K}), "beam_step_select: ext must be [", D, ", ", 2 * K,
                    "], got ", ext.sizes());
  TORCH_CHECK_VALUE(k >= 1, "beam_step_select: k must be >= 1, got ", k);
  for (const at::Tensor* t : {&x, &beam_s, &beam_p, &conc_s, &conc_p}) {
    TORCH_CHECK_TYPE(t->scalar_type() == at::kLong, "beam_step_select: sums and sizes must be int64, got ",
                     t->scalar_type());
  }
  TORCH_CHECK_TYPE(shift > 0 || x_p.scalar_type() == at::kLong, "beam_step_select: x_p must be int64, got ",
                   x_p.scalar_type());
  TORCH_CHECK_TYPE(beam_valid.scalar_type() == at::kBool && ext.scalar_type() == at::kBool,
                   "beam_step_select: beam_valid and ext must be bool, got ", beam_valid.scalar_type(), " and ",
                   ext.scalar_type());
}

// The pool's column layout (the Python twin is invert_fast/ops/pool.py: PoolLayout): candidate
// (beam b, op, atom a) -> (b * 2 + op) * 2K + a with op 0 = AND, 1 = OR and atoms c then ~c; the
// current beam formula b -> B * 4K + b. Both kernels write and read columns only through these.
INVERT_FAST_HD inline int64_t pool_candidate_column(int64_t b, int64_t op, int64_t a, int64_t K) {
  return (b * 2 + op) * 2 * K + a;
}
INVERT_FAST_HD inline int64_t pool_beam_column(int64_t b, int64_t B, int64_t K) { return B * 4 * K + b; }
INVERT_FAST_HD inline int64_t pool_width(int64_t B, int64_t K) { return B * 4 * K + B; }

// Scores of the four candidates of (beam row r, concept c); see the header comment.
struct BeamRow {
  int64_t sb, pb;  // the beam formula's statistic and size
  bool valid;
};
// (statistic, size) of b & c, b & ~c, b | c, b | ~c from X = (xs, xp) of b & c (inclusion-exclusion;
// total: the neuron's statistic over all n samples).
INVERT_FAST_HD inline void candidate_sums(int64_t xs, int64_t xp, int64_t sb, int64_t pb, int64_t sc, int64_t pc,
                                          int64_t n, int64_t total, int64_t s[4], int64_t p[4]) {
  s[0] = xs, s[1] = sb - xs, s[2] = sb + sc - xs, s[3] = total - sc + xs;
  p[0] = xp, p[1] = pb - xp, p[2] = pb + pc - xp, p[3] = n - pc + xp;
}

// A pool column's parts: a candidate (beam b, op, atom a) or, with op = -1, the current beam formula b.
struct PoolColumn {
  int64_t b, op, a;
};
INVERT_FAST_HD inline PoolColumn decode_pool_column(int64_t col, int64_t B, int64_t K) {
  if (col >= pool_beam_column(0, B, K)) return {col - pool_beam_column(0, B, K), -1, -1};
  const int64_t b = col / (4 * K), rem = col % (4 * K);
  return {b, rem / (2 * K), rem % (2 * K)};
}

// Whether candidate i (0 b & c, 1 b & ~c, 2 b | c, 3 b | ~c) of a beam row is in the pool: the row holds a
// formula, the atom may extend it (pos_ok for c, neg_ok for ~c), the grammar has the operator, and its mask
// differs from the beam's (same size: same mask) unless kKeepUnchanged.
INVERT_FAST_HD inline bool candidate_kept(int i, int64_t p, const BeamRow& row, bool pos_ok, bool neg_ok,
                                          int64_t flags) {
  if (i == 3 && (flags & kNoNegatedOr)) return false;
  return row.valid && (i % 2 == 0 ? pos_ok : neg_ok) && ((flags & kKeepUnchanged) || p != row.pb);
}

// A score less the length penalty of `extra` atoms beyond the first (-inf stays -inf).
INVERT_FAST_HD inline double penalized(double v, double penalty, int64_t extra) {
  return penalty > 0 && v != -INFINITY ? v - penalty * static_cast<double>(extra) : v;
}

// Scores of the four candidates of (beam row, concept c): len is the beam formula's atoms (its candidates
// have len + 1), read with a penalty only.
INVERT_FAST_HD inline void candidate_scores(int64_t xs, int64_t xp, const BeamRow& row, int64_t sc, int64_t pc,
                                            bool pos_ok, bool neg_ok, const Objective& obj, int64_t p_lo, int64_t p_hi,
                                            double sign, int64_t flags, double penalty, int64_t len, double out[4]) {
  int64_t s[4], p[4];
  candidate_sums(xs, xp, row.sb, row.pb, sc, pc, obj.n, obj.total, s, p);
  for (int i = 0; i < 4; ++i) {
    const bool keep = candidate_kept(i, p[i], row, pos_ok, neg_ok, flags);
    out[i] = penalized(mask_score(s[i], p[i], keep, obj, p_lo, p_hi, sign), penalty, len);
  }
}

// (statistic, size) of pool column col of neuron d (row-major [Db, B, K] x, x_p; [Db, B] beams;
// [Db, K] concept sums; [K] concept sizes; total: the neuron's statistic over all n samples): what the
// selection needs of every kept column.
INVERT_FAST_HD inline void pool_column_sums(int64_t col, int64_t d, int64_t B, int64_t K, const int64_t* x,
                                            const int64_t* x_p, int64_t shift, const int64_t* beam_s,
                                            const int64_t* beam_p, const int64_t* conc_s, const int64_t* conc_p,
                                            int64_t n, int64_t total, int64_t* s_out, int64_t* p_out) {
  const PoolColumn pc = decode_pool_column(col, B, K);
  const int64_t r = d * B + pc.b;
  if (pc.op < 0) {
    *s_out = beam_s[r], *p_out = beam_p[r];
    return;
  }
  const int64_t c = pc.a % K, v = x[r * K + c];
  const int64_t xs = shift > 0 ? v >> shift : v, xp = shift > 0 ? v & ((int64_t{1} << shift) - 1) : x_p[r * K + c];
  int64_t s[4], p[4];
  candidate_sums(xs, xp, beam_s[r], beam_p[r], conc_s[d * K + c], conc_p[c], n, total, s, p);
  const int i = static_cast<int>(pc.op * 2 + (pc.a >= K ? 1 : 0));
  *s_out = s[i], *p_out = p[i];
}

// The k best distinct finite values of a stream, kept in a small ascending array: threshold() is the
// k-th best distinct value seen (or -max while fewer than k distinct values came).
struct DistinctTop {
  int64_t k;
  std::vector<double> top;  // ascending, distinct, at most k
  int64_t finite = 0;
  void push(double v) {
    if (v == -INFINITY) return;
    ++finite;
    insert(v);
  }
  void insert(double v) {  // a finite value, already counted
    if (full() && v <= top.front()) return;
    auto it = std::lower_bound(top.begin(), top.end(), v);
    if (it != top.end() && *it == v) return;
    top.insert(it, v);
    if (static_cast<int64_t>(top.size()) > k) top.erase(top.begin());
  }
  bool full() const { return static_cast<int64_t>(top.size()) == k; }
  double front() const { return top.front(); }
  double threshold() const { return full() ? top.front() : -std::numeric_limits<double>::max(); }
};

// True when the correctly rounded quotient a / den is surely below t, given a (exact) and b = t * den
// (one rounding): a margin of 2^-48 covers both roundings, so a candidate is never dropped wrongly
// (a near-tie is simply divided and compared exactly).
inline bool below(double a, double b) {
  constexpr double kMargin = 1.0 / 281474976710656.0;  // 2^-48
  if (b > 0) return a < b * (1 - kMargin);
  if (b < 0) return a < b * (1 + kMargin);
  return a < 0;
}

}  // namespace invert_fast
