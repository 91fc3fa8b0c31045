// bits_transpose: bit-packed concept masks, concept-major [K, ceil(N / 64)], turned sample-major
// [N, ceil(K / 64)]: row n holds sample n's concept vector (concept k at bit k % 64 of word k / 64).
//
// The regions of a concept set are the groups of equal rows (invert_fast/core/regions.py); 64 x 64
// blocks are transposed with the classic six rounds of masked swaps.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstdint>

#include "macros.h"

namespace invert_fast {

// bits: [K, W] int64 with W >= ceil(n / 64);  n: samples
// returns: [n, ceil(K / 64)] int64
at::Tensor bits_transpose_cpu(const at::Tensor& bits, int64_t n);
at::Tensor bits_transpose_cuda(const at::Tensor& bits, int64_t n);

inline void check_bits_transpose_input(const at::Tensor& bits, int64_t n) {
  TORCH_CHECK_VALUE(bits.dim() == 2, "bits_transpose: bits must be [K, W], got shape ", bits.sizes());
  TORCH_CHECK_TYPE(bits.scalar_type() == at::kLong, "bits_transpose: bits must be int64, got ", bits.scalar_type());
  TORCH_CHECK_VALUE(n >= 0 && (n + 63) / 64 <= bits.size(1), "bits_transpose: n must be in [0, 64 W] = [0, ",
                    64 * bits.size(1), "], got ", n);
}

// Transposes a 64 x 64 bit matrix in place: a[i] bit j <-> a[j] bit i.
INVERT_FAST_HD inline void transpose64(uint64_t a[64]) {
  uint64_t m = 0x00000000FFFFFFFFull;
  for (int j = 32; j != 0; j >>= 1, m ^= m << j) {
    for (int k = 0; k < 64; k = ((k | j) + 1) & ~j) {
      const uint64_t t = ((a[k] >> j) ^ a[k | j]) & m;
      a[k] ^= t << j;
      a[k | j] ^= t;
    }
  }
}

}  // namespace invert_fast
