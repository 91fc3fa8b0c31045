// CPU kernel of rank_doubled: per column, an LSD radix sort of order-preserving integer keys
// carrying the sample index, then one pass over tie groups. Columns are processed in blocks so
// that strided reads and writes of the [N, D] matrices touch whole cache lines.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "../rank_doubled.h"
#include "radix_sort.h"

namespace invert_fast {
namespace {
using cpu::ordered_key;
using cpu::Packed32;
using cpu::Packed64;
using cpu::radix_sort;

// Walks the tie groups of sorted items: a group at sorted positions i..j gets the doubled mid-rank
// i + j + 2, passed to emit(sample, rank) for each of its samples. Returns the tie term, the sum over
// groups of t^3 - t (t = j - i + 1).
template <typename Item, typename Emit>
double assign_ranks(const Item* sorted, int64_t n, Emit emit) {
  double ties = 0.0;
  int64_t i = 0;
  while (i < n) {
    int64_t j = i;
    const auto k = sorted[i].key();
    while (j + 1 < n && sorted[j + 1].key() == k) ++j;
    const int32_t r = static_cast<int32_t>(i + j + 2);
    for (int64_t t = i; t <= j; ++t) emit(sorted[t].index(), r);
    const double t = static_cast<double>(j - i + 1);
    ties += (t * t - 1.0) * t;
    i = j + 1;
  }
  return ties;
}

constexpr int64_t kBlock = 64;
constexpr int64_t kPrefetchRows = 8;
constexpr int64_t kTile = 16;  // rows moved per column at a time: 16 items of 4-8 bytes, one or two cache lines

// Where a block's ranks go: the [N, D] doubled ranks themselves ...
struct RankSink {
  int32_t* out;  // [N, D]
  int64_t N, D;
  std::vector<int32_t> ranks;  // [block, N]
  void start(int64_t block) { ranks.resize(static_cast<size_t>(block * N)); }
  template <typename Item>
  double column(int64_t c, const Item* sorted) {
    int32_t* rc = ranks.data() + c * N;
    return assign_ranks(sorted, N, [rc](uint32_t s, int32_t r) { rc[s] = r; });
  }
  void finish(int64_t d0, int64_t nb) {
    int32_t tile[kBlock][kTile];
    for (int64_t n0 = 0; n0 < N; n0 += kTile) {
      const int64_t rows = std::min<int64_t>(kTile, N - n0);
      for (int64_t c = 0; c < nb; ++c) {
        const int32_t* src = ranks.data() + c * N + n0;
        for (int64_t r = 0; r < rows; ++r) tile[c][r] = src[r];
      }
      for (int64_t r = 0; r < rows; ++r) {
        int32_t* orow = out + (n0 + r) * D + d0;
        for (int64_t c = 0; c < nb; ++c) orow[c] = tile[c][r];
      }
    }
  }
};

// ... or their sums per region ([G, D] int64): the [N, D] ranks are never written.
struct RegionSink {
  int64_t* out;           // [G, D]
  const int32_t* region;  // [N]
  int64_t G, D;
  std::vector<int64_t> acc;  // [G, block]
  int64_t block = 0;
  void start(int64_t b) {
    block = b;
    acc.resize(static_cast<size_t>(G * b));
  }
  template <typename Item>
  double column(int64_t c, const Item* sorted, int64_t N) {
    int64_t* a = acc.data() + c;
    const int32_t* reg = region;
    const int64_t stride = block;
    return assign_ranks(sorted, N, [a, reg, stride](uint32_t s, int32_t r) { a[reg[s] * stride] += r; });
  }
  void finish(int64_t d0, int64_t nb) {
    for (int64_t g = 0; g < G; ++g) {
      int64_t* dst = out + g * D + d0;
      const int64_t* src = acc.data() + g * block;
      for (int64_t c = 0; c < nb; ++c) dst[c] = src[c];
    }
  }
};

template <typename scalar_t, typename Item, typename Sink>
void rank_columns(const at::Tensor& x, Sink& proto, double* tie_sums, std::vector<int64_t>& nan_counts) {
  using Key = typename Item::Key;
  using key_src_t = std::conditional_t<std::is_same_v<Key, uint64_t>, double, float>;
  const int64_t N = x.size(0), D = x.size(1);
  const int64_t sn = x.stride(0), sd = x.stride(1);
  const scalar_t* xp = x.const_data_ptr<scalar_t>();
  // Columns per task: reading a column of a row-major [N, D] matrix touches one page per sample, so a
  // block of kBlock columns shares each page visit (TLB misses dominated with 16). Shrink the block for
  // very large N so the per-thread buffers stay near 256 MB, and to the columns there are (split over
  // the threads): the buffers are [block, N], and a caller with a memory budget batches few columns.
  const int64_t per_col = N * static_cast<int64_t>(sizeof(Item) + sizeof(int32_t));
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t block = std::max<int64_t>(
      1, std::min({kBlock, (int64_t{256} << 20) / std::max<int64_t>(per_col, 1), (D + threads - 1) / threads}));
  const int64_t num_blocks = (D + block - 1) / block;
  at::parallel_for(0, num_blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<Item> items(static_cast<size_t>(block * N)), tmp(static_cast<size_t>(N));
    Sink sink = proto;
    sink.start(block);
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t d0 = b * block, nb = std::min(block, D - d0);
      std::array<int64_t, kBlock> nans{};
      // Rows in tiles of kTile: each column's items of a tile are gathered in a small buffer and
      // written as one cache line, instead of one item per line to kBlock streams at once.
      Item tile[kBlock][kTile];
      for (int64_t n0 = 0; n0 < N; n0 += kTile) {
        const int64_t rows = std::min<int64_t>(kTile, N - n0);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t n = n0 + r;
          const scalar_t* row = xp + n * sn + d0 * sd;
          // Rows are a page apart: fetch ahead, the hardware prefetcher does not cross pages.
          if (n + kPrefetchRows < N) {
            for (int64_t c = 0; c < nb * sd; c += 64 / static_cast<int64_t>(sizeof(scalar_t)))
              __builtin_prefetch(row + kPrefetchRows * sn + c);
          }
          for (int64_t c = 0; c < nb; ++c) {
            const key_src_t v = static_cast<key_src_t>(row[c * sd]);
            nans[c] += v != v;
            tile[c][r] = Item::make(ordered_key(v), static_cast<uint32_t>(n));
          }
        }
        for (int64_t c = 0; c < nb; ++c) {
          Item* dst = items.data() + c * N + n0;
          for (int64_t r = 0; r < rows; ++r) dst[r] = tile[c][r];
        }
      }
      bool any_nan = false;
      for (int64_t c = 0; c < nb; ++c) {
        nan_counts[d0 + c] = nans[c];
        any_nan |= nans[c] > 0;
      }
      if (any_nan || N == 0) continue;
      if constexpr (std::is_same_v<Sink, RegionSink>) std::fill(sink.acc.begin(), sink.acc.end(), 0);
      for (int64_t c = 0; c < nb; ++c) {
        const Item* sorted = radix_sort(items.data() + c * N, tmp.data(), N);
        if constexpr (std::is_same_v<Sink, RegionSink>) {
          tie_sums[d0 + c] = sink.column(c, sorted, N);
        } else {
          tie_sums[d0 + c] = sink.column(c, sorted);
        }
      }
      sink.finish(d0, nb);
    }
  });
}

template <typename Sink>
void rank_dispatch(const at::Tensor& x, Sink& sink, double* tie_sums, std::vector<int64_t>& nan_counts) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "rank_doubled_cpu", [&] {
    if constexpr (std::is_same_v<scalar_t, double>) {
      rank_columns<scalar_t, Packed64>(x, sink, tie_sums, nan_counts);
    } else {
      // float16 and bfloat16 widen to float32 exactly, so their order and ties are kept.
      rank_columns<scalar_t, Packed32>(x, sink, tie_sums, nan_counts);
    }
  });
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> rank_doubled_ties_cpu(const at::Tensor& x) {
  check_rank_doubled_input(x);
  TORCH_INTERNAL_ASSERT(x.device().is_cpu());
  const int64_t N = x.size(0), D = x.size(1);
  at::Tensor out = at::empty({N, D}, x.options().dtype(at::kInt));
  at::Tensor ties = at::zeros({D}, x.options().dtype(at::kDouble));
  if (N == 0 || D == 0) return {out, ties};
  std::vector<int64_t> nan_counts(static_cast<size_t>(D), 0);
  RankSink sink{out.data_ptr<int32_t>(), N, D, {}};
  rank_dispatch(x, sink, ties.data_ptr<double>(), nan_counts);
  check_no_nan(nan_counts.data(), D, N);
  return {out, ties};
}

at::Tensor rank_doubled_cpu(const at::Tensor& x) { return std::get<0>(rank_doubled_ties_cpu(x)); }

std::tuple<at::Tensor, at::Tensor> rank_region_sums_cpu(const at::Tensor& x, const at::Tensor& region_of, int64_t G) {
  check_rank_region_sums_input(x, region_of, G);
  TORCH_INTERNAL_ASSERT(x.device().is_cpu());
  const int64_t N = x.size(0), D = x.size(1);
  at::Tensor out = at::zeros({G, D}, x.options().dtype(at::kLong));
  at::Tensor ties = at::zeros({D}, x.options().dtype(at::kDouble));
  if (N == 0 || D == 0) return {out, ties};
  const at::Tensor reg = region_of.to(at::kInt).contiguous();
  const int32_t* rp = reg.const_data_ptr<int32_t>();
  const auto [lo, hi] = std::minmax_element(rp, rp + N);
  TORCH_CHECK_VALUE(*lo >= 0 && *hi < G, "rank_region_sums: region_of must lie in [0, ", G, "), got values from ", *lo,
                    " to ", *hi);
  std::vector<int64_t> nan_counts(static_cast<size_t>(D), 0);
  RegionSink sink{out.data_ptr<int64_t>(), rp, G, D, {}};
  rank_dispatch(x, sink, ties.data_ptr<double>(), nan_counts);
  check_no_nan(nan_counts.data(), D, N);
  return {out, ties};
}

TORCH_LIBRARY_IMPL(invert_fast, CPU, m) {
  m.impl("rank_doubled", &rank_doubled_cpu);
  m.impl("rank_doubled_ties", &rank_doubled_ties_cpu);
  m.impl("rank_region_sums", &rank_region_sums_cpu);
}

}  // namespace invert_fast
