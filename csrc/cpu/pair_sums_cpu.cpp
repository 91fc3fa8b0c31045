// CPU kernel of pair_sums: one task per neuron owns its [K, K] slab; for each region the weight is
// added to the pairs of concepts holding it (rows of the slab stay hot while a region's list runs).
#include <ATen/Parallel.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "../csr_gather_sum.h"
#include "../pair_sums.h"

namespace invert_fast {

at::Tensor pair_sums_cpu(const at::Tensor& weights, const at::Tensor& indptr, const at::Tensor& concepts, int64_t K) {
  check_pair_sums_input(weights, indptr, concepts, K);
  check_csr(indptr, concepts, K);
  TORCH_INTERNAL_ASSERT(weights.device().is_cpu());
  const int64_t G = weights.size(0), D = weights.size(1);
  at::Tensor out = at::zeros({D, K, K}, weights.options());
  if (D == 0 || K == 0 || G == 0) return out;
  const at::Tensor w = weights.t().contiguous();  // [Db, G]: a neuron's weights in one run
  const at::Tensor ptr = indptr.contiguous(), idx = concepts.contiguous();
  const int64_t* wp = w.const_data_ptr<int64_t>();
  const int64_t* p = ptr.const_data_ptr<int64_t>();
  const int64_t* c = idx.const_data_ptr<int64_t>();
  int64_t* op = out.data_ptr<int64_t>();
  at::parallel_for(0, D, 1, [&](int64_t d0, int64_t d1) {
    for (int64_t d = d0; d < d1; ++d) {
      int64_t* slab = op + d * K * K;
      const int64_t* wd = wp + d * G;
      for (int64_t g = 0; g < G; ++g) {
        const int64_t v = wd[g];
        if (v == 0) continue;
        for (int64_t a = p[g]; a < p[g + 1]; ++a) {
          int64_t* row = slab + c[a] * K;
          for (int64_t b = p[g]; b < p[g + 1]; ++b) row[c[b]] += v;
        }
      }
    }
  });
  return out;
}

TORCH_LIBRARY_IMPL(invert_fast, CPU, m) { m.impl("pair_sums", &pair_sums_cpu); }

}  // namespace invert_fast
