// CPU kernel of upsample_threshold: one task per block of (image, unit) planes. Bilinear values are
// convex combinations of their four sources, so a plane (or an output pixel) whose sources are all
// <= the threshold is 0 without computing it: most of them at NetDissect's top-0.5% threshold.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../upsample_threshold.h"

namespace invert_fast {

std::tuple<at::Tensor, at::Tensor> upsample_threshold_cpu(const at::Tensor& maps, const at::Tensor& thresholds,
                                                          int64_t H, int64_t W) {
  check_upsample_threshold_input(maps, thresholds, H, W);
  TORCH_INTERNAL_ASSERT(maps.device().is_cpu());
  const int64_t n = maps.size(0), D = maps.size(1), h = maps.size(2), w = maps.size(3);
  const int64_t words = (H * W + 63) / 64;
  at::Tensor out = at::zeros({n, D, words}, maps.options().dtype(at::kLong));
  at::Tensor has_nan = at::zeros({n, D}, maps.options().dtype(at::kBool));
  if (n == 0 || D == 0) return {out, has_nan};
  std::vector<LinearTap> ty(H), tx(W);
  for (int64_t y = 0; y < H; ++y) ty[y] = linear_tap(y, h, H);
  for (int64_t x = 0; x < W; ++x) tx[x] = linear_tap(x, w, W);
  const at::Tensor m = maps.contiguous(), th = thresholds.contiguous();
  auto* op = reinterpret_cast<uint64_t*>(out.data_ptr<int64_t>());
  bool* nan_p = has_nan.data_ptr<bool>();
  AT_DISPATCH_FLOATING_TYPES(m.scalar_type(), "upsample_threshold_cpu", [&] {
    const scalar_t* mp = m.const_data_ptr<scalar_t>();
    const scalar_t* tp = th.const_data_ptr<scalar_t>();
    at::parallel_for(0, n * D, 64, [&](int64_t p0, int64_t p1) {
      std::vector<char> hot(h * w), row_hot(h);
      for (int64_t p = p0; p < p1; ++p) {
        const scalar_t* plane = mp + p * h * w;
        const scalar_t t = tp[p % D];
        // Branch-free scan in the maps' dtype (vectorizes): the plane's maximum, NaN and infinities.
        scalar_t hi = -std::numeric_limits<scalar_t>::infinity(), lo = std::numeric_limits<scalar_t>::infinity();
        bool nan = false;
        for (int64_t i = 0; i < h * w; ++i) {
          const scalar_t v = plane[i];
          hi = v > hi ? v : hi;
          lo = v < lo ? v : lo;
          nan |= v != v;
        }
        nan_p[p] = nan;
        const bool finite = !nan && std::isfinite(hi) && std::isfinite(lo) && std::isfinite(t);
        if (finite && !(hi > t)) continue;  // bilinear values never exceed the largest source
        // A pixel whose four sources are all <= t is <= t: only rows and pixels touching a source > t
        // are computed (a few percent at NetDissect's top-0.5% threshold).
        for (int64_t i = 0; i < h * w; ++i) hot[i] = !finite || plane[i] > t;
        for (int64_t r = 0; r < h; ++r) {
          bool any = false;
          for (int64_t c = 0; c < w; ++c) any |= hot[r * w + c];
          row_hot[r] = any;
        }
        uint64_t* row = op + p * words;
        for (int64_t y = 0; y < H; ++y) {
          const LinearTap& a = ty[y];
          if (!row_hot[a.i0] && !row_hot[a.i1]) continue;
          const char* h0 = hot.data() + a.i0 * w;
          const char* h1 = hot.data() + a.i1 * w;
          for (int64_t x = 0; x < W; ++x) {
            const LinearTap& b = tx[x];
            if (!(h0[b.i0] | h0[b.i1] | h1[b.i0] | h1[b.i1])) continue;
            const bool bit = decide_pixel(plane, w, a, b, 2 * H, 2 * W, static_cast<double>(t), finite);
            const int64_t q = y * W + x;
            row[q >> 6] |= static_cast<uint64_t>(bit) << (q & 63);
          }
        }
      }
    });
  });
  return {out, has_nan};
}

TORCH_LIBRARY_IMPL(invert_fast, CPU, m) { m.impl("upsample_threshold", &upsample_threshold_cpu); }

}  // namespace invert_fast
