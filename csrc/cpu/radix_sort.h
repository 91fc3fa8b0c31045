// Order-preserving integer keys of floating-point values and the LSD radix sort of (key, index)
// items that the CPU ranking kernels share (rank_doubled_cpu.cpp, sparse_rank_doubled_cpu.cpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

namespace invert_fast {
namespace cpu {

// Order-preserving maps to unsigned integers: negative values flip all bits, the rest flip the sign
// bit. Adding +0.0 turns -0.0 into +0.0 so the two tie, as they compare equal (and, unlike a
// branch, keeps the loop vectorizable: 8x faster here).
inline uint32_t ordered_key(float v) {
  v += 0.0f;
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  return u ^ (static_cast<uint32_t>(static_cast<int32_t>(u) >> 31) | 0x80000000u);
}
inline uint64_t ordered_key(double v) {
  v += 0.0;
  uint64_t u;
  std::memcpy(&u, &v, sizeof u);
  return u ^ (static_cast<uint64_t>(static_cast<int64_t>(u) >> 63) | 0x8000000000000000ull);
}

// 32-bit keys: key in the high half and sample index in the low half of one word.
struct Packed32 {
  using Key = uint32_t;
  uint64_t word;
  static Packed32 make(uint32_t key, uint32_t idx) { return {(uint64_t{key} << 32) | idx}; }
  uint32_t key() const { return static_cast<uint32_t>(word >> 32); }
  uint32_t index() const { return static_cast<uint32_t>(word); }
};
// 64-bit keys (float64): key and index side by side.
struct Packed64 {
  using Key = uint64_t;
  uint64_t k;
  uint32_t idx;
  static Packed64 make(uint64_t key, uint32_t i) { return {key, i}; }
  uint64_t key() const { return k; }
  uint32_t index() const { return idx; }
};

// Stable LSD radix sort of a[0..n) by key() with kBits-bit digits; returns whichever of a/tmp holds
// the result. All digit histograms are taken in one read pass; passes whose digit is constant are
// skipped (activations rounded from bfloat16 have 16 constant low bits). Counters are int32 (n < 2^30)
// and reused by the calling thread.
template <typename Item, int kBits>
Item* radix_sort_bits(Item* a, Item* tmp, int64_t n) {
  using Key = typename Item::Key;
  constexpr int kKeyBits = 8 * sizeof(Key);
  constexpr int kPasses = (kKeyBits + kBits - 1) / kBits;
  constexpr int kBuckets = 1 << kBits;
  thread_local std::vector<int32_t> hist;
  hist.assign(static_cast<size_t>(kPasses) * kBuckets, 0);
  for (int64_t i = 0; i < n; ++i) {
    const Key k = a[i].key();
    for (int p = 0; p < kPasses; ++p) ++hist[p * kBuckets + ((k >> (p * kBits)) & (kBuckets - 1))];
  }
  for (int p = 0; p < kPasses; ++p) {
    int32_t* h = hist.data() + p * kBuckets;
    const int shift = p * kBits;
    if (h[(a[0].key() >> shift) & (kBuckets - 1)] == n) continue;
    int32_t sum = 0;
    for (int b = 0; b < kBuckets; ++b) {
      const int32_t c0 = h[b];
      h[b] = sum;
      sum += c0;
    }
    for (int64_t i = 0; i < n; ++i) tmp[h[(a[i].key() >> shift) & (kBuckets - 1)]++] = a[i];
    std::swap(a, tmp);
  }
  return a;
}

// 16-bit digits (two passes for float32 keys, one for bfloat16-rounded ones) once the columns are
// long enough to pay for 65,536 counters; 11-bit digits below.
template <typename Item>
Item* radix_sort(Item* a, Item* tmp, int64_t n) {
  return n >= (int64_t{1} << 15) ? radix_sort_bits<Item, 16>(a, tmp, n) : radix_sort_bits<Item, 11>(a, tmp, n);
}

}  // namespace cpu
}  // namespace invert_fast
