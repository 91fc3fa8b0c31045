// CUDA kernel of top_values: a thread per (image, unit) plane finds whether it holds a NaN (the first
// such image per unit by an integer atomicMin); the values come from ATen's topk over prev and the
// chunk, per unit (a selection of the same multiset of values as the CPU's, hence the same result).
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/eq.h>
#include <ATen/ops/full.h>
#include <ATen/ops/topk.h>
#include <ATen/ops/where.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <limits>

#include "../top_values.h"

namespace invert_fast {
namespace {

constexpr int kThreads = 256;

template <typename scalar_t>
__global__ void first_nan_kernel(const scalar_t* __restrict__ maps,       // [n, D, h, w]
                                 unsigned long long* __restrict__ first,  // [D]
                                 int64_t n, int64_t D, int64_t hw) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (t >= n * D) return;
  const scalar_t* plane = maps + t * hw;
  for (int64_t i = 0; i < hw; ++i) {
    if (plane[i] != plane[i]) {
      atomicMin(first + t % D, static_cast<unsigned long long>(t / D));
      return;
    }
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> top_values_cuda(const at::Tensor& maps, const at::Tensor& prev, int64_t keep) {
  check_top_values_input(maps, prev, keep);
  TORCH_INTERNAL_ASSERT(maps.device().is_cuda());
  const c10::cuda::OptionalCUDAGuard guard(maps.device());
  const int64_t n = maps.size(0), D = maps.size(1), hw = maps.size(2) * maps.size(3);
  const at::Tensor m = maps.contiguous();
  const int64_t none = std::numeric_limits<int64_t>::max();
  at::Tensor first = at::full({D}, none, maps.options().dtype(at::kLong));
  if (n * D > 0 && hw > 0) {
    const int64_t blocks = (n * D + kThreads - 1) / kThreads;
    TORCH_CHECK_VALUE(blocks <= 2147483647, "top_values: too many planes for one launch, got ", n * D);
    AT_DISPATCH_FLOATING_TYPES(m.scalar_type(), "top_values_cuda", [&] {
      first_nan_kernel<scalar_t><<<static_cast<unsigned>(blocks), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
          m.const_data_ptr<scalar_t>(), reinterpret_cast<unsigned long long*>(first.data_ptr<int64_t>()), n, D, hw);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  first = at::where(at::eq(first, none), at::full({}, -1, first.options()), first);
  const at::Tensor vals = at::cat({prev, m.transpose(0, 1).reshape({D, n * hw})}, 1);
  const int64_t take = std::min<int64_t>(keep, vals.size(1));
  return {std::get<0>(at::topk(vals, take, 1, true, true)), first};
}

TORCH_LIBRARY_IMPL(invert_fast, CUDA, m) { m.impl("top_values", &top_values_cuda); }

}  // namespace invert_fast
