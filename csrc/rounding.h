// Float64 operations rounded one by one, the same on both backends: nvcc would otherwise fuse a
// multiply and an add into one FMA (rounded once), and a kernel's floats would differ from the CPU's.
// Host code compiles without FMA contraction (x86-64 baseline, ISO C++), so plain operators are these.
#pragma once

#include <cmath>

#include "macros.h"

namespace invert_fast {

INVERT_FAST_HD inline double add_rn(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
INVERT_FAST_HD inline double mul_rn(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
INVERT_FAST_HD inline double div_rn(double a, double b) {
#ifdef __CUDA_ARCH__
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}
INVERT_FAST_HD inline double sqrt_rn(double a) {
#ifdef __CUDA_ARCH__
  return __dsqrt_rn(a);
#else
  return std::sqrt(a);
#endif
}

}  // namespace invert_fast
