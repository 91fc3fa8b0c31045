// CUDA kernel of pair_step_select: a thread per (neuron, pair of concepts) scores its eight formulas
// (and the first K threads of a neuron its atoms) into a [Db, 2K * 4K + 2K] buffer initialised to
// -inf; the threshold (the k-th best distinct score) and the kept columns then come from ATen's sort and nonzero, as in
// beam_step_select.
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <limits>

#include "../pair_step_select.h"
#include "distinct_threshold.cuh"

namespace invert_fast {
namespace {

constexpr int kThreads = 256;

__global__ void pair_scores_kernel(const int64_t* __restrict__ x,   // [Db, K, K]
                                   const int64_t* __restrict__ xp,  // [Db, K, K] or null when packed
                                   int64_t shift,
                                   const int64_t* __restrict__ cs,  // [Db, K]
                                   const int64_t* __restrict__ cp,  // [K]
                                   const int64_t* __restrict__ tt,  // [Db]
                                   double* __restrict__ score,      // [Db, C]
                                   int64_t D, int64_t K, int64_t n, int64_t p_lo, int64_t p_hi, double sign,
                                   int64_t objective) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (t >= D * K * K) return;
  const int64_t d = t / (K * K), i = (t / K) % K, j = t % K;
  const int64_t C = pair_pool_width(K);
  const int64_t* sd = cs + d * K;
  double* out = score + d * C;
  const Objective obj{objective, n, tt[d]};
  if (i == 0 && j < K) {  // the atoms j and ~j
    out[pool_beam_column(j, 2 * K, K)] = mask_score(sd[j], cp[j], true, obj, p_lo, p_hi, sign);
    out[pool_beam_column(K + j, 2 * K, K)] = mask_score(obj.total - sd[j], n - cp[j], true, obj, p_lo, p_hi, sign);
  }
  if (j <= i) return;
  const int64_t v = x[t];
  const int64_t xs = shift > 0 ? v >> shift : v;
  const int64_t xsz = shift > 0 ? v & ((int64_t{1} << shift) - 1) : xp[t];
  for (int w = 0; w < 8; ++w) {
    const PairFormula f = pair_formula(w, i, j, K, xs, xsz, sd[i], cp[i], sd[j], cp[j], n, obj.total);
    out[f.col] = pair_score(f, obj, p_lo, p_hi, sign);
  }
}

// (rank sum, size) of each kept column: a thread per kept (neuron, column).
__global__ void kept_pair_sums_kernel(const int64_t* __restrict__ where,  // [M, 2] (neuron, column)
                                      const int64_t* __restrict__ x, const int64_t* __restrict__ xp, int64_t shift,
                                      const int64_t* __restrict__ cs, const int64_t* __restrict__ cp,
                                      const int64_t* __restrict__ tt, int64_t* __restrict__ s_out,
                                      int64_t* __restrict__ p_out, int64_t M, int64_t K, int64_t n) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (j >= M) return;
  const int64_t d = where[2 * j];
  pair_column_sums(where[2 * j + 1], d, K, x, xp, shift, cs, cp, n, tt[d], s_out + j, p_out + j);
}

}  // namespace

SelectResult pair_step_select_cuda(const at::Tensor& x, const at::Tensor& x_p, int64_t shift, const at::Tensor& conc_s,
                                   const at::Tensor& conc_p, int64_t n, int64_t p_lo, int64_t p_hi, double sign,
                                   int64_t k, const at::Tensor& totals, int64_t objective) {
  check_pair_step_inputs(x, x_p, shift, conc_s, conc_p, k, totals, objective);
  TORCH_INTERNAL_ASSERT(x.device().is_cuda());
  const c10::cuda::OptionalCUDAGuard guard(x.device());
  const int64_t D = x.size(0), K = x.size(1), C = pair_pool_width(K);
  if (D == 0 || K == 0) {
    return {
        at::zeros({D + 1}, x.options()), at::empty({0}, x.options()), at::empty({0}, x.options().dtype(at::kDouble)),
        at::zeros({D}, x.options()),     at::empty({0}, x.options()), at::empty({0}, x.options())};
  }
  at::Tensor score = at::full({D, C}, -std::numeric_limits<double>::infinity(), x.options().dtype(at::kDouble));
  const at::Tensor xc = x.contiguous(), xpc = x_p.contiguous(), cs = conc_s.contiguous(), cp = conc_p.contiguous(),
                   tt = totals.contiguous();
  const int64_t items = D * K * K;
  const int64_t blocks = (items + kThreads - 1) / kThreads;
  TORCH_CHECK_VALUE(blocks <= 2147483647, "pair_step_select: too many pairs for one launch, got ", items);
  pair_scores_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      xc.const_data_ptr<int64_t>(), shift > 0 ? nullptr : xpc.const_data_ptr<int64_t>(), shift,
      cs.const_data_ptr<int64_t>(), cp.const_data_ptr<int64_t>(), tt.const_data_ptr<int64_t>(),
      score.data_ptr<double>(), D, K, n, p_lo, p_hi, sign, objective);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  const KeptColumns kept = keep_top_columns(score, k, inexact_floats(objective));
  const at::Tensor& where = kept.where;
  const int64_t M = where.size(0);
  at::Tensor s_out = at::empty({M}, x.options()), p_out = at::empty({M}, x.options());
  if (M > 0) {
    kept_pair_sums_kernel<<<static_cast<unsigned>((M + kThreads - 1) / kThreads), kThreads, 0,
                            at::cuda::getCurrentCUDAStream()>>>(
        where.const_data_ptr<int64_t>(), xc.const_data_ptr<int64_t>(),
        shift > 0 ? nullptr : xpc.const_data_ptr<int64_t>(), shift, cs.const_data_ptr<int64_t>(),
        cp.const_data_ptr<int64_t>(), tt.const_data_ptr<int64_t>(), s_out.data_ptr<int64_t>(),
        p_out.data_ptr<int64_t>(), M, K, n);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {kept.indptr, where.select(1, 1).contiguous(), score.masked_select(kept.hit), kept.valid, s_out, p_out};
}

TORCH_LIBRARY_IMPL(invert_fast, CUDA, m) { m.impl("pair_step_select", &pair_step_select_cuda); }

}  // namespace invert_fast
