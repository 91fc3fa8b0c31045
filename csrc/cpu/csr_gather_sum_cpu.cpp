// CPU kernel of csr_gather_sum: one task per output row; the inner loop adds whole contiguous
// rows of `values`, which the compiler vectorizes.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>

#include "../csr_gather_sum.h"

namespace invert_fast {
namespace {
constexpr int64_t kColBlock = 256;

// out[c0:c1] += sum of values rows idx[j0:j1] (same columns). Cloned for AVX2 where the CPU has it
// (the extension is built for the baseline x86-64 ISA): 2x faster here.
template <typename index_t>
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void add_rows(int64_t* __restrict__ out, const index_t* __restrict__ values, const int64_t* idx, int64_t j0, int64_t j1,
              int64_t C, int64_t c0, int64_t c1) {
  for (int64_t j = j0; j < j1; ++j) {
    const index_t* vrow = values + idx[j] * C;
    for (int64_t c = c0; c < c1; ++c) out[c] += vrow[c];
  }
}
}  // namespace

at::Tensor csr_gather_sum_cpu(const at::Tensor& values, const at::Tensor& indptr, const at::Tensor& indices) {
  check_csr_gather_sum_input(values, indptr, indices);
  check_csr(indptr, indices, values.size(0));
  TORCH_INTERNAL_ASSERT(values.device().is_cpu());
  const int64_t C = values.size(1), K = indptr.size(0) - 1, nnz = indices.size(0);
  const at::Tensor vals = values.contiguous();
  const at::Tensor ptr = indptr.contiguous(), idx = indices.contiguous();
  const int64_t* p = ptr.const_data_ptr<int64_t>();
  const int64_t* ix = idx.const_data_ptr<int64_t>();
  at::Tensor out = at::zeros({K, C}, values.options().dtype(at::kLong));
  if (K == 0 || C == 0 || nnz == 0) return out;
  int64_t* op = out.data_ptr<int64_t>();
  AT_DISPATCH_INDEX_TYPES(vals.scalar_type(), "csr_gather_sum_cpu", [&] {
    const index_t* vp = vals.const_data_ptr<index_t>();
    // Columns are processed in blocks so that the block of `values` ([M, kColBlock]) stays in cache
    // while every output row gathers from it; one task is a (column block, range of rows) pair.
    const int64_t col_blocks = (C + kColBlock - 1) / kColBlock;
    const int64_t rows_per_task = std::max<int64_t>(1, std::min<int64_t>(K, 64));
    const int64_t row_tasks = (K + rows_per_task - 1) / rows_per_task;
    at::parallel_for(0, col_blocks * row_tasks, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t cb = t % col_blocks, rt = t / col_blocks;
        const int64_t c0 = cb * kColBlock, c1 = std::min(C, c0 + kColBlock);
        const int64_t k1 = std::min(K, (rt + 1) * rows_per_task);
        for (int64_t k = rt * rows_per_task; k < k1; ++k) {
          add_rows<index_t>(op + k * C, vp, ix, p[k], p[k + 1], C, c0, c1);
        }
      }
    });
  });
  return out;
}

TORCH_LIBRARY_IMPL(invert_fast, CPU, m) { m.impl("csr_gather_sum", &csr_gather_sum_cpu); }

}  // namespace invert_fast
