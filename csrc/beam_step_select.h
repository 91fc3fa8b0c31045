// beam_step_select: the fused epilogue of one beam-search step -- score every candidate, keep the best.
//
// For beam formula b of neuron d and atom a (concept c = a mod K, negated when a >= K), the
// candidates b AND a and b OR a have doubled rank sums and sizes that follow by inclusion-exclusion
// from X = (rank sum, size) of b AND c:
//   b & c = X,  b & ~c = b - X,  b | c = b + c - X,  b | ~c = total - c + X.
// A neuron's pool is its B * 4K candidates plus its B current beam formulas. Each is scored with its
// exact AUC (sign * AUC; -inf for candidates not kept: not admissible, mask unchanged, atom outside
// the neuron's extension set, or an empty beam slot), and only the columns whose score reaches the
// neuron's k-th best are returned, ties included -- the scores never leave the kernel otherwise.
//
// Pool columns: see pool_candidate_column / pool_beam_column below.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <tuple>

#include "macros.h"

namespace invert_fast {

// x:           [Db, B, K] int64; with shift > 0, (rank sum << shift) + size of (beam b AND concept c),
//              with shift == 0 the rank sum alone and x_p [Db, B, K] int64 the size (else x_p is empty)
// beam_s/p:    [Db, B] int64 doubled rank sum and size of each beam formula
// beam_valid:  [Db, B] bool, false for empty beam slots
// conc_s:      [Db, K] int64 doubled rank sum of each concept;  conc_p: [K] int64 concept sizes
// ext:         [Db, 2K] bool, atoms allowed to extend the neuron's beams
// n:           samples N;  p_lo, p_hi: admissible mask sizes are p_lo <= P <= p_hi
// sign:        +1 scores AUC (mode positive), -1 scores -AUC (mode negative)
// k:           how many of the best scores set each neuron's threshold (ties at it are all kept)
// returns:     indptr [Db + 1] int64, cols [M] int64 (ascending per neuron), vals [M] float64 scores,
//              valid [Db] int64 number of pool members with a finite score
using SelectResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
SelectResult beam_step_select_cpu(const at::Tensor& x, const at::Tensor& x_p, int64_t shift, const at::Tensor& beam_s,
                                  const at::Tensor& beam_p, const at::Tensor& beam_valid, const at::Tensor& conc_s,
                                  const at::Tensor& conc_p, const at::Tensor& ext, int64_t n, int64_t p_lo,
                                  int64_t p_hi, double sign, int64_t k);
SelectResult beam_step_select_cuda(const at::Tensor& x, const at::Tensor& x_p, int64_t shift, const at::Tensor& beam_s,
                                   const at::Tensor& beam_p, const at::Tensor& beam_valid, const at::Tensor& conc_s,
                                   const at::Tensor& conc_p, const at::Tensor& ext, int64_t n, int64_t p_lo,
                                   int64_t p_hi, double sign, int64_t k);

inline void check_beam_step_inputs(const at::Tensor& x, const at::Tensor& x_p, int64_t shift, const at::Tensor& beam_s,
                                   const at::Tensor& beam_p, const at::Tensor& beam_valid, const at::Tensor& conc_s,
                                   const at::Tensor& conc_p, const at::Tensor& ext, int64_t k) {
  TORCH_CHECK_VALUE(x.dim() == 3, "beam_step_select: x must be [Db, B, K], got shape ", x.sizes());
  const int64_t D = x.size(0), B = x.size(1), K = x.size(2);
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

// The score of one mask: sign * exact AUC, or -inf when it is not kept. Shared by both backends
// (and equal to invert_fast.auroc's arithmetic) so they agree to the bit.
INVERT_FAST_HD inline double mask_score(int64_t s, int64_t p, bool keep, int64_t n, int64_t p_lo, int64_t p_hi,
                                        double sign) {
  if (!keep || p < p_lo || p > p_hi) return -INFINITY;
  const double num = static_cast<double>(s - p * (p + 1));
  const double den = static_cast<double>(2 * p * (n - p));
  return sign * (num / den);
}

// Scores of the four candidates of (beam row r, concept c); see the header comment.
struct BeamRow {
  int64_t sb, pb;  // the beam formula's rank sum and size
  bool valid;
};
INVERT_FAST_HD inline void candidate_scores(int64_t xs, int64_t xp, const BeamRow& row, int64_t sc, int64_t pc,
                                            bool pos_ok, bool neg_ok, int64_t n, int64_t p_lo, int64_t p_hi,
                                            double sign, double out[4]) {
  const int64_t total = n * (n + 1);
  const int64_t s[4] = {xs, row.sb - xs, row.sb + sc - xs, total - sc + xs};
  const int64_t p[4] = {xp, row.pb - xp, row.pb + pc - xp, n - pc + xp};
  const bool ok[4] = {pos_ok, neg_ok, pos_ok, neg_ok};
  for (int i = 0; i < 4; ++i)
    out[i] = mask_score(s[i], p[i], row.valid && ok[i] && p[i] != row.pb, n, p_lo, p_hi, sign);
}

}  // namespace invert_fast
