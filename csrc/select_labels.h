// select_labels: each neuron's best B labels among gathered candidates, by the search's exact order --
// the one selection the beam search and the exact search share.
//
// Order: the objective's score (AUROC: higher first in positive mode, lower in negative), compared
// exactly (objective.h);
// then shorter canonical length; then canonical text (formula_texts.h). With distinct, candidates
// whose sample masks are equal count once (the first in that order is kept: the shortest, then the
// first in text order); without, equal texts (the same formula reached twice) count once. Texts are
// built only where AUC and length tie.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <tuple>

namespace invert_fast {

// neuron:  [M] int64 neuron of each candidate, in [0, D)
// s2, p:   [M] int64 statistic (AUROC: doubled rank sum) and size of each candidate's mask (0 < p < n:
//          admissible ones only)
// hist:    [M, T] int64 formula histories (formula_texts.h)
// words:   [M, W] int64 packed masks (region space is enough), equal exactly when the masks are; W may
//          be 0 when distinct is false
// atom_text, atom_offsets: the 2K atom texts (formula_texts.h)
// n: samples; sign: +1 / -1 (mode); B: labels per neuron; distinct: one label per mask; D: neurons
// totals: [D] int64 each neuron's statistic over all samples; objective: its code (objective.h)
// returns: winners [D, B] int64 candidate indices best first (-1 padding), lengths [D, B] int64
using SelectLabelsResult = std::tuple<at::Tensor, at::Tensor>;
SelectLabelsResult select_labels_cpu(const at::Tensor& neuron, const at::Tensor& s2, const at::Tensor& p,
                                     const at::Tensor& hist, const at::Tensor& words, const at::Tensor& atom_text,
                                     const at::Tensor& atom_offsets, int64_t n, double sign, int64_t B, bool distinct,
                                     int64_t D, const at::Tensor& totals, int64_t objective);

inline void check_select_labels_input(const at::Tensor& neuron, const at::Tensor& s2, const at::Tensor& p,
                                      const at::Tensor& hist, const at::Tensor& words, bool distinct, int64_t B,
                                      int64_t D) {
  TORCH_CHECK_VALUE(neuron.dim() == 1, "select_labels: neuron must be [M], got shape ", neuron.sizes());
  const int64_t M = neuron.size(0);
  TORCH_CHECK_VALUE(s2.sizes() == neuron.sizes() && p.sizes() == neuron.sizes(), "select_labels: s2 and p must be [", M,
                    "], got ", s2.sizes(), " and ", p.sizes());
  TORCH_CHECK_VALUE(hist.dim() == 2 && hist.size(0) == M && hist.size(1) >= 1, "select_labels: hist must be [", M,
                    ", T], got ", hist.sizes());
  TORCH_CHECK_VALUE(words.dim() == 2 && words.size(0) == M && (words.size(1) > 0 || !distinct),
                    "select_labels: words must be [", M, ", W] (W > 0 with distinct), got ", words.sizes());
  for (const at::Tensor* t : {&neuron, &s2, &p, &hist, &words}) {
    TORCH_CHECK_TYPE(t->scalar_type() == at::kLong, "select_labels: inputs must be int64, got ", t->scalar_type());
    TORCH_CHECK_VALUE(t->device().is_cpu(), "select_labels: runs on the CPU (the gathered candidates are few), got ",
                      t->device());
  }
  TORCH_CHECK_VALUE(B >= 1 && D >= 0, "select_labels: B must be >= 1 and D >= 0, got B = ", B, ", D = ", D);
}

}  // namespace invert_fast
