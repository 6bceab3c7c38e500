// Launch geometry shared by the element-wise CUDA kernels (one copy, not one per .cu file).
// Two shapes of launch:
//   one thread per item:  kernel<<<blocks_for(n), kBlock>>>, the kernel guards i < n;
//   grid-stride loop:     kernel<<<grid_for(n), kBlock>>> with DETDL_GRID_STRIDE(i, n) { ... }
//                         in the kernel; the grid is capped at 2^20 blocks so that any n fits
//                         the grid's x limit, and each thread walks i, i + grid, ...
// Neither changes a result: every item is computed by one thread from its own inputs.
//
// Every launch is written DETDL_LAUNCH(grid, block, shared_bytes, stream, kernel)(args...)
// and every __shared__ array DETDL_SHARED(type, name, [dims]) (16-byte aligned, so float4
// reads are allowed), so that nvcc and the C++
// compiler of host mode (kernels/cuda/host/runtime.h, docs/gpu.md) both accept the source:
// under nvcc they are the <<<...>>> launch and the __shared__ declaration themselves.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

namespace detdl::cuda {

constexpr int kBlock = 256;  // threads per block for every element-wise kernel

inline unsigned blocks_for(std::int64_t n) {
  return static_cast<unsigned>((n + kBlock - 1) / kBlock);
}

inline unsigned grid_for(std::int64_t n) {
  return static_cast<unsigned>(
      std::min<std::int64_t>((n + kBlock - 1) / kBlock, std::int64_t{1} << 20));
}

}  // namespace detdl::cuda

// for (i = this thread's first item; i < n; i += threads in the grid). Use with grid_for.
#define DETDL_GRID_STRIDE(i, n)                                                                    \
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)

#if defined(__CUDACC__)
#define DETDL_LAUNCH(grid, block, shared_bytes, stream, ...) \
  __VA_ARGS__<<<grid, block, shared_bytes, stream>>>
#define DETDL_SHARED(type, name, dims) __shared__ __align__(16) type name dims
#else
// The kernel is called by name inside a generic lambda, so template arguments are deduced
// from the call's arguments as a <<<...>>> launch deduces them.
#define DETDL_LAUNCH(grid, block, shared_bytes, stream, ...)                        \
  ::detdl::cuda::host::make_launcher(                                               \
      ::detdl::cuda::host::Launch(grid, block, shared_bytes, stream, #__VA_ARGS__), \
      [](auto&... detdl_launch_args) { __VA_ARGS__(detdl_launch_args...); })
#define DETDL_SHARED(type, name, dims) DETDL_HOST_SHARED(type, name, dims)
#endif
