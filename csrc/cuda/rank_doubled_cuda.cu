// CUDA kernel of rank_doubled: a segmented sort of each neuron's values (at::sort, a radix sort
// on the GPU), then one block per neuron turns sorted tie groups into doubled mid-ranks.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/isnan.h>
#include <ATen/ops/sort.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include "../rank_doubled.h"

namespace invert_fast {
namespace {

constexpr int kThreads = 256;

// Scan operators (CUDA 13's CUB dropped cub::Max / cub::Min).
struct MaxOp {
  __device__ int64_t operator()(int64_t a, int64_t b) const { return a > b ? a : b; }
};
struct MinOp {
  __device__ int64_t operator()(int64_t a, int64_t b) const { return a < b ? a : b; }
};

// A forward max-scan gives each sorted position the first position of its tie group, a backward
// min-scan the last; the doubled mid-rank of the group at positions i..j is i + j + 2.
// The first position is parked in `out` between the two passes (same block, so __syncthreads
// makes it visible).
template <typename scalar_t>
__global__ void doubled_midranks_kernel(const scalar_t* __restrict__ sorted,  // [D, N] each row ascending
                                        const int64_t* __restrict__ order,    // [D, N] sample of each position
                                        int32_t* __restrict__ out,            // [N, D]
                                        double* __restrict__ tie_sums,        // [D]
                                        int64_t N, int64_t D) {
  using acc_t = at::opmath_type<scalar_t>;
  using Scan = cub::BlockScan<int64_t, kThreads>;
  using Reduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename Scan::TempStorage temp;
  __shared__ typename Reduce::TempStorage reduce_temp;
  __shared__ int64_t carry;
  const int64_t d = blockIdx.x;
  const scalar_t* s = sorted + d * N;
  const int64_t* o = order + d * N;

  if (threadIdx.x == 0) carry = -1;
  __syncthreads();
  for (int64_t base = 0; base < N; base += kThreads) {
    const int64_t i = base + threadIdx.x;
    int64_t first = -1;
    if (i < N && (i == 0 || static_cast<acc_t>(s[i]) != static_cast<acc_t>(s[i - 1]))) first = i;
    Scan(temp).InclusiveScan(first, first, MaxOp());
    first = max(first, carry);
    __syncthreads();
    if (threadIdx.x == kThreads - 1) carry = first;
    if (i < N) out[o[i] * D + d] = static_cast<int32_t>(first);
    __syncthreads();
  }

  if (threadIdx.x == 0) carry = N;
  double ties = 0.0;
  __syncthreads();
  for (int64_t base = 0; base < N; base += kThreads) {
    const int64_t j = N - 1 - (base + threadIdx.x);
    int64_t last = N;
    if (j >= 0 && (j == N - 1 || static_cast<acc_t>(s[j]) != static_cast<acc_t>(s[j + 1]))) last = j;
    Scan(temp).InclusiveScan(last, last, MinOp());
    last = min(last, carry);
    __syncthreads();
    if (threadIdx.x == kThreads - 1) carry = last;
    if (j >= 0) {
      // Each member of a group of t adds t^2 - 1, so the group adds t^3 - t in total.
      const int64_t first = out[o[j] * D + d];
      const double t = static_cast<double>(last - first + 1);
      ties += t * t - 1.0;
      out[o[j] * D + d] = static_cast<int32_t>(first + last + 2);
    }
    __syncthreads();
  }
  const double total = Reduce(reduce_temp).Sum(ties);
  if (threadIdx.x == 0) tie_sums[d] = total;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> rank_doubled_ties_cuda(const at::Tensor& x) {
  check_rank_doubled_input(x);
  TORCH_INTERNAL_ASSERT(x.device().is_cuda());
  const c10::cuda::OptionalCUDAGuard guard(x.device());
  const int64_t N = x.size(0), D = x.size(1);
  at::Tensor out = at::empty({N, D}, x.options().dtype(at::kInt));
  at::Tensor ties = at::zeros({D}, x.options().dtype(at::kDouble));
  if (N == 0 || D == 0) return {out, ties};
  const at::Tensor nan_counts = at::isnan(x).sum(0).to(at::kCPU);  // [D] int64
  check_no_nan(nan_counts.const_data_ptr<int64_t>(), D, N);

  const at::Tensor xt = x.t().contiguous();  // [D, N]: one neuron per row for the segmented sort
  const auto sorted_order = at::sort(xt, /*dim=*/1, /*descending=*/false);
  const at::Tensor& sorted = std::get<0>(sorted_order);
  const at::Tensor& order = std::get<1>(sorted_order);
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "rank_doubled_cuda", [&] {
    doubled_midranks_kernel<scalar_t><<<static_cast<unsigned>(D), kThreads, 0, stream>>>(
        sorted.const_data_ptr<scalar_t>(), order.const_data_ptr<int64_t>(), out.data_ptr<int32_t>(),
        ties.data_ptr<double>(), N, D);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {out, ties};
}

at::Tensor rank_doubled_cuda(const at::Tensor& x) { return std::get<0>(rank_doubled_ties_cuda(x)); }

// The ranks on the device, then summed per region by an integer index_add (exact, order-independent).
std::tuple<at::Tensor, at::Tensor> rank_region_sums_cuda(const at::Tensor& x, const at::Tensor& region_of, int64_t G) {
  check_rank_region_sums_input(x, region_of, G);
  TORCH_INTERNAL_ASSERT(x.device().is_cuda());
  const c10::cuda::OptionalCUDAGuard guard(x.device());
  if (region_of.numel() > 0) {
    const int64_t lo = region_of.min().item<int64_t>(), hi = region_of.max().item<int64_t>();
    TORCH_CHECK_VALUE(lo >= 0 && hi < G, "rank_region_sums: region_of must lie in [0, ", G, "), got values from ", lo,
                      " to ", hi);
  }
  auto [ranks, ties] = rank_doubled_ties_cuda(x);
  at::Tensor out = at::zeros({G, x.size(1)}, x.options().dtype(at::kLong));
  out.index_add_(0, region_of, ranks.to(at::kLong));
  return {out, ties};
}

TORCH_LIBRARY_IMPL(invert_fast, CUDA, m) {
  m.impl("rank_doubled", &rank_doubled_cuda);
  m.impl("rank_doubled_ties", &rank_doubled_ties_cuda);
  m.impl("rank_region_sums", &rank_region_sums_cuda);
}

}  // namespace invert_fast
