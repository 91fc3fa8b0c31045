// CPU kernel of masked_row_sums: one task per range of (neuron, beam) rows; the set bits of a row's
// words (or of their complement) are walked with count-trailing-zeros, each adding a weighted row of
// the region -> concept table (the inner loop over K vectorizes).
#include <ATen/Parallel.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "../masked_row_sums.h"

namespace invert_fast {

namespace {
// orow += v * trow; restrict lets the compiler vectorize without runtime alias checks (a uint8 pointer
// may alias anything).
inline void add_weighted_row(int64_t* __restrict orow, const uint8_t* __restrict trow, int64_t v, int64_t K) {
  for (int64_t c = 0; c < K; ++c) orow[c] += v & -static_cast<int64_t>(trow[c]);  // trow is 0 or 1
}
}  // namespace

at::Tensor masked_row_sums_cpu(const at::Tensor& words, const at::Tensor& outside, const at::Tensor& weights,
                               const at::Tensor& table) {
  check_masked_row_sums_input(words, outside, weights, table);
  TORCH_INTERNAL_ASSERT(words.device().is_cpu());
  const int64_t D = words.size(0), B = words.size(1), W = words.size(2), G = weights.size(0), K = table.size(1);
  at::Tensor out = at::zeros({D, B, K}, words.options());
  if (D * B == 0 || K == 0 || G == 0) return out;
  const at::Tensor wc = words.contiguous(), oc = outside.contiguous(), tc = table.contiguous();
  const at::Tensor wt = weights.t().contiguous();  // [Db, G]: a neuron's weights in one run
  const uint64_t* wp = reinterpret_cast<const uint64_t*>(wc.const_data_ptr<int64_t>());
  const bool* op_ = oc.const_data_ptr<bool>();
  const uint8_t* tp = static_cast<const uint8_t*>(tc.const_data_ptr());
  const int64_t* gp = wt.const_data_ptr<int64_t>();
  int64_t* out_p = out.data_ptr<int64_t>();
  at::parallel_for(0, D * B, 4, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t d = r / B;
      const uint64_t* w = wp + r * W;
      const int64_t* wd = gp + d * G;
      int64_t* orow = out_p + r * K;
      for_each_row_region(w, W, G, op_[r], [&](int64_t g) { add_weighted_row(orow, tp + g * K, wd[g], K); });
    }
  });
  return out;
}

TORCH_LIBRARY_IMPL(invert_fast, CPU, m) { m.impl("masked_row_sums", &masked_row_sums_cpu); }

}  // namespace invert_fast
