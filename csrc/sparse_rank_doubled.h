// sparse_rank_doubled: doubled mid-ranks of sparse activation columns, from their stored entries only.
//
// Column d of an [N, D] matrix stores entries (row, value) at positions indptr[d] .. indptr[d + 1]
// (CSC); every other entry is the value 0.0. Ranked among all N samples, the m negatives come first,
// then the z zeros (implicit and stored), then the positives, so the zeros share the doubled mid-rank
// 2m + z + 1, a stored negative keeps the rank it has among the stored entries, and a stored positive
// moves up by the implicit zeros. Every rank equals the dense kernel's (rank_doubled.h) on the same
// data, and the tie term is summed group by group in ascending value order as the dense CPU kernel
// sums it, so it is bit-identical to it for every N.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <tuple>

#include "macros.h"
#include "rank_doubled.h"

namespace invert_fast {

// indptr:  [D + 1] int64, 0 = indptr[0] <= ... <= indptr[D] = nnz
// indices: [nnz] int64 sample (row) of each stored entry, strictly increasing within a column, in [0, N)
// values:  [nnz] float16/bfloat16/float32/float64, no NaN
// first:   the layer-wide number of column 0 (error messages name neurons by it)
// returns: ([nnz] int32 doubled mid-rank of each stored entry, [D] int64 doubled mid-rank of the
//           column's zeros, [D] float64 tie term sum over tie groups of t^3 - t, the zeros included)
std::tuple<at::Tensor, at::Tensor, at::Tensor> sparse_rank_doubled_cpu(const at::Tensor& indptr,
                                                                       const at::Tensor& indices,
                                                                       const at::Tensor& values, int64_t N,
                                                                       int64_t first);
std::tuple<at::Tensor, at::Tensor, at::Tensor> sparse_rank_doubled_cuda(const at::Tensor& indptr,
                                                                        const at::Tensor& indices,
                                                                        const at::Tensor& values, int64_t N,
                                                                        int64_t first);

inline void check_sparse_rank_input(const at::Tensor& indptr, const at::Tensor& indices, const at::Tensor& values,
                                    int64_t N) {
  TORCH_CHECK_VALUE(indptr.dim() == 1 && indptr.size(0) >= 1,
                    "sparse_rank_doubled: indptr must be [D + 1] with D >= 0, got shape ", indptr.sizes());
  TORCH_CHECK_TYPE(indptr.scalar_type() == at::kLong && indices.scalar_type() == at::kLong,
                   "sparse_rank_doubled: indptr and indices must be int64, got ", indptr.scalar_type(), " and ",
                   indices.scalar_type());
  TORCH_CHECK_VALUE(indices.dim() == 1 && values.dim() == 1 && indices.size(0) == values.size(0),
                    "sparse_rank_doubled: indices and values must be [nnz] of one length, got shapes ", indices.sizes(),
                    " and ", values.sizes());
  const auto st = values.scalar_type();
  TORCH_CHECK_TYPE(st == at::kFloat || st == at::kDouble || st == at::kHalf || st == at::kBFloat16,
                   "sparse_rank_doubled: values must be float16, bfloat16, float32 or float64, got ", st);
  TORCH_CHECK_VALUE(N >= 0 && N <= kMaxRankSamples, "sparse_rank_doubled: N must be in [0, ", kMaxRankSamples,
                    "] (doubled ranks are int32), got ", N);
  TORCH_CHECK_VALUE(indices.device() == indptr.device() && values.device() == indptr.device(),
                    "sparse_rank_doubled: indptr, indices and values must be on one device, got ", indptr.device(),
                    ", ", indices.device(), " and ", values.device());
}

// indptr on the host: starts at 0, never decreases, ends at nnz.
inline void check_sparse_indptr(const int64_t* ip, int64_t D, int64_t nnz) {
  TORCH_CHECK_VALUE(ip[0] == 0 && ip[D] == nnz, "sparse_rank_doubled: indptr must run from 0 to nnz = ", nnz, ", got ",
                    ip[0], " to ", ip[D]);
  for (int64_t d = 0; d < D; ++d) {
    TORCH_CHECK_VALUE(ip[d + 1] >= ip[d], "sparse_rank_doubled: indptr must not decrease, got indptr[", d,
                      "] = ", ip[d], " > indptr[", d + 1, "] = ", ip[d + 1]);
  }
}

// The first bad stored entry of a column, found by either backend, raised with the same text.
enum SparseEntryError : int8_t { kEntryOk = 0, kEntryNan = 1, kEntryRange = 2, kEntryDuplicate = 3, kEntryOrder = 4 };

inline void raise_sparse_entry_error(int8_t kind, int64_t neuron, int64_t entry, int64_t row, int64_t N) {
  TORCH_CHECK_VALUE(kind != kEntryNan, "activations: neuron ", neuron, " has a NaN value (stored entry ", entry,
                    ", sample ", row, "); AUROC is undefined for NaN, remove or impute them");
  TORCH_CHECK_VALUE(kind != kEntryRange, "activations: neuron ", neuron, " has a stored entry (", entry, ") at sample ",
                    row, ", outside [0, ", N, ")");
  TORCH_CHECK_VALUE(kind != kEntryDuplicate, "activations: neuron ", neuron, " stores sample ", row, " twice (entry ",
                    entry, "); duplicate coordinates are not summed, remove them (or coalesce the tensor)");
  TORCH_CHECK_VALUE(kind != kEntryOrder, "sparse_rank_doubled: neuron ", neuron, " stores its samples out of order (",
                    "entry ", entry, ", sample ", row, "); rows must increase within each column");
}

// Sign classes of a stored value: below, at or above zero.
enum SignClass : int8_t { kNegative = 0, kZero = 1, kPositive = 2 };

// Where a column's stored entries go among all N samples: neg negatives and pos positives stored,
// z = N - neg - pos zeros (stored ones among them).
struct SparseColumnRanks {
  int64_t zero_rank;  // doubled mid-rank shared by the zeros: 2 neg + z + 1
  int64_t pos_shift;  // doubled ranks added to stored positives: 2 x implicit zeros

  INVERT_FAST_HD static SparseColumnRanks make(int64_t N, int64_t stored, int64_t neg, int64_t pos) {
    const int64_t z = N - neg - pos;
    return {2 * neg + z + 1, 2 * (z - (stored - neg - pos))};
  }
  // A tie group at positions i..j (0-based) among the column's stored entries, sorted ascending.
  INVERT_FAST_HD int64_t rank(int64_t i, int64_t j, int8_t cls) const {
    return cls == kZero ? zero_rank : i + j + 2 + (cls == kPositive ? pos_shift : 0);
  }
};

// The tie term of a column, fed its stored tie groups in ascending value order: the zeros count as
// one group of z, placed where the dense kernel meets them (after the negatives), so the float64 sum
// is the same sequence of additions as rank_doubled's.
struct SparseTieSum {
  int64_t zeros;
  double ties = 0.0;
  bool zeros_added = false;

  explicit SparseTieSum(int64_t z) : zeros(z) {}
  void add(double t) { ties += (t * t - 1.0) * t; }
  void add_zeros() {
    if (!zeros_added && zeros > 0) add(static_cast<double>(zeros));
    zeros_added = true;
  }
  void group(int64_t t, int8_t cls) {
    if (cls == kNegative) {
      add(static_cast<double>(t));
    } else if (cls == kZero) {
      add_zeros();
    } else {
      add_zeros();
      add(static_cast<double>(t));
    }
  }
  double finish() {
    add_zeros();
    return ties;
  }
};

}  // namespace invert_fast
