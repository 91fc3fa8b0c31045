// CUDA kernel of region_moments: a thread per neuron runs the CPU kernel's two passes over the samples in
// the same order with the same roundings (add_rn / mul_rn: no fused multiply-add), so every sum is the
// CPU's to the bit; reads and writes of neighbouring threads are neighbouring columns (coalesced).
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/aminmax.h>
#include <ATen/ops/index_add.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../region_moments.h"

namespace invert_fast {
namespace {

constexpr int kThreads = 128;

template <typename scalar_t>
__global__ void region_moments_kernel(const scalar_t* __restrict__ x, const int64_t* __restrict__ region_of,
                                      const double* __restrict__ cut, int64_t N, int64_t D, int64_t G, bool strict,
                                      double* __restrict__ a, double* __restrict__ dv, int64_t* __restrict__ t,
                                      int64_t* __restrict__ z, const int64_t* __restrict__ sizes,
                                      double* __restrict__ mom) {
  const int64_t d = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (d >= D) return;
  double sq = 0;
  for (int64_t n = 0; n < N; ++n) {
    const double v = static_cast<double>(x[n * D + d]);
    const int64_t g = region_of[n];
    t[g * D + d] += in_top(v, cut[d], strict);
    if (v == 0) continue;
    a[g * D + d] = add_rn(a[g * D + d], v);
    sq = add_rn(sq, mul_rn(v, v));
    ++z[g * D + d];
  }
  double s = 0;
  int64_t zeros = N;
  for (int64_t g = 0; g < G; ++g) {
    s = add_rn(s, a[g * D + d]);
    zeros -= z[g * D + d];
  }
  const double mean = s / static_cast<double>(N);
  double ss = 0;
  for (int64_t n = 0; n < N; ++n) {
    const double v = static_cast<double>(x[n * D + d]);
    if (v == 0) continue;
    const double dev = add_rn(v, -mean);
    const int64_t g = region_of[n];
    dv[g * D + d] = add_rn(dv[g * D + d], dev);
    ss = add_rn(ss, mul_rn(dev, dev));
  }
  ss = add_rn(ss, mul_rn(mul_rn(static_cast<double>(zeros), mean), mean));
  for (int64_t g = 0; g < G; ++g) {
    dv[g * D + d] = add_rn(dv[g * D + d], -mul_rn(static_cast<double>(sizes[g] - z[g * D + d]), mean));
  }
  mom[d] = s, mom[D + d] = sq, mom[2 * D + d] = ss;
}

}  // namespace

MomentsResult region_moments_cuda(const at::Tensor& x, const at::Tensor& region_of, int64_t G, const at::Tensor& cut,
                                  bool strict) {
  check_region_moments_input(x, region_of, G, cut);
  TORCH_INTERNAL_ASSERT(x.device().is_cuda());
  const c10::cuda::OptionalCUDAGuard guard(x.device());
  const int64_t N = x.size(0), D = x.size(1);
  const at::Tensor xc = x.contiguous(), rc = region_of.contiguous(), cc = cut.contiguous();
  if (N > 0) {
    const auto lo_hi = at::aminmax(rc);
    const int64_t lo = std::get<0>(lo_hi).item<int64_t>(), hi = std::get<1>(lo_hi).item<int64_t>();
    TORCH_CHECK_VALUE(lo >= 0 && hi < G, "region_moments: region_of must lie in [0, ", G, "), got values from ", lo,
                      " to ", hi);
  }
  const auto f64 = x.options().dtype(at::kDouble), i64 = x.options().dtype(at::kLong);
  at::Tensor A = at::zeros({G, D}, f64), Dv = at::zeros({G, D}, f64), moments = at::zeros({3, D}, f64);
  at::Tensor T = at::zeros({G, D}, i64), nz = at::zeros({G, D}, i64);
  const at::Tensor sizes = at::zeros({G}, i64).index_add_(0, rc, at::ones({N}, i64));
  if (D == 0) return {A, Dv, T, moments};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "region_moments_cuda", [&] {
    region_moments_kernel<scalar_t>
        <<<static_cast<unsigned>((D + kThreads - 1) / kThreads), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
            xc.const_data_ptr<scalar_t>(), rc.const_data_ptr<int64_t>(), cc.const_data_ptr<double>(), N, D, G, strict,
            A.data_ptr<double>(), Dv.data_ptr<double>(), T.data_ptr<int64_t>(), nz.data_ptr<int64_t>(),
            sizes.const_data_ptr<int64_t>(), moments.data_ptr<double>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {A, Dv, T, moments};
}

TORCH_LIBRARY_IMPL(invert_fast, CUDA, m) { m.impl("region_moments", &region_moments_cuda); }

}  // namespace invert_fast
