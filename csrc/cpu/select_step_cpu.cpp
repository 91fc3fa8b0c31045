// CPU kernel of select_step: candidates bucketed by neuron; one task per neuron builds each kept
// column's history and mask from its beam's and runs the shared selection (csrc/selection.h).
#include <ATen/Parallel.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "../beam_step_select.h"
#include "../select_step.h"
#include "../selection.h"

namespace invert_fast {

std::tuple<at::Tensor, at::Tensor> select_step_cpu(
    const at::Tensor& neuron, const at::Tensor& cols, const at::Tensor& s2, const at::Tensor& p,
    const at::Tensor& beam_hist, const at::Tensor& beam_ntok, const at::Tensor& beam_words,
    const at::Tensor& atom_words, const at::Tensor& atom_text, const at::Tensor& atom_offsets, int64_t K, int64_t n,
    double sign, int64_t B, bool distinct, int64_t D, const at::Tensor& totals, int64_t objective, double penalty) {
  check_select_step_input(neuron, cols, s2, p, beam_hist, beam_ntok, beam_words, atom_words, K, B, D);
  check_objective("select_step", totals, D, objective);
  TORCH_CHECK_VALUE(penalty >= 0 && std::isfinite(penalty), "select_step: penalty must be finite and >= 0, got ",
                    penalty);
  check_atom_texts(atom_text, atom_offsets, "select_step");
  const at::Tensor nc = neuron.contiguous(), cc = cols.contiguous(), sc = s2.contiguous(), pc = p.contiguous(),
                   bh = beam_hist.contiguous(), bn = beam_ntok.contiguous(), bw = beam_words.contiguous(),
                   aw = atom_words.contiguous(), bytes = atom_text.contiguous(), offs = atom_offsets.contiguous(),
                   tt = totals.contiguous();
  const int64_t* tt_ = tt.const_data_ptr<int64_t>();
  const AtomTexts atoms(bytes, offs);
  TORCH_CHECK_VALUE(atoms.count() == 2 * K, "select_step: expected ", 2 * K, " atom texts, got ", atoms.count());
  const int64_t M = nc.size(0), Dh = bh.size(0), Bb = bh.size(1), T = bh.size(2), W = bw.size(2);
  const int64_t* nd = nc.const_data_ptr<int64_t>();
  const int64_t* cp = cc.const_data_ptr<int64_t>();
  const int64_t* sp = sc.const_data_ptr<int64_t>();
  const int64_t* pp = pc.const_data_ptr<int64_t>();
  const int64_t* hp = bh.const_data_ptr<int64_t>();
  const int64_t* np_ = bn.const_data_ptr<int64_t>();
  const int64_t* wp = bw.const_data_ptr<int64_t>();
  const int64_t* ap = aw.const_data_ptr<int64_t>();
  at::Tensor winners = at::full({D, B}, -1, nc.options());
  at::Tensor lengths = at::zeros({D, B}, nc.options());
  if (M == 0 || D == 0) return {winners, lengths};
  const int64_t width = pool_width(Bb, K);
  for (int64_t m = 0; m < M; ++m) {
    TORCH_CHECK_VALUE(nd[m] >= 0 && nd[m] < D, "select_step: neuron must lie in [0, ", D, "), got ", nd[m]);
    TORCH_CHECK_VALUE(cp[m] >= 0 && cp[m] < width, "select_step: column ", cp[m], " is outside the pool of ", Bb,
                      " beams and ", K, " concepts");
    // AUROC is defined for 0 < P < n; the overlap objectives for every size (compositional explanations).
    TORCH_CHECK_VALUE(objective == Auroc::kCode ? pp[m] > 0 && pp[m] < n : pp[m] >= 0 && pp[m] <= n,
                      "select_step: candidate ", m, " has a mask of ", pp[m],
                      " samples; only masks with 0 < P < n = ", n, " have an AUC");
  }
  std::vector<int64_t> start, order;
  bucket_by_neuron(nd, M, D, start, order);
  int64_t* win = winners.data_ptr<int64_t>();
  int64_t* lens = lengths.data_ptr<int64_t>();
  at::parallel_for(0, D, 1, [&](int64_t d0, int64_t d1) {
    Candidates c;
    SelectScratch scratch;
    std::vector<int64_t> chosen(static_cast<size_t>(B)), chosen_len(static_cast<size_t>(B));
    for (int64_t d = d0; d < d1; ++d) {
      const int64_t c0 = start[d], m = start[d + 1] - c0, dd = Dh == 1 ? 0 : d;
      if (m == 0) continue;
      const Objective obj{objective, n, tt_[d]};
      c.resize(m, T, W);
      for (int64_t i = 0; i < m; ++i) {
        const int64_t k = order[c0 + i];
        const PoolColumn col = decode_pool_column(cp[k], Bb, K);
        const int64_t r = dd * Bb + col.b;
        c.score[i] = obj.score(sp[k], pp[k]);
        int64_t* h = c.hist.data() + i * T;
        int64_t* w = c.words.data() + i * W;
        std::memcpy(h, hp + r * T, static_cast<size_t>(T) * sizeof(int64_t));
        const int64_t* wb = wp + r * W;
        if (col.op < 0) {
          std::memcpy(w, wb, static_cast<size_t>(W) * sizeof(int64_t));
          continue;
        }
        const int64_t t = np_[r];
        TORCH_CHECK_VALUE(t < T, "select_step: beam ", col.b, " of neuron ", d, " has ", t,
                          " tokens: no room for one more in histories of ", T);
        h[t] = (col.op + 1) * 2 * K + col.a;
        const int64_t* wa = ap + col.a * W;
        for (int64_t j = 0; j < W; ++j) w[j] = col.op == 1 ? (wb[j] | wa[j]) : (wb[j] & wa[j]);
      }
      const int64_t take =
          select_best(m, c, atoms, sign, B, distinct, scratch, chosen.data(), chosen_len.data(), penalty);
      for (int64_t j = 0; j < take; ++j) {
        win[d * B + j] = order[c0 + chosen[j]];
        lens[d * B + j] = chosen_len[j];
      }
    }
  });
  return {winners, lengths};
}

TORCH_LIBRARY_IMPL(invert_fast, CPU, m) { m.impl("select_step", &select_step_cpu); }

}  // namespace invert_fast
