// rank_doubled: doubled mid-ranks of every column of an activation matrix.
//
// For column d, the samples are ranked 1..N by value; tied values share the
// mean of the ranks they span (mid-ranks). Doubling makes every mid-rank an
// integer, so rank sums (and hence AUROC) are exact integers on every backend.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <limits>
#include <tuple>

namespace invert_fast {

// x:       [N, D] floating point (float16, bfloat16, float32, float64), any strides, no NaN
// returns: [N, D] int32, out[n, d] = 2 * midrank(x[n, d] among x[:, d]), in [2, 2N]
at::Tensor rank_doubled_cpu(const at::Tensor& x);
at::Tensor rank_doubled_cuda(const at::Tensor& x);

// The same ranks plus, per neuron, the tie term of the Mann-Whitney variance.
// returns: ([N, D] int32 doubled mid-ranks, [D] float64 sum over tie groups of t^3 - t)
// The tie term is an exact integer (and identical on every backend) while N^3 < 2^53.
std::tuple<at::Tensor, at::Tensor> rank_doubled_ties_cpu(const at::Tensor& x);
std::tuple<at::Tensor, at::Tensor> rank_doubled_ties_cuda(const at::Tensor& x);

// The ranks' sums per region, without the [N, D] ranks: out[g, d] = sum of doubled mid-ranks of the
// samples of region g (region_of [N] int64 in [0, G)); and the tie terms as rank_doubled_ties.
// returns: ([G, D] int64, [D] float64)
std::tuple<at::Tensor, at::Tensor> rank_region_sums_cpu(const at::Tensor& x, const at::Tensor& region_of, int64_t G);
std::tuple<at::Tensor, at::Tensor> rank_region_sums_cuda(const at::Tensor& x, const at::Tensor& region_of, int64_t G);

// Largest N whose doubled ranks (<= 2N) and sample indices fit int32.
constexpr int64_t kMaxRankSamples = (int64_t{1} << 30) - 1;

// Shared argument checks of both backends, so their messages are identical.
inline void check_rank_doubled_input(const at::Tensor& x) {
  TORCH_CHECK_VALUE(x.dim() == 2, "rank_doubled: x must be 2-D [N samples, D neurons], got ", x.dim(), "-D with shape ",
                    x.sizes());
  const auto st = x.scalar_type();
  TORCH_CHECK_TYPE(st == at::kFloat || st == at::kDouble || st == at::kHalf || st == at::kBFloat16,
                   "rank_doubled: x must be float16, bfloat16, float32 or float64, got ", st);
  TORCH_CHECK_VALUE(x.size(0) <= kMaxRankSamples, "rank_doubled: at most ", kMaxRankSamples,
                    " samples are supported (doubled ranks are int32), got N = ", x.size(0));
}

inline void check_rank_region_sums_input(const at::Tensor& x, const at::Tensor& region_of, int64_t G) {
  check_rank_doubled_input(x);
  TORCH_CHECK_VALUE(region_of.dim() == 1 && region_of.size(0) == x.size(0),
                    "rank_region_sums: region_of must be [N] = [", x.size(0), "], got shape ", region_of.sizes());
  TORCH_CHECK_TYPE(region_of.scalar_type() == at::kLong, "rank_region_sums: region_of must be int64, got ",
                   region_of.scalar_type());
  TORCH_CHECK_VALUE(G >= 0 && G <= (int64_t{1} << 31) - 1, "rank_region_sums: G must be in [0, 2^31), got ", G);
  TORCH_CHECK_VALUE(region_of.device() == x.device(), "rank_region_sums: x and region_of must be on one device, got ",
                    x.device(), " and ", region_of.device());
}

// nan_counts: [D] int64 on the CPU. Names the first neuron that has NaN values.
inline void check_no_nan(const int64_t* nan_counts, int64_t D, int64_t N) {
  int64_t bad = 0, first = -1;
  for (int64_t d = 0; d < D; ++d) {
    if (nan_counts[d] > 0) {
      if (first < 0) first = d;
      ++bad;
    }
  }
  TORCH_CHECK_VALUE(first < 0, "activations: neuron ", first, " has ", first < 0 ? 0 : nan_counts[first],
                    " NaN value(s) among ", N, " samples (", bad,
                    " neuron(s) have NaN in total); AUROC is undefined for NaN, remove or impute them");
}

}  // namespace invert_fast
