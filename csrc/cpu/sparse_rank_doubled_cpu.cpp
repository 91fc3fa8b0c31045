// CPU kernel of sparse_rank_doubled: per column, the stored entries' order-preserving keys are sorted
// (radix sort, or std::sort for short columns), then one pass over tie groups assigns ranks. Only the
// nnz stored entries are touched: O(nnz log nnz) in all, nothing of size N.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../sparse_rank_doubled.h"
#include "radix_sort.h"

namespace invert_fast {
namespace {

// Below this many stored entries a comparison sort beats the radix sort's histogram set-up.
constexpr int64_t kRadixMin = 512;

template <typename Item>
Item* sort_items(Item* a, Item* tmp, int64_t n) {
  if (n < kRadixMin) {
    std::sort(a, a + n, [](const Item& x, const Item& y) { return x.key() < y.key(); });
    return a;
  }
  return cpu::radix_sort(a, tmp, n);
}

template <typename scalar_t, typename Item>
void rank_sparse_columns(const int64_t* ip, const int64_t* rows, const scalar_t* vals, int64_t N, int64_t D,
                         int32_t* ranks, int64_t* zero_ranks, double* ties, std::vector<int8_t>& err,
                         std::vector<int64_t>& err_at) {
  using Key = typename Item::Key;
  using key_src_t = std::conditional_t<std::is_same_v<Key, uint64_t>, double, float>;
  const Key zero_key = cpu::ordered_key(key_src_t(0));
  at::parallel_for(0, D, 16, [&](int64_t d0, int64_t d1) {
    std::vector<Item> items, tmp;
    for (int64_t d = d0; d < d1; ++d) {
      const int64_t lo = ip[d], n = ip[d + 1] - ip[d];
      // Entries first: rows in range and strictly increasing, values not NaN.
      int8_t bad = kEntryOk;
      int64_t at = -1;
      for (int64_t t = 0; t < n && bad == kEntryOk; ++t) {
        const int64_t r = rows[lo + t];
        const key_src_t v = static_cast<key_src_t>(vals[lo + t]);
        if (r < 0 || r >= N) {
          bad = kEntryRange;
        } else if (t > 0 && r == rows[lo + t - 1]) {
          bad = kEntryDuplicate;
        } else if (t > 0 && r < rows[lo + t - 1]) {
          bad = kEntryOrder;
        } else if (v != v) {
          bad = kEntryNan;
        }
        at = lo + t;
      }
      if (bad != kEntryOk) {
        err[d] = bad;
        err_at[d] = at;
        continue;
      }
      items.resize(static_cast<size_t>(n));
      tmp.resize(static_cast<size_t>(n));
      for (int64_t t = 0; t < n; ++t) {
        items[t] = Item::make(cpu::ordered_key(static_cast<key_src_t>(vals[lo + t])), static_cast<uint32_t>(t));
      }
      const Item* sorted = sort_items(items.data(), tmp.data(), n);
      int64_t neg = 0, pos = 0;
      while (neg < n && sorted[neg].key() < zero_key) ++neg;
      for (int64_t t = n - 1; t >= neg && sorted[t].key() > zero_key; --t) ++pos;
      const auto col = SparseColumnRanks::make(N, n, neg, pos);
      SparseTieSum tie(N - neg - pos);
      int64_t i = 0;
      while (i < n) {
        int64_t j = i;
        const Key k = sorted[i].key();
        while (j + 1 < n && sorted[j + 1].key() == k) ++j;
        const int8_t cls = k < zero_key ? kNegative : (k == zero_key ? kZero : kPositive);
        const int32_t r = static_cast<int32_t>(col.rank(i, j, cls));
        for (int64_t t = i; t <= j; ++t) ranks[lo + sorted[t].index()] = r;
        tie.group(j - i + 1, cls);
        i = j + 1;
      }
      zero_ranks[d] = col.zero_rank;
      ties[d] = tie.finish();
    }
  });
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> sparse_rank_doubled_cpu(const at::Tensor& indptr,
                                                                       const at::Tensor& indices,
                                                                       const at::Tensor& values, int64_t N,
                                                                       int64_t first) {
  check_sparse_rank_input(indptr, indices, values, N);
  TORCH_INTERNAL_ASSERT(indptr.device().is_cpu());
  const int64_t D = indptr.size(0) - 1, nnz = indices.size(0);
  const at::Tensor ip = indptr.contiguous(), rows = indices.contiguous(), vals = values.contiguous();
  check_sparse_indptr(ip.const_data_ptr<int64_t>(), D, nnz);
  at::Tensor ranks = at::empty({nnz}, indices.options().dtype(at::kInt));
  at::Tensor zero_ranks = at::empty({D}, indptr.options());
  at::Tensor ties = at::zeros({D}, indptr.options().dtype(at::kDouble));
  if (D == 0) return {ranks, zero_ranks, ties};
  std::vector<int8_t> err(static_cast<size_t>(D), kEntryOk);
  std::vector<int64_t> err_at(static_cast<size_t>(D), -1);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, vals.scalar_type(), "sparse_rank_doubled_cpu", [&] {
    using Item = std::conditional_t<std::is_same_v<scalar_t, double>, cpu::Packed64, cpu::Packed32>;
    rank_sparse_columns<scalar_t, Item>(ip.const_data_ptr<int64_t>(), rows.const_data_ptr<int64_t>(),
                                        vals.const_data_ptr<scalar_t>(), N, D, ranks.data_ptr<int32_t>(),
                                        zero_ranks.data_ptr<int64_t>(), ties.data_ptr<double>(), err, err_at);
  });
  for (int64_t d = 0; d < D; ++d) {
    if (err[d] != kEntryOk) {
      raise_sparse_entry_error(err[d], first + d, err_at[d], rows.const_data_ptr<int64_t>()[err_at[d]], N);
    }
  }
  return {ranks, zero_ranks, ties};
}

TORCH_LIBRARY_IMPL(invert_fast, CPU, m) { m.impl("sparse_rank_doubled", &sparse_rank_doubled_cpu); }

}  // namespace invert_fast
