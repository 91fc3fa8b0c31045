// CUDA kernel of sparse_rank_doubled: all stored entries sorted at once by (column, value) with two
// stable device sorts, tie groups found by scans, ranks from the shared SparseColumnRanks. The tie
// terms are summed on the host, group by group in the CPU kernel's order (SparseTieSum), so they are
// bit-identical to the CPU's for every N (a device reduction would reorder the float64 additions).
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <vector>

#include "../sparse_rank_doubled.h"

namespace invert_fast {
namespace {

constexpr int kThreads = 256;

// One thread per sorted entry: its rank from the first and last position of its tie group.
__global__ void sparse_ranks_kernel(const int64_t* __restrict__ first, const int64_t* __restrict__ last,
                                    const int64_t* __restrict__ col, const int8_t* __restrict__ cls,
                                    const int64_t* __restrict__ order, const int64_t* __restrict__ indptr,
                                    const int64_t* __restrict__ zero_rank, const int64_t* __restrict__ pos_shift,
                                    int32_t* __restrict__ ranks, int64_t nnz) {
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (e >= nnz) return;
  const int64_t d = col[e], base = indptr[d];
  const SparseColumnRanks c{zero_rank[d], pos_shift[d]};
  ranks[order[e]] = static_cast<int32_t>(c.rank(first[e] - base, last[e] - base, cls[e]));
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> sparse_rank_doubled_cuda(const at::Tensor& indptr,
                                                                        const at::Tensor& indices,
                                                                        const at::Tensor& values, int64_t N,
                                                                        int64_t first) {
  check_sparse_rank_input(indptr, indices, values, N);
  TORCH_INTERNAL_ASSERT(indptr.device().is_cuda());
  const c10::cuda::OptionalCUDAGuard guard(indptr.device());
  const int64_t D = indptr.size(0) - 1, nnz = indices.size(0);
  const at::Tensor ip_host = indptr.to(at::kCPU).contiguous();
  check_sparse_indptr(ip_host.const_data_ptr<int64_t>(), D, nnz);
  at::Tensor ranks = at::empty({nnz}, indices.options().dtype(at::kInt));
  at::Tensor zero_ranks = at::empty({D}, indptr.options());
  at::Tensor ties = at::zeros({D}, indptr.options().dtype(at::kDouble));
  if (D == 0) return {ranks, zero_ranks, ties};
  const at::Tensor ip = indptr.contiguous(), rows = indices.contiguous();
  const at::Tensor counts = ip.slice(0, 1) - ip.slice(0, 0, D);
  const at::Tensor col = at::repeat_interleave(at::arange(D, ip.options()), counts, 0, nnz);

  // Bad entries: the first in (column, entry) order, as the CPU kernel reports it.
  if (nnz > 0) {
    at::Tensor kind = at::zeros({nnz}, ip.options().dtype(at::kChar));
    const at::Tensor v = values.to(values.scalar_type() == at::kDouble ? at::kDouble : at::kFloat);
    kind.masked_fill_(at::isnan(v), static_cast<int64_t>(kEntryNan));
    if (nnz > 1) {
      const at::Tensor same = col.slice(0, 1) == col.slice(0, 0, nnz - 1);
      const at::Tensor prev = rows.slice(0, 0, nnz - 1), next = rows.slice(0, 1);
      kind.slice(0, 1).masked_fill_(same & (next < prev), static_cast<int64_t>(kEntryOrder));
      kind.slice(0, 1).masked_fill_(same & (next == prev), static_cast<int64_t>(kEntryDuplicate));
    }
    kind.masked_fill_((rows < 0) | (rows >= N), static_cast<int64_t>(kEntryRange));
    const at::Tensor bad = kind.nonzero();
    if (bad.size(0) > 0) {
      // The CPU kernel stops at a column's first bad entry and reports the first bad column.
      const int64_t e = bad[0][0].item<int64_t>();
      raise_sparse_entry_error(static_cast<int8_t>(kind[e].item<int64_t>()), first + col[e].item<int64_t>(), e,
                               rows[e].item<int64_t>(), N);
    }
  }

  at::Tensor neg = at::zeros({D}, ip.options()), pos = at::zeros({D}, ip.options());
  if (nnz > 0) {
    // -0.0 + 0.0 is +0.0: the two zeros tie, as in the CPU keys.
    const at::Tensor v = values.to(values.scalar_type() == at::kDouble ? at::kDouble : at::kFloat) + 0.0;
    const auto by_value = at::sort(v, /*stable=*/true, /*dim=*/0, /*descending=*/false);
    const at::Tensor o1 = std::get<1>(by_value);
    const auto by_col = at::sort(col.index_select(0, o1), /*stable=*/true, 0, false);
    const at::Tensor sc = std::get<0>(by_col);
    const at::Tensor order = o1.index_select(0, std::get<1>(by_col));
    const at::Tensor sv = v.index_select(0, order);
    const at::Tensor cls = at::where(sv < 0, at::full_like(sc, kNegative),
                                     at::where(sv > 0, at::full_like(sc, kPositive), at::full_like(sc, kZero)))
                               .to(at::kChar);
    neg.index_add_(0, sc, (sv < 0).to(at::kLong));
    pos.index_add_(0, sc, (sv > 0).to(at::kLong));
    at::Tensor starts = at::ones({nnz}, ip.options().dtype(at::kBool));
    if (nnz > 1) {
      starts.slice(0, 1).copy_((sc.slice(0, 1) != sc.slice(0, 0, nnz - 1)) |
                               (sv.slice(0, 1) != sv.slice(0, 0, nnz - 1)));
    }
    at::Tensor ends = at::ones({nnz}, ip.options().dtype(at::kBool));
    if (nnz > 1) ends.slice(0, 0, nnz - 1).copy_(starts.slice(0, 1));
    const at::Tensor pos_all = at::arange(nnz, ip.options());
    const at::Tensor first_of = std::get<0>(at::cummax(at::where(starts, pos_all, at::zeros_like(pos_all)), 0));
    const at::Tensor last_of =
        std::get<0>(at::cummin(at::where(ends, pos_all, at::full_like(pos_all, nnz)).flip(0), 0)).flip(0);
    const at::Tensor stored = counts;
    const at::Tensor z = N - neg - pos;
    const at::Tensor zero_rank = 2 * neg + z + 1;
    const at::Tensor pos_shift = 2 * (z - (stored - neg - pos));
    zero_ranks.copy_(zero_rank);
    const auto stream = at::cuda::getCurrentCUDAStream();
    const unsigned blocks = static_cast<unsigned>((nnz + kThreads - 1) / kThreads);
    sparse_ranks_kernel<<<blocks, kThreads, 0, stream>>>(
        first_of.const_data_ptr<int64_t>(), last_of.const_data_ptr<int64_t>(), sc.const_data_ptr<int64_t>(),
        cls.const_data_ptr<int8_t>(), order.const_data_ptr<int64_t>(), ip.const_data_ptr<int64_t>(),
        zero_rank.const_data_ptr<int64_t>(), pos_shift.const_data_ptr<int64_t>(), ranks.data_ptr<int32_t>(), nnz);
    C10_CUDA_KERNEL_LAUNCH_CHECK();

    // Tie groups (column, size, class) to the host, in (column, value) order.
    const at::Tensor at_start = starts.nonzero().squeeze(1);
    const at::Tensor g_col = sc.index_select(0, at_start).to(at::kCPU);
    const at::Tensor g_size = (last_of.index_select(0, at_start) - at_start + 1).to(at::kCPU);
    const at::Tensor g_cls = cls.index_select(0, at_start).to(at::kCPU);
    const at::Tensor z_host = z.to(at::kCPU);
    at::Tensor ties_host = at::zeros({D}, ties.options().device(at::kCPU));
    const int64_t* gc = g_col.const_data_ptr<int64_t>();
    const int64_t* gs = g_size.const_data_ptr<int64_t>();
    const int8_t* gk = g_cls.const_data_ptr<int8_t>();
    const int64_t* zh = z_host.const_data_ptr<int64_t>();
    double* th = ties_host.data_ptr<double>();
    const int64_t groups = g_col.size(0);
    int64_t g = 0;
    for (int64_t d = 0; d < D; ++d) {
      SparseTieSum tie(zh[d]);
      for (; g < groups && gc[g] == d; ++g) tie.group(gs[g], gk[g]);
      th[d] = tie.finish();
    }
    ties.copy_(ties_host);
  } else {
    zero_ranks.fill_(N + 1);  // every column all zeros: 2 * 0 + N + 1
    ties.fill_(SparseTieSum(N).finish());
  }
  return {ranks, zero_ranks, ties};
}

TORCH_LIBRARY_IMPL(invert_fast, CUDA, m) { m.impl("sparse_rank_doubled", &sparse_rank_doubled_cuda); }

}  // namespace invert_fast
