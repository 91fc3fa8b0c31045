// CPU kernel of weighted_row_sums: one task per output row; the inner loop over K vectorizes.
#include <ATen/Parallel.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>

#include "../csr_gather_sum.h"
#include "../weighted_row_sums.h"

namespace invert_fast {

at::Tensor weighted_row_sums_cpu(const at::Tensor& indptr, const at::Tensor& indices, const at::Tensor& weights,
                                 const at::Tensor& table) {
  check_weighted_row_sums_input(indptr, indices, weights, table);
  check_csr(indptr, indices, table.size(0));
  TORCH_INTERNAL_ASSERT(table.device().is_cpu());
  const int64_t R = indptr.size(0) - 1, nnz = indices.size(0), K = table.size(1);
  const at::Tensor ptr = indptr.contiguous(), idx = indices.contiguous(), w = weights.contiguous(),
                   tab = table.contiguous();
  const int64_t* p = ptr.const_data_ptr<int64_t>();
  const int64_t* ix = idx.const_data_ptr<int64_t>();
  const int64_t* wp = w.const_data_ptr<int64_t>();
  const uint8_t* tp = static_cast<const uint8_t*>(tab.const_data_ptr());
  at::Tensor out = at::zeros({R, K}, table.options().dtype(at::kLong));
  if (R == 0 || K == 0 || nnz == 0) return out;
  int64_t* op = out.data_ptr<int64_t>();
  at::parallel_for(0, R, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t* orow = op + r * K;
      for (int64_t j = p[r]; j < p[r + 1]; ++j) {
        const uint8_t* trow = tp + ix[j] * K;
        const int64_t wj = wp[j];
        for (int64_t c = 0; c < K; ++c) orow[c] += wj * static_cast<int64_t>(trow[c]);
      }
    }
  });
  return out;
}

TORCH_LIBRARY_IMPL(invert_fast, CPU, m) { m.impl("weighted_row_sums", &weighted_row_sums_cpu); }

}  // namespace invert_fast
