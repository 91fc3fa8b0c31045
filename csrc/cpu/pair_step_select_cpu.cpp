// CPU kernel of pair_step_select: one task per neuron streams its 8 K (K - 1) / 2 + 2K candidates
// through a running threshold (the k-th best distinct score so far; a buffer of the candidates at or
// above it, purged as it rises), so the full pool never exists in memory.
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "../pair_step_select.h"

namespace invert_fast {
namespace {

// Keeps the candidates scoring at least the k-th best distinct value seen so far (ties included): the
// buffer is purged of entries below the threshold whenever it grows past a few times k.
// relax: the threshold lowered by a few ulps where floats may misorder (relaxed_threshold).
struct TopStream {
  DistinctTop top;
  bool relax;
  std::vector<std::pair<double, int64_t>> buf;

  TopStream(int64_t k, bool relax_) : top{k}, relax(relax_) {}
  double threshold() const { return relax && top.full() ? relaxed_threshold(top.threshold()) : top.threshold(); }
  void push(double score, int64_t col) {
    if (score == -INFINITY) return;
    top.push(score);
    if (score < threshold()) return;
    buf.emplace_back(score, col);
    if (static_cast<int64_t>(buf.size()) > 8 * top.k + 256) cut();
  }
  void cut() {
    const double thr = threshold();
    buf.erase(std::remove_if(buf.begin(), buf.end(), [&](const auto& e) { return e.first < thr; }), buf.end());
  }
};

}  // namespace

SelectResult pair_step_select_cpu(const at::Tensor& x, const at::Tensor& x_p, int64_t shift, const at::Tensor& conc_s,
                                  const at::Tensor& conc_p, int64_t n, int64_t p_lo, int64_t p_hi, double sign,
                                  int64_t k, const at::Tensor& totals, int64_t objective) {
  check_pair_step_inputs(x, x_p, shift, conc_s, conc_p, k, totals, objective);
  TORCH_INTERNAL_ASSERT(x.device().is_cpu());
  const int64_t D = x.size(0), K = x.size(1);
  const at::Tensor xc = x.contiguous(), xpc = x_p.contiguous(), cs = conc_s.contiguous(), cp = conc_p.contiguous(),
                   tt = totals.contiguous();
  const int64_t* tt_ = tt.const_data_ptr<int64_t>();
  const int64_t* x_ = xc.const_data_ptr<int64_t>();
  const int64_t* xp_ = shift > 0 ? nullptr : xpc.const_data_ptr<int64_t>();
  const int64_t* cs_ = cs.const_data_ptr<int64_t>();
  const int64_t* cp_ = cp.const_data_ptr<int64_t>();
  const int64_t mask = shift > 0 ? (int64_t{1} << shift) - 1 : 0;
  std::vector<std::vector<std::pair<double, int64_t>>> kept(static_cast<size_t>(D));
  std::vector<int64_t> valid(static_cast<size_t>(D));
  at::parallel_for(0, D, 1, [&](int64_t d0, int64_t d1) {
    for (int64_t d = d0; d < d1; ++d) {
      TopStream top(k, inexact_floats(objective));
      const int64_t* sd = cs_ + d * K;
      const Objective obj{objective, n, tt_[d]};
      const int64_t total = obj.total;
      for (int64_t a = 0; a < 2 * K; ++a) {  // the atoms themselves
        const int64_t c = a % K;
        const int64_t s = a < K ? sd[c] : total - sd[c], p = a < K ? cp_[c] : n - cp_[c];
        top.push(mask_score(s, p, true, obj, p_lo, p_hi, sign), pool_beam_column(a, 2 * K, K));
      }
      for (int64_t i = 0; i < K; ++i) {
        const int64_t* row = x_ + (d * K + i) * K;
        const int64_t* row_p = xp_ ? xp_ + (d * K + i) * K : nullptr;
        for (int64_t j = i + 1; j < K; ++j) {
          const int64_t v = row[j];
          const int64_t xs = shift > 0 ? v >> shift : v, xsz = shift > 0 ? v & mask : row_p[j];
          for (int t = 0; t < 8; ++t) {
            const PairFormula f = pair_formula(t, i, j, K, xs, xsz, sd[i], cp_[i], sd[j], cp_[j], n, total);
            top.push(pair_score(f, obj, p_lo, p_hi, sign), f.col);
          }
        }
      }
      top.cut();
      std::sort(top.buf.begin(), top.buf.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
      kept[d] = std::move(top.buf);
      valid[d] = top.top.finite;
    }
  });
  at::Tensor indptr = at::empty({D + 1}, x.options());
  int64_t* ip = indptr.data_ptr<int64_t>();
  ip[0] = 0;
  for (int64_t d = 0; d < D; ++d) ip[d + 1] = ip[d] + static_cast<int64_t>(kept[d].size());
  at::Tensor cols = at::empty({ip[D]}, x.options());
  at::Tensor vals = at::empty({ip[D]}, x.options().dtype(at::kDouble));
  at::Tensor out_valid = at::empty({D}, x.options());
  at::Tensor out_s = at::empty({ip[D]}, x.options()), out_p = at::empty({ip[D]}, x.options());
  for (int64_t d = 0; d < D; ++d) {
    for (size_t i = 0; i < kept[d].size(); ++i) {
      const int64_t j = ip[d] + static_cast<int64_t>(i);
      cols.data_ptr<int64_t>()[j] = kept[d][i].second;
      vals.data_ptr<double>()[j] = kept[d][i].first;
      pair_column_sums(kept[d][i].second, d, K, x_, xp_, shift, cs_, cp_, n, tt_[d], out_s.data_ptr<int64_t>() + j,
                       out_p.data_ptr<int64_t>() + j);
    }
    out_valid.data_ptr<int64_t>()[d] = valid[d];
  }
  return {indptr, cols, vals, out_valid, out_s, out_p};
}

TORCH_LIBRARY_IMPL(invert_fast, CPU, m) { m.impl("pair_step_select", &pair_step_select_cpu); }

}  // namespace invert_fast
