// CPU kernel of formula_texts: one canonical text per history row (the search builds texts only for
// the few candidates whose order depends on them; this op serves tests and the winners' formulas).
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <cstring>

#include "../formula_texts.h"

namespace invert_fast {

std::tuple<at::Tensor, at::Tensor, at::Tensor> formula_texts_cpu(const at::Tensor& hist, const at::Tensor& atom_text,
                                                                 const at::Tensor& atom_offsets) {
  check_histories(hist, "formula_texts");
  check_atom_texts(atom_text, atom_offsets, "formula_texts");
  TORCH_INTERNAL_ASSERT(hist.device().is_cpu());
  const at::Tensor h = hist.contiguous(), bytes = atom_text.contiguous(), offs = atom_offsets.contiguous();
  const AtomTexts atoms(bytes, offs);
  const int64_t M = h.size(0), T = h.size(1);
  std::vector<std::string> texts(static_cast<size_t>(M));
  at::Tensor lengths = at::empty({M}, h.options());
  at::Tensor offsets = at::empty({M + 1}, h.options());
  int64_t* len = lengths.data_ptr<int64_t>();
  int64_t* off = offsets.data_ptr<int64_t>();
  const int64_t* hp = h.const_data_ptr<int64_t>();
  off[0] = 0;
  for (int64_t m = 0; m < M; ++m) {
    texts[m] = canonical_text(hp + m * T, T, atoms, len + m);
    off[m + 1] = off[m] + static_cast<int64_t>(texts[m].size());
  }
  at::Tensor out = at::empty({off[M]}, h.options().dtype(at::kByte));
  uint8_t* o = out.data_ptr<uint8_t>();
  for (int64_t m = 0; m < M; ++m) std::memcpy(o + off[m], texts[m].data(), texts[m].size());
  return {out, offsets, lengths};
}

TORCH_LIBRARY_IMPL(invert_fast, CPU, m) { m.impl("formula_texts", &formula_texts_cpu); }

}  // namespace invert_fast
