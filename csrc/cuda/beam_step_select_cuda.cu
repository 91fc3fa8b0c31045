// CUDA kernel of beam_step_select: a thread per (neuron, beam, concept) scores its 4 candidates into
// a [Db, C] buffer; the threshold (the k-th best distinct score) and the kept columns then come from ATen's sort and
// nonzero.
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <limits>

#include "../beam_step_select.h"
#include "distinct_threshold.cuh"

namespace invert_fast {
namespace {

constexpr int kThreads = 256;

__global__ void beam_pool_scores_kernel(const int64_t* __restrict__ x,   // [Db, B, K]
                                        const int64_t* __restrict__ xp,  // [Db, B, K] or null when packed
                                        int64_t shift,
                                        const int64_t* __restrict__ bs,  // [Db, B]
                                        const int64_t* __restrict__ bp,  // [Db, B]
                                        const bool* __restrict__ bv,     // [Db, B]
                                        const int64_t* __restrict__ cs,  // [Db, K]
                                        const int64_t* __restrict__ cp,  // [K]
                                        const bool* __restrict__ ex,     // [Db, 2K]
                                        const int64_t* __restrict__ tt,  // [Db]
                                        const int64_t* __restrict__ bl,  // [Db, B] or null without a penalty
                                        double* __restrict__ score,      // [Db, B * 4K + B]
                                        int64_t B, int64_t K, int64_t n, int64_t p_lo, int64_t p_hi, double sign,
                                        int64_t rows, int64_t objective, double penalty, int64_t flags) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= rows * K) return;
  const int64_t r = i / K, c = i % K, d = r / B, b = r % B;
  const int64_t C = pool_width(B, K);
  const BeamRow row{bs[r], bp[r], bv[r]};
  const Objective obj{objective, n, tt[d]};
  const int64_t v = x[i];
  const int64_t xs = shift > 0 ? v >> shift : v;
  const int64_t xsz = shift > 0 ? v & ((int64_t{1} << shift) - 1) : xp[i];
  const int64_t len = bl ? bl[r] : 1;
  double out[4];
  candidate_scores(xs, xsz, row, cs[d * K + c], cp[c], ex[d * 2 * K + c], ex[d * 2 * K + K + c], obj, p_lo, p_hi, sign,
                   flags, penalty, len, out);
  double* and_row = score + d * C + pool_candidate_column(b, 0, 0, K);
  double* or_row = score + d * C + pool_candidate_column(b, 1, 0, K);
  and_row[c] = out[0];
  and_row[K + c] = out[1];
  or_row[c] = out[2];
  or_row[K + c] = out[3];
  if (c == 0) {
    score[d * C + pool_beam_column(b, B, K)] =
        penalized(mask_score(row.sb, row.pb, row.valid, obj, p_lo, p_hi, sign), penalty, len - 1);
  }
}

// (rank sum, size) of each kept column: a thread per kept (neuron, column).
__global__ void kept_sums_kernel(const int64_t* __restrict__ where,  // [M, 2] (neuron, column)
                                 const int64_t* __restrict__ x, const int64_t* __restrict__ xp, int64_t shift,
                                 const int64_t* __restrict__ bs, const int64_t* __restrict__ bp,
                                 const int64_t* __restrict__ cs, const int64_t* __restrict__ cp,
                                 const int64_t* __restrict__ tt, int64_t* __restrict__ s_out,
                                 int64_t* __restrict__ p_out, int64_t M, int64_t B, int64_t K, int64_t n) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (j >= M) return;
  const int64_t d = where[2 * j];
  pool_column_sums(where[2 * j + 1], d, B, K, x, xp, shift, bs, bp, cs, cp, n, tt[d], s_out + j, p_out + j);
}

}  // namespace

SelectResult beam_step_select_cuda(const at::Tensor& x, const at::Tensor& x_p, int64_t shift, const at::Tensor& beam_s,
                                   const at::Tensor& beam_p, const at::Tensor& beam_valid, const at::Tensor& conc_s,
                                   const at::Tensor& conc_p, const at::Tensor& ext, int64_t n, int64_t p_lo,
                                   int64_t p_hi, double sign, int64_t k, const at::Tensor& totals, int64_t objective,
                                   const at::Tensor& beam_len, double penalty, int64_t flags) {
  check_beam_step_inputs(x, x_p, shift, beam_s, beam_p, beam_valid, conc_s, conc_p, ext, k, totals, objective, beam_len,
                         penalty, flags);
  TORCH_INTERNAL_ASSERT(x.device().is_cuda());
  const c10::cuda::OptionalCUDAGuard guard(x.device());
  const int64_t D = x.size(0), B = x.size(1), K = x.size(2);
  const int64_t C = pool_width(B, K);
  at::Tensor score = at::empty({D, C}, x.options().dtype(at::kDouble));
  const at::Tensor xc = x.contiguous(), xpc = x_p.contiguous(), bs = beam_s.contiguous(), bp = beam_p.contiguous(),
                   bv = beam_valid.contiguous(), cs = conc_s.contiguous(), cp = conc_p.contiguous(),
                   ex = ext.contiguous(), tt = totals.contiguous(), bl = beam_len.contiguous();
  const int64_t items = D * B * K;
  if (items > 0) {
    const int64_t blocks = (items + kThreads - 1) / kThreads;
    TORCH_CHECK_VALUE(blocks <= 2147483647, "beam_step_select: too many candidates for one launch, got ", items);
    beam_pool_scores_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        xc.const_data_ptr<int64_t>(), shift > 0 ? nullptr : xpc.const_data_ptr<int64_t>(), shift,
        bs.const_data_ptr<int64_t>(), bp.const_data_ptr<int64_t>(), bv.const_data_ptr<bool>(),
        cs.const_data_ptr<int64_t>(), cp.const_data_ptr<int64_t>(), ex.const_data_ptr<bool>(),
        tt.const_data_ptr<int64_t>(), penalty > 0 ? bl.const_data_ptr<int64_t>() : nullptr, score.data_ptr<double>(), B,
        K, n, p_lo, p_hi, sign, D * B, objective, penalty, flags);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  if (D == 0 || C == 0) {
    return {at::zeros({D + 1}, x.options()), at::empty({0}, x.options()), at::empty({0}, score.options()),
            at::zeros({D}, x.options()),     at::empty({0}, x.options()), at::empty({0}, x.options())};
  }
  const KeptColumns kept = keep_top_columns(score, k, relaxes_threshold(penalty, objective));
  const at::Tensor& where = kept.where;
  const int64_t M = where.size(0);
  at::Tensor s_out = at::empty({M}, x.options()), p_out = at::empty({M}, x.options());
  if (M > 0) {
    kept_sums_kernel<<<static_cast<unsigned>((M + kThreads - 1) / kThreads), kThreads, 0,
                       at::cuda::getCurrentCUDAStream()>>>(
        where.const_data_ptr<int64_t>(), xc.const_data_ptr<int64_t>(),
        shift > 0 ? nullptr : xpc.const_data_ptr<int64_t>(), shift, bs.const_data_ptr<int64_t>(),
        bp.const_data_ptr<int64_t>(), cs.const_data_ptr<int64_t>(), cp.const_data_ptr<int64_t>(),
        tt.const_data_ptr<int64_t>(), s_out.data_ptr<int64_t>(), p_out.data_ptr<int64_t>(), M, B, K, n);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {kept.indptr, where.select(1, 1).contiguous(), score.masked_select(kept.hit), kept.valid, s_out, p_out};
}

TORCH_LIBRARY_IMPL(invert_fast, CUDA, m) { m.impl("beam_step_select", &beam_step_select_cuda); }

}  // namespace invert_fast
