// CPU kernel of bits_transpose: one task per range of sample words; each 64 x 64 block (64 concepts of
// one word of samples) is transposed in registers (transpose64).
#include <ATen/Parallel.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>

#include "../bits_transpose.h"

namespace invert_fast {

at::Tensor bits_transpose_cpu(const at::Tensor& bits, int64_t n) {
  check_bits_transpose_input(bits, n);
  TORCH_INTERNAL_ASSERT(bits.device().is_cpu());
  const int64_t K = bits.size(0), W = bits.size(1), J = (K + 63) / 64;
  at::Tensor out = at::zeros({n, J}, bits.options());
  if (n == 0 || K == 0) return out;
  const at::Tensor b = bits.contiguous();
  const uint64_t* bp = reinterpret_cast<const uint64_t*>(b.const_data_ptr<int64_t>());
  uint64_t* op = reinterpret_cast<uint64_t*>(out.data_ptr<int64_t>());
  const int64_t words = (n + 63) / 64;
  at::parallel_for(0, words, 16, [&](int64_t w0, int64_t w1) {
    uint64_t a[64];
    for (int64_t w = w0; w < w1; ++w) {
      for (int64_t j = 0; j < J; ++j) {
        for (int64_t t = 0; t < 64; ++t) {
          const int64_t k = 64 * j + t;
          a[t] = k < K ? bp[k * W + w] : 0;
        }
        transpose64(a);
        const int64_t rows = std::min<int64_t>(64, n - 64 * w);
        for (int64_t s = 0; s < rows; ++s) op[(64 * w + s) * J + j] = a[s];
      }
    }
  });
  return out;
}

TORCH_LIBRARY_IMPL(invert_fast, CPU, m) { m.impl("bits_transpose", &bits_transpose_cpu); }

}  // namespace invert_fast
