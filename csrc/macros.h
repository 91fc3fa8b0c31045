// Macros shared by every op header.
#pragma once

// Functions shared by the CPU and CUDA kernels (numerics, checks, layouts) are compiled for both:
// __host__ __device__ under nvcc, plain inline C++ otherwise.
#ifdef __CUDACC__
#define INVERT_FAST_HD __host__ __device__
#else
#define INVERT_FAST_HD
#endif
