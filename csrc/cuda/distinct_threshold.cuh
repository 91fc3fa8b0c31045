// Shared by the CUDA step kernels: each row's k-th best distinct finite score, the threshold of
// beam_step_select and pair_step_select (the CPU kernels' DistinctTop, in ATen operations), and the
// columns it keeps in the CSR layout both kernels return.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/abs.h>
#include <ATen/ops/add.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/cumsum.h>
#include <ATen/ops/full_like.h>
#include <ATen/ops/ge.h>
#include <ATen/ops/gt.h>
#include <ATen/ops/mul.h>
#include <ATen/ops/nonzero.h>
#include <ATen/ops/ones_like.h>
#include <ATen/ops/sort.h>
#include <ATen/ops/sub.h>
#include <ATen/ops/where.h>
#include <ATen/ops/zeros.h>

#include <limits>

#include "../beam_step_select.h"

namespace invert_fast {

// score: [D, C] float64 (-inf: not a candidate);  returns [D, 1]: the k-th largest distinct finite value
// of each row, or -max where a row has fewer than k distinct finite values (every finite column kept).
inline at::Tensor kth_distinct_threshold(const at::Tensor& score, int64_t k) {
  const int64_t C = score.size(1);
  const at::Tensor sorted = std::get<0>(at::sort(score, 1, /*descending=*/true));
  at::Tensor is_new = at::ones_like(sorted, sorted.options().dtype(at::kBool));
  if (C > 1) is_new.narrow(1, 1, C - 1).copy_(sorted.narrow(1, 1, C - 1).ne(sorted.narrow(1, 0, C - 1)));
  is_new = is_new.logical_and(sorted.gt(-std::numeric_limits<double>::infinity()));
  const at::Tensor hit = is_new.logical_and(is_new.to(at::kLong).cumsum(1).eq(k));
  const at::Tensor thr = sorted.gather(1, hit.to(at::kInt).argmax(1, /*keepdim=*/true));
  return at::where(hit.any(1, /*keepdim=*/true), thr, at::full_like(thr, -std::numeric_limits<double>::max()));
}

// The columns of score [D, C] at or above each row's kth_distinct_threshold: hit [D, C] bool; where
// [M, 2] (neuron, column), row-major, so neurons then columns ascend; indptr [D + 1] int64 (row d's
// kept columns are where[indptr[d] .. indptr[d + 1])); valid [D] int64 finite scores per row.
struct KeptColumns {
  at::Tensor hit, where, indptr, valid;
};

// relax: the threshold lowered by a few ulps (relaxed_threshold, beam_step_select.h), as on the CPU.
inline KeptColumns keep_top_columns(const at::Tensor& score, int64_t k, bool relax = false) {
  at::Tensor thr = kth_distinct_threshold(score, k);
  if (relax) {
    const double lowest = -std::numeric_limits<double>::max();
    thr = at::where(thr.gt(lowest), at::sub(thr, at::mul(at::add(at::abs(thr), 1), kRelaxation)), thr);
  }
  const at::Tensor hit = at::ge(score, thr);
  const at::Tensor where = at::nonzero(hit).contiguous();
  const at::Tensor indptr = at::cat({at::zeros({1}, score.options().dtype(at::kLong)), at::cumsum(hit.sum(1), 0)});
  const at::Tensor valid = at::gt(score, -std::numeric_limits<double>::infinity()).sum(1);
  return {hit, where, indptr, valid};
}

}  // namespace invert_fast
