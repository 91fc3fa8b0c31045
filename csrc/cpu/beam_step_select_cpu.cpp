// CPU kernel of beam_step_select: one task per neuron scores its pool into a cache-resident buffer,
// finds the k-th best distinct score in one pass (DistinctTop) and emits the columns at or above it.
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "../beam_step_select.h"

namespace invert_fast {

SelectResult beam_step_select_cpu(const at::Tensor& x, const at::Tensor& x_p, int64_t shift, const at::Tensor& beam_s,
                                  const at::Tensor& beam_p, const at::Tensor& beam_valid, const at::Tensor& conc_s,
                                  const at::Tensor& conc_p, const at::Tensor& ext, int64_t n, int64_t p_lo,
                                  int64_t p_hi, double sign, int64_t k, const at::Tensor& totals, int64_t objective,
                                  const at::Tensor& beam_len, double penalty, int64_t flags) {
  check_beam_step_inputs(x, x_p, shift, beam_s, beam_p, beam_valid, conc_s, conc_p, ext, k, totals, objective, beam_len,
                         penalty, flags);
  TORCH_INTERNAL_ASSERT(x.device().is_cpu());
  const int64_t D = x.size(0), B = x.size(1), K = x.size(2);
  const int64_t C = pool_width(B, K);
  const at::Tensor xc = x.contiguous(), xpc = x_p.contiguous(), bs = beam_s.contiguous(), bp = beam_p.contiguous(),
                   bv = beam_valid.contiguous(), cs = conc_s.contiguous(), cp = conc_p.contiguous(),
                   ex = ext.contiguous(), tt = totals.contiguous(), bl = beam_len.contiguous();
  const int64_t* tt_ = tt.const_data_ptr<int64_t>();
  const int64_t* bl_ = penalty > 0 ? bl.const_data_ptr<int64_t>() : nullptr;
  const int64_t* x_ = xc.const_data_ptr<int64_t>();
  const int64_t* xp_ = shift > 0 ? nullptr : xpc.const_data_ptr<int64_t>();
  const int64_t* bs_ = bs.const_data_ptr<int64_t>();
  const int64_t* bp_ = bp.const_data_ptr<int64_t>();
  const bool* bv_ = bv.const_data_ptr<bool>();
  const int64_t* cs_ = cs.const_data_ptr<int64_t>();
  const int64_t* cp_ = cp.const_data_ptr<int64_t>();
  const bool* ex_ = ex.const_data_ptr<bool>();
  const int64_t mask = shift > 0 ? (int64_t{1} << shift) - 1 : 0;

  std::vector<std::vector<int64_t>> cols(static_cast<size_t>(D));
  std::vector<std::vector<double>> vals(static_cast<size_t>(D));
  std::vector<int64_t> valid(static_cast<size_t>(D));
  at::parallel_for(0, D, 1, [&](int64_t d0, int64_t d1) {
    std::vector<double> score(static_cast<size_t>(C));
    for (int64_t d = d0; d < d1; ++d) {
      const int64_t* sc_row = cs_ + d * K;
      const bool* ext_row = ex_ + d * 2 * K;
      const Objective obj{objective, n, tt_[d]};
      DistinctTop top{k};
      // The score of one candidate, or -inf: not kept, or surely below the running threshold (the k-th
      // best distinct score so far; the final one is no lower), decided without the division (without
      // a penalty: penalized scores are kept whole, their threshold relaxed below).
      auto scored = [&](int64_t s, int64_t p, bool keep, int64_t extra) -> double {
        if (!keep || p < p_lo || p > p_hi) return -INFINITY;
        ++top.finite;
        const Score sc = obj.score(s, p);
        if (penalty == 0 && sc.den > 0 && top.full() &&
            below(sign * static_cast<double>(sc.num), top.front() * static_cast<double>(sc.den))) {
          return -INFINITY;
        }
        const double v = penalized(sign * sc.value, penalty, extra);
        top.insert(v);
        return v;
      };
      for (int64_t b = 0; b < B; ++b) {
        const int64_t r = d * B + b;
        const int64_t sb = bs_[r], pb = bp_[r], len = bl_ ? bl_[r] : 1;
        const BeamRow row{sb, pb, bv_[r]};
        double* and_row = score.data() + pool_candidate_column(b, 0, 0, K);
        double* or_row = score.data() + pool_candidate_column(b, 1, 0, K);
        for (int64_t c = 0; c < K; ++c) {
          const int64_t v = x_[r * K + c];
          const int64_t xs = shift > 0 ? v >> shift : v, xp = shift > 0 ? v & mask : xp_[r * K + c];
          int64_t cs[4], cps[4];
          candidate_sums(xs, xp, sb, pb, sc_row[c], cp_[c], n, obj.total, cs, cps);
          const bool pos = ext_row[c], neg = ext_row[K + c];
          double* out[4] = {and_row + c, and_row + K + c, or_row + c, or_row + K + c};
          for (int i = 0; i < 4; ++i)
            *out[i] = scored(cs[i], cps[i], candidate_kept(i, cps[i], row, pos, neg, flags), len);
        }
        score[pool_beam_column(b, B, K)] = scored(sb, pb, row.valid, len - 1);
      }
      valid[d] = top.finite;
      const double thr =
          top.full() && relaxes_threshold(penalty, objective) ? relaxed_threshold(top.threshold()) : top.threshold();
      for (int64_t j = 0; j < C; ++j) {
        if (score[j] >= thr) {
          cols[d].push_back(j);
          vals[d].push_back(score[j]);
        }
      }
    }
  });
  at::Tensor indptr = at::empty({D + 1}, x.options());
  int64_t* ip = indptr.data_ptr<int64_t>();
  ip[0] = 0;
  for (int64_t d = 0; d < D; ++d) ip[d + 1] = ip[d] + static_cast<int64_t>(cols[d].size());
  at::Tensor out_cols = at::empty({ip[D]}, x.options());
  at::Tensor out_vals = at::empty({ip[D]}, x.options().dtype(at::kDouble));
  at::Tensor out_valid = at::empty({D}, x.options());
  at::Tensor out_s = at::empty({ip[D]}, x.options()), out_p = at::empty({ip[D]}, x.options());
  for (int64_t d = 0; d < D; ++d) {
    std::copy(cols[d].begin(), cols[d].end(), out_cols.data_ptr<int64_t>() + ip[d]);
    std::copy(vals[d].begin(), vals[d].end(), out_vals.data_ptr<double>() + ip[d]);
    out_valid.data_ptr<int64_t>()[d] = valid[d];
  }
  int64_t* os = out_s.data_ptr<int64_t>();
  int64_t* op = out_p.data_ptr<int64_t>();
  const int64_t* oc = out_cols.const_data_ptr<int64_t>();
  for (int64_t d = 0; d < D; ++d) {
    for (int64_t j = ip[d]; j < ip[d + 1]; ++j) {
      pool_column_sums(oc[j], d, B, K, x_, xp_, shift, bs_, bp_, cs_, cp_, n, tt_[d], os + j, op + j);
    }
  }
  return {indptr, out_cols, out_vals, out_valid, out_s, out_p};
}

TORCH_LIBRARY_IMPL(invert_fast, CPU, m) { m.impl("beam_step_select", &beam_step_select_cpu); }

}  // namespace invert_fast
