// CPU kernel of csr_gather_or: one task per block of output rows; the inner loop ORs whole rows.
#include <ATen/Parallel.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "../csr_gather_or.h"
#include "../csr_gather_sum.h"

namespace invert_fast {

at::Tensor csr_gather_or_cpu(const at::Tensor& values, const at::Tensor& indptr, const at::Tensor& indices) {
  check_csr_gather_or_input(values, indptr, indices);
  check_csr(indptr, indices, values.size(0));
  TORCH_INTERNAL_ASSERT(values.device().is_cpu());
  const int64_t C = values.size(1), K = indptr.size(0) - 1;
  at::Tensor out = at::zeros({K, C}, values.options());
  if (K == 0 || C == 0 || indices.size(0) == 0) return out;
  const at::Tensor v = values.contiguous(), ptr = indptr.contiguous(), idx = indices.contiguous();
  const int64_t* vp = v.const_data_ptr<int64_t>();
  const int64_t* p = ptr.const_data_ptr<int64_t>();
  const int64_t* ix = idx.const_data_ptr<int64_t>();
  int64_t* op = out.data_ptr<int64_t>();
  at::parallel_for(0, K, 8, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      int64_t* row = op + k * C;
      for (int64_t j = p[k]; j < p[k + 1]; ++j) {
        const int64_t* src = vp + ix[j] * C;
        for (int64_t c = 0; c < C; ++c) row[c] |= src[c];
      }
    }
  });
  return out;
}

TORCH_LIBRARY_IMPL(invert_fast, CPU, m) { m.impl("csr_gather_or", &csr_gather_or_cpu); }

}  // namespace invert_fast
