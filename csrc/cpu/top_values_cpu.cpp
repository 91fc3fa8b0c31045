// CPU kernel of top_values: one task per block of units. Each unit scans its values once against a
// running floor (the smallest of its current top `keep`); the few values above it collect in a buffer
// that nth_element shrinks back to `keep` whenever it doubles. About one comparison per value.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <torch/library.h>

#include <algorithm>
#include <functional>
#include <vector>

#include "../top_values.h"

namespace invert_fast {

std::tuple<at::Tensor, at::Tensor> top_values_cpu(const at::Tensor& maps, const at::Tensor& prev, int64_t keep) {
  check_top_values_input(maps, prev, keep);
  TORCH_INTERNAL_ASSERT(maps.device().is_cpu());
  const int64_t n = maps.size(0), D = maps.size(1), hw = maps.size(2) * maps.size(3), m = prev.size(1);
  const int64_t out_cols = std::min(keep, m + n * hw);
  at::Tensor out = at::empty({D, out_cols}, maps.options());
  at::Tensor nan_image = at::full({D}, -1, maps.options().dtype(at::kLong));
  if (D == 0 || out_cols == 0) return {out, nan_image};
  const at::Tensor x = maps.contiguous(), pv = prev.contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "top_values_cpu", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* pp = pv.const_data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    int64_t* nan_at = nan_image.data_ptr<int64_t>();
    at::parallel_for(0, D, 1, [&](int64_t d0, int64_t d1) {
      // Images outer, units inner: each image's planes of this task's units are one contiguous read.
      const int64_t units = d1 - d0;
      std::vector<std::vector<scalar_t>> bufs(units);
      std::vector<scalar_t> floors(units, scalar_t(0));
      std::vector<char> full(units, 0);
      auto shrink = [&](std::vector<scalar_t>& buf) {  // keep the `keep` largest; returns their minimum
        std::nth_element(buf.begin(), buf.begin() + (keep - 1), buf.end(), std::greater<scalar_t>());
        buf.resize(keep);
        return *std::min_element(buf.begin(), buf.end());
      };
      for (int64_t u = 0; u < units; ++u) {
        bufs[u].reserve(2 * keep + hw);
        bufs[u].assign(pp + (d0 + u) * m, pp + (d0 + u + 1) * m);
        if (static_cast<int64_t>(bufs[u].size()) >= keep) {
          floors[u] = shrink(bufs[u]);
          full[u] = 1;
        }
      }
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t u = 0; u < units; ++u) {
          const int64_t d = d0 + u;
          if (nan_at[d] >= 0) continue;
          const scalar_t* plane = xp + (i * D + d) * hw;
          std::vector<scalar_t>& buf = bufs[u];
          bool nan = false;
          if (!full[u]) {
            buf.insert(buf.end(), plane, plane + hw);
            for (int64_t j = 0; j < hw; ++j) nan |= plane[j] != plane[j];
          } else {
            // A value equal to the floor cannot change the multiset of the top `keep` values.
            const scalar_t floor = floors[u];
            for (int64_t j = 0; j < hw; ++j) {
              nan |= plane[j] != plane[j];
              if (plane[j] > floor) buf.push_back(plane[j]);
            }
          }
          if (nan) {  // NaN has no order: report it instead of a meaningless selection
            nan_at[d] = i;
            continue;
          }
          if (static_cast<int64_t>(buf.size()) >= 2 * keep) {
            floors[u] = shrink(buf);
            full[u] = 1;
          }
        }
      }
      for (int64_t u = 0; u < units; ++u) {
        const int64_t d = d0 + u;
        std::vector<scalar_t>& buf = bufs[u];
        if (nan_at[d] >= 0) continue;
        if (static_cast<int64_t>(buf.size()) > keep) shrink(buf);
        std::sort(buf.begin(), buf.end(), std::greater<scalar_t>());
        std::copy(buf.begin(), buf.end(), op + d * out_cols);
        std::vector<scalar_t>().swap(buf);
      }
    });
  });
  return {out, nan_image};
}

TORCH_LIBRARY_IMPL(invert_fast, CPU, m) { m.impl("top_values", &top_values_cpu); }

}  // namespace invert_fast
