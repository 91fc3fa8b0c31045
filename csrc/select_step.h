// select_step: each neuron's best B formulas among the kept columns of a beam-step pool, by the
// search's exact order (csrc/selection.h) -- select_labels with the candidates' histories and masks
// built here from the beams' (pool layout: beam_step_select.h), so nothing per candidate is built in
// Python.
//
// A column (beam b, op, atom a) is the formula b op a: history = b's history plus the token
// (op + 1) * 2K + a, mask = b's mask AND / OR a's mask; a column of the current beam b is b itself.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <tuple>

namespace invert_fast {

// neuron, cols, s2, p: [M] int64 kept columns (beam_step_select / pair_step_select) and their sums
// beam_hist: [Db or 1, Bb, T] int64 histories of the beams (1: the same beams for every neuron);
// beam_ntok: [Db or 1, Bb] tokens used; beam_words: [Db or 1, Bb, W] packed region masks
// atom_words: [2K, W] packed region masks of the atoms; atom_text, atom_offsets: the atom texts
// K: concepts; n, sign, B, distinct, D, totals, objective: as select_labels
// penalty: >= 0, subtracted once per atom beyond a formula's first (0: none; compositional explanations)
// returns: winners [D, B] int64 indices into the M candidates best first (-1 padding), lengths [D, B]
std::tuple<at::Tensor, at::Tensor> select_step_cpu(
    const at::Tensor& neuron, const at::Tensor& cols, const at::Tensor& s2, const at::Tensor& p,
    const at::Tensor& beam_hist, const at::Tensor& beam_ntok, const at::Tensor& beam_words,
    const at::Tensor& atom_words, const at::Tensor& atom_text, const at::Tensor& atom_offsets, int64_t K, int64_t n,
    double sign, int64_t B, bool distinct, int64_t D, const at::Tensor& totals, int64_t objective, double penalty);

inline void check_select_step_input(const at::Tensor& neuron, const at::Tensor& cols, const at::Tensor& s2,
                                    const at::Tensor& p, const at::Tensor& beam_hist, const at::Tensor& beam_ntok,
                                    const at::Tensor& beam_words, const at::Tensor& atom_words, int64_t K, int64_t B,
                                    int64_t D) {
  TORCH_CHECK_VALUE(neuron.dim() == 1 && cols.sizes() == neuron.sizes() && s2.sizes() == neuron.sizes() &&
                        p.sizes() == neuron.sizes(),
                    "select_step: neuron, cols, s2 and p must be [M], got ", neuron.sizes(), ", ", cols.sizes(), ", ",
                    s2.sizes(), " and ", p.sizes());
  TORCH_CHECK_VALUE(beam_hist.dim() == 3 && beam_ntok.dim() == 2 && beam_words.dim() == 3 &&
                        beam_ntok.size(0) == beam_hist.size(0) && beam_ntok.size(1) == beam_hist.size(1) &&
                        beam_words.size(0) == beam_hist.size(0) && beam_words.size(1) == beam_hist.size(1) &&
                        (beam_hist.size(0) == D || beam_hist.size(0) == 1),
                    "select_step: beam_hist [Db, Bb, T], beam_ntok [Db, Bb] and beam_words [Db, Bb, W] must agree "
                    "(Db = ",
                    D, " or 1), got ", beam_hist.sizes(), ", ", beam_ntok.sizes(), " and ", beam_words.sizes());
  TORCH_CHECK_VALUE(atom_words.dim() == 2 && atom_words.size(0) == 2 * K && atom_words.size(1) == beam_words.size(2),
                    "select_step: atom_words must be [2K, W] = [", 2 * K, ", ", beam_words.size(2), "], got ",
                    atom_words.sizes());
  for (const at::Tensor* t : {&neuron, &cols, &s2, &p, &beam_hist, &beam_ntok, &beam_words, &atom_words}) {
    TORCH_CHECK_TYPE(t->scalar_type() == at::kLong, "select_step: inputs must be int64, got ", t->scalar_type());
    TORCH_CHECK_VALUE(t->device().is_cpu(), "select_step: runs on the CPU (the kept columns are few), got ",
                      t->device());
  }
  TORCH_CHECK_VALUE(B >= 1 && D >= 0 && K >= 0, "select_step: B >= 1, D >= 0 and K >= 0 expected, got B = ", B,
                    ", D = ", D, ", K = ", K);
}

}  // namespace invert_fast
