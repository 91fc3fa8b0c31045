// CUDA kernel of upsample_threshold: one warp per (image, unit) plane. The warp first finds the plane's
// largest value (most planes are skipped: their masks are empty), then each lane decides 64-pixel
// words, one word per lane at a time, so every word is written whole by one thread. Decisions are
// exact (see the header), so they equal the CPU kernel's bit for bit.
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../upsample_threshold.h"

namespace invert_fast {
namespace {

constexpr int kWarps = 8;

template <typename scalar_t>
__global__ void upsample_threshold_kernel(const scalar_t* __restrict__ maps,        // [n, D, h, w]
                                          const scalar_t* __restrict__ thresholds,  // [D]
                                          unsigned long long* __restrict__ out,     // [n, D, words]
                                          bool* __restrict__ has_nan,               // [n, D]
                                          int64_t planes, int64_t D, int64_t h, int64_t w, int64_t H, int64_t W,
                                          int64_t words) {
  const int lane = threadIdx.x & 31;
  const int64_t p = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (p >= planes) return;  // whole warps leave together
  const scalar_t* plane = maps + p * h * w;
  const scalar_t t = thresholds[p % D];
  scalar_t hi = -INFINITY, lo = INFINITY;
  bool nan = false;
  for (int64_t i = lane; i < h * w; i += 32) {
    const scalar_t v = plane[i];
    hi = v > hi ? v : hi;
    lo = v < lo ? v : lo;
    nan |= v != v;
  }
  for (int off = 16; off > 0; off >>= 1) {
    const scalar_t ohi = __shfl_xor_sync(0xffffffffu, hi, off), olo = __shfl_xor_sync(0xffffffffu, lo, off);
    hi = ohi > hi ? ohi : hi;
    lo = olo < lo ? olo : lo;
  }
  nan = __any_sync(0xffffffffu, nan);
  if (lane == 0) has_nan[p] = nan;
  const bool finite = !nan && isfinite(hi) && isfinite(lo) && isfinite(t);
  if (finite && !(hi > t)) return;  // bilinear values never exceed the largest source
  for (int64_t word = lane; word < words; word += 32) {
    unsigned long long bits = 0;
    const int64_t q1 = (word + 1) * 64 < H * W ? (word + 1) * 64 : H * W;
    for (int64_t q = word * 64; q < q1; ++q) {
      const int64_t y = q / W, x = q % W;
      const LinearTap ty = linear_tap(y, h, H), tx = linear_tap(x, w, W);
      const scalar_t a = plane[ty.i0 * w + tx.i0], b = plane[ty.i0 * w + tx.i1];
      const scalar_t c = plane[ty.i1 * w + tx.i0], d = plane[ty.i1 * w + tx.i1];
      if (finite && !(a > t) && !(b > t) && !(c > t) && !(d > t)) continue;  // a mean of values <= t
      if (decide_pixel(plane, w, ty, tx, 2 * H, 2 * W, static_cast<double>(t), finite)) bits |= 1ull << (q & 63);
    }
    out[p * words + word] = bits;
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> upsample_threshold_cuda(const at::Tensor& maps, const at::Tensor& thresholds,
                                                           int64_t H, int64_t W) {
  check_upsample_threshold_input(maps, thresholds, H, W);
  TORCH_INTERNAL_ASSERT(maps.device().is_cuda());
  const c10::cuda::OptionalCUDAGuard guard(maps.device());
  const int64_t n = maps.size(0), D = maps.size(1), h = maps.size(2), w = maps.size(3);
  const int64_t words = (H * W + 63) / 64, planes = n * D;
  at::Tensor out = at::zeros({n, D, words}, maps.options().dtype(at::kLong));
  at::Tensor has_nan = at::zeros({n, D}, maps.options().dtype(at::kBool));
  if (planes == 0) return {out, has_nan};
  const int64_t blocks = (planes + kWarps - 1) / kWarps;
  TORCH_CHECK_VALUE(blocks <= 2147483647, "upsample_threshold: CUDA grid limit exceeded, got ", planes, " planes");
  const at::Tensor m = maps.contiguous(), th = thresholds.contiguous();
  AT_DISPATCH_FLOATING_TYPES(m.scalar_type(), "upsample_threshold_cuda", [&] {
    upsample_threshold_kernel<scalar_t>
        <<<static_cast<unsigned>(blocks), kWarps * 32, 0, at::cuda::getCurrentCUDAStream()>>>(
            m.const_data_ptr<scalar_t>(), th.const_data_ptr<scalar_t>(),
            reinterpret_cast<unsigned long long*>(out.data_ptr<int64_t>()), has_nan.data_ptr<bool>(), planes, D, h, w,
            H, W, words);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {out, has_nan};
}

TORCH_LIBRARY_IMPL(invert_fast, CUDA, m) { m.impl("upsample_threshold", &upsample_threshold_cuda); }

}  // namespace invert_fast
