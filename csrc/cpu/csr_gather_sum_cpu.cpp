// CPU kernel of csr_gather_sum: one task per output row; the inner loop adds whole contiguous
// rows of `values`, which the compiler vectorizes.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>

#include "../csr_gather_sum.h"

namespace invert_fast {

at::Tensor csr_gather_sum_cpu(const at::Tensor& values, const at::Tensor& indptr, const at::Tensor& indices) {
  check_csr_gather_sum_input(values, indptr, indices);
  TORCH_INTERNAL_ASSERT(values.device().is_cpu());
  const int64_t M = values.size(0), C = values.size(1), K = indptr.size(0) - 1, nnz = indices.size(0);
  const at::Tensor vals = values.contiguous();
  const at::Tensor ptr = indptr.contiguous(), idx = indices.contiguous();
  const int64_t* p = ptr.const_data_ptr<int64_t>();
  const int64_t* ix = idx.const_data_ptr<int64_t>();
  check_csr_indptr(p, K, nnz);
  if (nnz > 0) {
    const auto [lo, hi] = std::minmax_element(ix, ix + nnz);
    check_csr_indices(*lo, *hi, M);
  }
  at::Tensor out = at::zeros({K, C}, values.options().dtype(at::kLong));
  if (K == 0 || C == 0 || nnz == 0) return out;
  int64_t* op = out.data_ptr<int64_t>();
  AT_DISPATCH_INDEX_TYPES(vals.scalar_type(), "csr_gather_sum_cpu", [&] {
    const index_t* vp = vals.const_data_ptr<index_t>();
    // Grain: enough rows that a task does ~64k additions.
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, C * (nnz / K + 1)));
    at::parallel_for(0, K, grain, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        int64_t* orow = op + k * C;
        for (int64_t j = p[k]; j < p[k + 1]; ++j) {
          const index_t* vrow = vp + ix[j] * C;
          for (int64_t c = 0; c < C; ++c) orow[c] += vrow[c];
        }
      }
    });
  });
  return out;
}

TORCH_LIBRARY_IMPL(invert_fast, CPU, m) { m.impl("csr_gather_sum", &csr_gather_sum_cpu); }

}  // namespace invert_fast
