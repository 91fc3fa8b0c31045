// CPU kernel of beam_step_select: one task per neuron scores its pool into a cache-resident buffer,
// finds the k-th best score with nth_element and emits the columns at or above it.
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
                                  int64_t p_hi, double sign, int64_t k) {
  check_beam_step_inputs(x, x_p, shift, beam_s, beam_p, beam_valid, conc_s, conc_p, ext, k);
  TORCH_INTERNAL_ASSERT(x.device().is_cpu());
  const int64_t D = x.size(0), B = x.size(1), K = x.size(2);
  const int64_t C = pool_width(B, K);
  const at::Tensor xc = x.contiguous(), xpc = x_p.contiguous(), bs = beam_s.contiguous(), bp = beam_p.contiguous(),
                   bv = beam_valid.contiguous(), cs = conc_s.contiguous(), cp = conc_p.contiguous(),
                   ex = ext.contiguous();
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
    std::vector<double> score(static_cast<size_t>(C)), finite;
    for (int64_t d = d0; d < d1; ++d) {
      const int64_t* sc_row = cs_ + d * K;
      const bool* ext_row = ex_ + d * 2 * K;
      for (int64_t b = 0; b < B; ++b) {
        const int64_t r = d * B + b;
        const BeamRow row{bs_[r], bp_[r], bv_[r]};
        double* and_row = score.data() + pool_candidate_column(b, 0, 0, K);
        double* or_row = score.data() + pool_candidate_column(b, 1, 0, K);
        for (int64_t c = 0; c < K; ++c) {
          const int64_t v = x_[r * K + c];
          const int64_t xs = shift > 0 ? v >> shift : v, xp = shift > 0 ? v & mask : xp_[r * K + c];
          double out[4];
          candidate_scores(xs, xp, row, sc_row[c], cp_[c], ext_row[c], ext_row[K + c], n, p_lo, p_hi, sign, out);
          and_row[c] = out[0];
          and_row[K + c] = out[1];
          or_row[c] = out[2];
          or_row[K + c] = out[3];
        }
        score[pool_beam_column(b, B, K)] = mask_score(row.sb, row.pb, row.valid, n, p_lo, p_hi, sign);
      }
      finite.clear();
      for (const double s : score) {
        if (s != -INFINITY) finite.push_back(s);
      }
      valid[d] = static_cast<int64_t>(finite.size());
      double thr = -std::numeric_limits<double>::max();
      if (static_cast<int64_t>(finite.size()) > k) {
        std::nth_element(finite.begin(), finite.begin() + (k - 1), finite.end(), std::greater<double>());
        thr = finite[k - 1];
      }
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
  for (int64_t d = 0; d < D; ++d) {
    std::copy(cols[d].begin(), cols[d].end(), out_cols.data_ptr<int64_t>() + ip[d]);
    std::copy(vals[d].begin(), vals[d].end(), out_vals.data_ptr<double>() + ip[d]);
    out_valid.data_ptr<int64_t>()[d] = valid[d];
  }
  return {indptr, out_cols, out_vals, out_valid};
}

TORCH_LIBRARY_IMPL(invert_fast, CPU, m) { m.impl("beam_step_select", &beam_step_select_cpu); }

}  // namespace invert_fast
