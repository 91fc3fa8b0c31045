// upsample_threshold: Network Dissection's unit masks, bit-packed: the activation map of each (image,
// unit) upsampled bilinearly (align_corners=False) to H x W, then > the unit's threshold.
//
// The decision is exact: the bilinear value at output pixel (y, x) is a weighted mean of four source
// values with integer weights over 4 H W, so "value > t" is the sign of an integer-weighted sum. It is
// taken from double precision when that is clearly away from 0 and otherwise from an exact expansion
// sum (error-free products and sums), so CPU and CUDA agree bit for bit. (torch's F.interpolate is not
// a usable definition at ties: on the CPU its float32 result changes in the last bit with the channel
// count.) Planes with a non-finite value are evaluated in IEEE double arithmetic (0 * inf is NaN: false).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <tuple>

#include "macros.h"

namespace invert_fast {

// maps: [n, D, h, w] float32 or float64;  thresholds: [D] same dtype;  H, W: output resolution
// returns: words [n, D, ceil(H * W / 64)] int64 (pixel y * W + x at bit p % 64 of word p / 64),
//          has_nan [n, D] bool (planes holding a NaN; their words are not meaningful)
std::tuple<at::Tensor, at::Tensor> upsample_threshold_cpu(const at::Tensor& maps, const at::Tensor& thresholds,
                                                          int64_t H, int64_t W);
std::tuple<at::Tensor, at::Tensor> upsample_threshold_cuda(const at::Tensor& maps, const at::Tensor& thresholds,
                                                           int64_t H, int64_t W);

inline void check_upsample_threshold_input(const at::Tensor& maps, const at::Tensor& thresholds, int64_t H, int64_t W) {
  TORCH_CHECK_VALUE(maps.dim() == 4, "upsample_threshold: maps must be [n, D, h, w], got shape ", maps.sizes());
  TORCH_CHECK_VALUE(maps.size(2) > 0 && maps.size(3) > 0, "upsample_threshold: maps need h, w >= 1, got shape ",
                    maps.sizes());
  TORCH_CHECK_VALUE(thresholds.dim() == 1 && thresholds.size(0) == maps.size(1),
                    "upsample_threshold: thresholds must be [D] = [", maps.size(1), "], got shape ",
                    thresholds.sizes());
  TORCH_CHECK_TYPE(maps.scalar_type() == at::kFloat || maps.scalar_type() == at::kDouble,
                   "upsample_threshold: maps must be float32 or float64, got ", maps.scalar_type());
  TORCH_CHECK_TYPE(thresholds.scalar_type() == maps.scalar_type(),
                   "upsample_threshold: thresholds must have the maps' dtype ", maps.scalar_type(), ", got ",
                   thresholds.scalar_type());
  TORCH_CHECK_VALUE(H > 0 && W > 0 && H <= (1 << 14) && W <= (1 << 14),
                    "upsample_threshold: H and W must be in [1, 16384], got ", H, " x ", W);
  TORCH_CHECK_VALUE(maps.device() == thresholds.device(),
                    "upsample_threshold: maps and thresholds must be on one device, got ", maps.device(), " and ",
                    thresholds.device());
}

// Source taps of output coordinate `dst` (align_corners=False): src = ((2 dst + 1) in - out) / (2 out),
// clamped at 0; neighbours i0, i1 and the weight of i1 as the integer r over 2 out.
struct LinearTap {
  int64_t i0, i1, r;
};

INVERT_FAST_HD inline LinearTap linear_tap(int64_t dst, int64_t in_size, int64_t out_size) {
  int64_t num = (2 * dst + 1) * in_size - out_size;  // src * 2 out
  if (num < 0) num = 0;
  int64_t i0 = num / (2 * out_size);
  int64_t r = num - i0 * 2 * out_size;
  if (i0 >= in_size - 1) {  // past the last source: all weight on it
    i0 = in_size - 1;
    r = 0;
  }
  return {i0, i0 < in_size - 1 ? i0 + 1 : i0, r};
}

INVERT_FAST_HD inline void two_sum(double a, double b, double& s, double& e) {
  s = a + b;
  const double bb = s - a;
  e = (a - (s - bb)) + (b - bb);
}

// Sign of the exact sum of w[i] * x[i] (i < 5): products split error-free with fma, then summed as a
// nonoverlapping expansion (Shewchuk's Grow-Expansion); its largest nonzero component has the sign.
INVERT_FAST_HD inline int exact_sign(const double* w, const double* x) {
  double e[10];
  int m = 0;
  for (int i = 0; i < 5; ++i) {
    const double p = w[i] * x[i];
    const double terms[2] = {p, fma(w[i], x[i], -p)};
    for (double q : terms) {
      for (int j = 0; j < m; ++j) {
        double s, h;
        two_sum(q, e[j], s, h);
        e[j] = h;
        q = s;
      }
      e[m++] = q;
    }
  }
  for (int j = m - 1; j >= 0; --j)
    if (e[j] != 0) return e[j] > 0 ? 1 : -1;
  return 0;
}

// Whether output pixel (ty, tx) of `plane` [h, w] is > t; `finite`: the plane and t are finite.
template <typename scalar_t>
INVERT_FAST_HD inline bool decide_pixel(const scalar_t* plane, int64_t w, const LinearTap& ty, const LinearTap& tx,
                                        int64_t two_h, int64_t two_w, double t, bool finite) {
  const double x[5] = {static_cast<double>(plane[ty.i0 * w + tx.i0]), static_cast<double>(plane[ty.i0 * w + tx.i1]),
                       static_cast<double>(plane[ty.i1 * w + tx.i0]), static_cast<double>(plane[ty.i1 * w + tx.i1]), t};
  const double wy1 = static_cast<double>(ty.r), wy0 = static_cast<double>(two_h - ty.r);
  const double wx1 = static_cast<double>(tx.r), wx0 = static_cast<double>(two_w - tx.r);
  const double wt[5] = {wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1, -static_cast<double>(two_h * two_w)};
  const double v = (wt[0] * x[0] + wt[1] * x[1]) + (wt[2] * x[2] + wt[3] * x[3]) + wt[4] * x[4];
  if (!finite) return v > 0;
  // 9 roundings (or fewer with fma contraction) of terms bounded by mag: |error| < 9 u mag, u = 2^-53.
  const double mag =
      fabs(wt[0] * x[0]) + fabs(wt[1] * x[1]) + fabs(wt[2] * x[2]) + fabs(wt[3] * x[3]) + fabs(wt[4] * x[4]);
  if (fabs(v) > 16 * 1.1102230246251565e-16 * mag) return v > 0;
  return exact_sign(wt, x) > 0;
}

}  // namespace invert_fast
