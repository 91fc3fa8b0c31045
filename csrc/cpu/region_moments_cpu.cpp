// CPU kernel of region_moments: one task per block of neurons; samples outer, the block's neurons inner
// (each row of x is one contiguous read), so every neuron's sums run in sample order whatever the block.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../region_moments.h"

namespace invert_fast {

MomentsResult region_moments_cpu(const at::Tensor& x, const at::Tensor& region_of, int64_t G, const at::Tensor& cut,
                                 bool strict) {
  check_region_moments_input(x, region_of, G, cut);
  TORCH_INTERNAL_ASSERT(x.device().is_cpu());
  const int64_t N = x.size(0), D = x.size(1);
  const at::Tensor xc = x.contiguous(), rc = region_of.contiguous(), cc = cut.contiguous();
  const auto f64 = x.options().dtype(at::kDouble);
  at::Tensor A = at::zeros({G, D}, f64), Dv = at::zeros({G, D}, f64), moments = at::zeros({3, D}, f64);
  at::Tensor T = at::zeros({G, D}, x.options().dtype(at::kLong)), nz = at::zeros({G, D}, x.options().dtype(at::kLong));
  const int64_t* r = rc.const_data_ptr<int64_t>();
  for (int64_t n = 0; n < N; ++n)
    TORCH_CHECK_VALUE(r[n] >= 0 && r[n] < G, "region_moments: region_of[", n, "] = ", r[n], " is outside [0, ", G, ")");
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "region_moments_cpu", [&] {
    const scalar_t* xp = xc.const_data_ptr<scalar_t>();
    const double* cp = cc.const_data_ptr<double>();
    double *a = A.data_ptr<double>(), *dv = Dv.data_ptr<double>(), *mom = moments.data_ptr<double>();
    int64_t *t = T.data_ptr<int64_t>(), *z = nz.data_ptr<int64_t>();
    auto block = [&](int64_t d0, int64_t d1) {
      for (int64_t n = 0; n < N; ++n) {  // pass 1: sums, squares, nonzeros and top samples per region
        const scalar_t* row = xp + n * D;
        const int64_t g = r[n];
        for (int64_t d = d0; d < d1; ++d) {
          const double v = static_cast<double>(row[d]);
          t[g * D + d] += in_top(v, cp[d], strict);
          if (v == 0) continue;
          a[g * D + d] = add_rn(a[g * D + d], v);
          mom[D + d] = add_rn(mom[D + d], mul_rn(v, v));
          ++z[g * D + d];
        }
      }
      for (int64_t d = d0; d < d1; ++d) {
        double s = 0;
        for (int64_t g = 0; g < G; ++g) s = add_rn(s, a[g * D + d]);
        mom[d] = s;
      }
      for (int64_t n = 0; n < N; ++n) {  // pass 2: deviations from the mean
        const scalar_t* row = xp + n * D;
        const int64_t g = r[n];
        for (int64_t d = d0; d < d1; ++d) {
          const double v = static_cast<double>(row[d]);
          if (v == 0) continue;
          const double dev = add_rn(v, -(mom[d] / static_cast<double>(N)));
          dv[g * D + d] = add_rn(dv[g * D + d], dev);
          mom[2 * D + d] = add_rn(mom[2 * D + d], mul_rn(dev, dev));
        }
      }
      std::vector<int64_t> zeros(static_cast<size_t>(d1 - d0), N);
      for (int64_t g = 0; g < G; ++g) {
        for (int64_t d = d0; d < d1; ++d) zeros[d - d0] -= z[g * D + d];
      }
      // The zeros' terms last, one product each (the sparse path adds them the same way).
      for (int64_t d = d0; d < d1; ++d) {
        const double mean = mom[d] / static_cast<double>(N);
        mom[2 * D + d] = add_rn(mom[2 * D + d], mul_rn(mul_rn(static_cast<double>(zeros[d - d0]), mean), mean));
      }
    };
    at::parallel_for(0, D, 64, block);
  });
  // Dv's zeros: (region size - nonzeros) * mean per region, subtracted last.
  at::Tensor sizes = at::zeros({G}, x.options().dtype(at::kLong));
  int64_t* sp = sizes.data_ptr<int64_t>();
  for (int64_t n = 0; n < N; ++n) ++sp[r[n]];
  {
    double* dv = Dv.data_ptr<double>();
    const double* mom = moments.data_ptr<double>();
    const int64_t* z = nz.data_ptr<int64_t>();
    for (int64_t g = 0; g < G; ++g) {
      for (int64_t d = 0; d < D; ++d) {
        const double mean = mom[d] / static_cast<double>(N);
        dv[g * D + d] = add_rn(dv[g * D + d], -mul_rn(static_cast<double>(sp[g] - z[g * D + d]), mean));
      }
    }
  }
  return {A, Dv, T, moments};
}

TORCH_LIBRARY_IMPL(invert_fast, CPU, m) { m.impl("region_moments", &region_moments_cpu); }

}  // namespace invert_fast
