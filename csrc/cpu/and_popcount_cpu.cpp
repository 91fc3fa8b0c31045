// CPU kernel of and_popcount: tasks own blocks of rows of a (so of out, no races); within a block the
// loop runs image by image, so that image's rows of a and b stay in L1 while all pairs are counted.
#include <ATen/Parallel.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>

#include "../and_popcount.h"

namespace invert_fast {
namespace {
constexpr int64_t kRowBlock = 16;

// out[i0:i1, :] += counts of one image. Cloned for the popcnt instruction (the extension is built for
// the baseline x86-64 ISA, where __builtin_popcountll is a slow bit trick).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("popcnt", "default")))
#endif
void tally_image(int64_t* __restrict__ out,       // [A, K] rows i0..i1 used
                 const uint64_t* __restrict__ a,  // [A, W] rows of this image
                 const uint64_t* __restrict__ b,  // [K, W] rows of this image
                 int64_t i0, int64_t i1, int64_t K, int64_t W) {
  for (int64_t i = i0; i < i1; ++i) {
    const uint64_t* arow = a + i * W;
    int64_t* orow = out + i * K;
    for (int64_t k = 0; k < K; ++k) {
      const uint64_t* brow = b + k * W;
      int64_t acc = 0;
      for (int64_t w = 0; w < W; ++w) acc += __builtin_popcountll(arow[w] & brow[w]);
      orow[k] += acc;
    }
  }
}
}  // namespace

at::Tensor and_popcount_cpu(const at::Tensor& a, const at::Tensor& b) {
  check_and_popcount_input(a, b);
  TORCH_INTERNAL_ASSERT(a.device().is_cpu());
  const int64_t N = a.size(0), A = a.size(1), K = b.size(1), W = a.size(2);
  at::Tensor out = at::zeros({A, K}, a.options());
  if (N == 0 || A == 0 || K == 0 || W == 0) return out;
  const at::Tensor ac = a.contiguous(), bc = b.contiguous();
  const auto* ap = reinterpret_cast<const uint64_t*>(ac.const_data_ptr<int64_t>());
  const auto* bp = reinterpret_cast<const uint64_t*>(bc.const_data_ptr<int64_t>());
  int64_t* op = out.data_ptr<int64_t>();
  const int64_t blocks = (A + kRowBlock - 1) / kRowBlock;
  at::parallel_for(0, blocks, 1, [&](int64_t blk0, int64_t blk1) {
    for (int64_t blk = blk0; blk < blk1; ++blk) {
      const int64_t i0 = blk * kRowBlock, i1 = std::min(A, i0 + kRowBlock);
      for (int64_t n = 0; n < N; ++n) tally_image(op, ap + n * A * W, bp + n * K * W, i0, i1, K, W);
    }
  });
  return out;
}

TORCH_LIBRARY_IMPL(invert_fast, CPU, m) { m.impl("and_popcount", &and_popcount_cpu); }

}  // namespace invert_fast
