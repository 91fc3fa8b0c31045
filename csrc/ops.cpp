// Operator schemas of invert_fast; each backend registers its kernels in its own file
// (csrc/cpu/*_cpu.cpp, csrc/cuda/*_cuda.cu) with TORCH_LIBRARY_IMPL.
#include <Python.h>
#include <torch/library.h>

extern "C" {
// Importing invert_fast._C runs the static TORCH_LIBRARY registrations below; the module itself is empty.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

namespace invert_fast {

bool built_with_cuda() {
#ifdef INVERT_FAST_WITH_CUDA
  return true;
#else
  return false;
#endif
}

TORCH_LIBRARY(invert_fast, m) {
  m.def("and_popcount(Tensor a, Tensor b) -> Tensor");
  m.def("rank_doubled(Tensor x) -> Tensor");
  m.def("rank_doubled_ties(Tensor x) -> (Tensor, Tensor)");
  m.def("rank_region_sums(Tensor x, Tensor region_of, int G) -> (Tensor, Tensor)");
  m.def(
      "sparse_rank_doubled(Tensor indptr, Tensor indices, Tensor values, int N, int first) -> (Tensor, Tensor, "
      "Tensor)");
  m.def("csr_gather_sum(Tensor values, Tensor indptr, Tensor indices) -> Tensor");
  m.def("csr_gather_or(Tensor values, Tensor indptr, Tensor indices) -> Tensor");
  m.def("bits_transpose(Tensor bits, int n) -> Tensor");
  m.def("upsample_threshold(Tensor maps, Tensor thresholds, int H, int W) -> (Tensor, Tensor)");
  m.def("top_values(Tensor maps, Tensor prev, int keep) -> (Tensor, Tensor)");
  m.def("masked_row_sums(Tensor words, Tensor outside, Tensor weights, Tensor table) -> Tensor");
  m.def(
      "masked_csr_sums(Tensor words, Tensor outside, Tensor weights, Tensor indptr, Tensor concepts, int K) -> Tensor");
  m.def("weighted_row_sums(Tensor indptr, Tensor indices, Tensor weights, Tensor table) -> Tensor");
  m.def(
      "beam_step_select(Tensor x, Tensor x_p, int shift, Tensor beam_s, Tensor beam_p, Tensor beam_valid, "
      "Tensor conc_s, Tensor conc_p, Tensor ext, int n, int p_lo, int p_hi, float sign, int k, Tensor totals, "
      "int objective, Tensor beam_len, float penalty, int flags) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "pair_step_select(Tensor x, Tensor x_p, int shift, Tensor conc_s, Tensor conc_p, int n, int p_lo, int p_hi, "
      "float sign, int k, Tensor totals, int objective) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.def("pair_sums(Tensor weights, Tensor indptr, Tensor concepts, int K) -> Tensor");
  m.def("formula_texts(Tensor hist, Tensor atom_text, Tensor atom_offsets) -> (Tensor, Tensor, Tensor)");
  m.def(
      "select_labels(Tensor neuron, Tensor s2, Tensor p, Tensor hist, Tensor words, Tensor atom_text, "
      "Tensor atom_offsets, int n, float sign, int B, bool distinct, int D, Tensor totals, int objective) -> (Tensor, "
      "Tensor)");
  m.def(
      "select_step(Tensor neuron, Tensor cols, Tensor s2, Tensor p, Tensor beam_hist, Tensor beam_ntok, "
      "Tensor beam_words, Tensor atom_words, Tensor atom_text, Tensor atom_offsets, int K, int n, float sign, int B, "
      "bool distinct, int D, Tensor totals, int objective, float penalty) -> (Tensor, Tensor)");
  m.def(
      "region_moments(Tensor x, Tensor region_of, int G, Tensor cut, bool strict) -> (Tensor, Tensor, Tensor, "
      "Tensor)");
  m.def("built_with_cuda() -> bool", &built_with_cuda);
}

}  // namespace invert_fast
