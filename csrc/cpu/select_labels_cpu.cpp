// CPU kernel of select_labels: candidates are bucketed by neuron; one task per neuron copies its bucket
// into scratch arrays and runs the shared selection (csrc/selection.h).
#include <ATen/Parallel.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>
#include <unordered_map>
#include <vector>

#include "../select_labels.h"
#include "../selection.h"

namespace invert_fast {

SelectLabelsResult select_labels_cpu(const at::Tensor& neuron, const at::Tensor& s2, const at::Tensor& p,
                                     const at::Tensor& hist, const at::Tensor& words, const at::Tensor& atom_text,
                                     const at::Tensor& atom_offsets, int64_t n, double sign, int64_t B, bool distinct,
                                     int64_t D, const at::Tensor& totals, int64_t objective) {
  check_select_labels_input(neuron, s2, p, hist, words, distinct, B, D);
  check_objective("select_labels", totals, D, objective);
  check_atom_texts(atom_text, atom_offsets, "select_labels");
  const at::Tensor nc = neuron.contiguous(), sc = s2.contiguous(), pc = p.contiguous(), hc = hist.contiguous(),
                   wc = words.contiguous(), bytes = atom_text.contiguous(), offs = atom_offsets.contiguous(),
                   tt = totals.contiguous();
  const int64_t* tt_ = tt.const_data_ptr<int64_t>();
  const AtomTexts atoms(bytes, offs);
  const int64_t M = nc.size(0), T = hc.size(1), W = wc.size(1);
  const int64_t* nd = nc.const_data_ptr<int64_t>();
  const int64_t* sp = sc.const_data_ptr<int64_t>();
  const int64_t* pp = pc.const_data_ptr<int64_t>();
  const int64_t* hp = hc.const_data_ptr<int64_t>();
  const int64_t* wp = wc.const_data_ptr<int64_t>();
  at::Tensor winners = at::full({D, B}, -1, nc.options());
  at::Tensor lengths = at::zeros({D, B}, nc.options());
  if (M == 0 || D == 0) return {winners, lengths};

  for (int64_t m = 0; m < M; ++m) {
    TORCH_CHECK_VALUE(nd[m] >= 0 && nd[m] < D, "select_labels: neuron must lie in [0, ", D, "), got ", nd[m],
                      " at candidate ", m);
    // AUROC is defined for 0 < P < n; the overlap objectives for every size (compositional explanations).
    TORCH_CHECK_VALUE(objective == Auroc::kCode ? pp[m] > 0 && pp[m] < n : pp[m] >= 0 && pp[m] <= n,
                      "select_labels: candidate ", m, " has a mask of ", pp[m],
                      " samples; only masks with 0 < P < n = ", n, " have an AUC");
  }
  std::vector<int64_t> start, order;
  bucket_by_neuron(nd, M, D, start, order);  // keeps the input order within a neuron
  int64_t* win = winners.data_ptr<int64_t>();
  int64_t* lens = lengths.data_ptr<int64_t>();

  at::parallel_for(0, D, 1, [&](int64_t d0, int64_t d1) {
    Candidates c;
    SelectScratch scratch;
    std::vector<int64_t> chosen(static_cast<size_t>(B)), chosen_len(static_cast<size_t>(B));
    for (int64_t d = d0; d < d1; ++d) {
      const int64_t c0 = start[d], m = start[d + 1] - c0;
      if (m == 0) continue;
      const Objective obj{objective, n, tt_[d]};
      c.resize(m, T, W);
      for (int64_t i = 0; i < m; ++i) {
        const int64_t k = order[c0 + i];
        c.score[i] = obj.score(sp[k], pp[k]);
        std::memcpy(c.hist.data() + i * T, hp + k * T, static_cast<size_t>(T) * sizeof(int64_t));
        std::memcpy(c.words.data() + i * W, wp + k * W, static_cast<size_t>(W) * sizeof(int64_t));
      }
      const int64_t take = select_best(m, c, atoms, sign, B, distinct, scratch, chosen.data(), chosen_len.data());
      for (int64_t j = 0; j < take; ++j) {
        win[d * B + j] = order[c0 + chosen[j]];
        lens[d * B + j] = chosen_len[j];
      }
    }
  });
  return {winners, lengths};
}

TORCH_LIBRARY_IMPL(invert_fast, CPU, m) { m.impl("select_labels", &select_labels_cpu); }

}  // namespace invert_fast
