// Host/device qualifiers: the element-wise formulas and the engine's own math are written
// once and compiled by both g++ (CPU kernels) and nvcc (CUDA kernels).
#pragma once
#if defined(__CUDACC__)
#define DETDL_HD __host__ __device__ __forceinline__
#else
#define DETDL_HD inline
#endif
