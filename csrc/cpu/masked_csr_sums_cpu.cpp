// CPU kernel of masked_csr_sums: one task per range of (neuron, beam) rows; the set bits of a row's words
// (or of their complement) are walked with count-trailing-zeros, each region adding its weight to the
// concepts it holds. Rows are disjoint, so no two threads write one output.
#include <ATen/Parallel.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "../csr_gather_sum.h"
#include "../masked_csr_sums.h"

namespace invert_fast {

at::Tensor masked_csr_sums_cpu(const at::Tensor& words, const at::Tensor& outside, const at::Tensor& weights,
                               const at::Tensor& indptr, const at::Tensor& concepts, int64_t K) {
  check_masked_csr_sums_input(words, outside, weights, indptr, concepts, K);
  check_csr(indptr, concepts, K);
  TORCH_INTERNAL_ASSERT(words.device().is_cpu());
  const int64_t D = words.size(0), B = words.size(1), W = words.size(2), G = weights.size(0);
  at::Tensor out = at::zeros({D, B, K}, words.options());
  if (D * B == 0 || K == 0 || G == 0) return out;
  const at::Tensor wc = words.contiguous(), oc = outside.contiguous(), ic = indptr.contiguous(),
                   cc = concepts.contiguous();
  const at::Tensor wt = weights.t().contiguous();  // [Db, G]: a neuron's weights in one run
  const uint64_t* wp = reinterpret_cast<const uint64_t*>(wc.const_data_ptr<int64_t>());
  const bool* op_ = oc.const_data_ptr<bool>();
  const int64_t* ip = ic.const_data_ptr<int64_t>();
  const int64_t* cp = cc.const_data_ptr<int64_t>();
  const int64_t* gp = wt.const_data_ptr<int64_t>();
  int64_t* out_p = out.data_ptr<int64_t>();
  at::parallel_for(0, D * B, 4, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const uint64_t* w = wp + r * W;
      const int64_t* wd = gp + (r / B) * G;
      int64_t* orow = out_p + r * K;
      for_each_row_region(w, W, G, op_[r], [&](int64_t g) {
        const int64_t v = wd[g];
        for (int64_t t = ip[g]; t < ip[g + 1]; ++t) orow[cp[t]] += v;
      });
    }
  });
  return out;
}

TORCH_LIBRARY_IMPL(invert_fast, CPU, m) { m.impl("masked_csr_sums", &masked_csr_sums_cpu); }

}  // namespace invert_fast
