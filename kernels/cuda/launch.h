// Launch geometry shared by the element-wise CUDA kernels (one copy, not one per .cu file).
// Two shapes of launch:
//   one thread per item:  kernel<<<blocks_for(n), kBlock>>>, the kernel guards i < n;
//   grid-stride loop:     kernel<<<grid_for(n), kBlock>>> with DETDL_GRID_STRIDE(i, n) { ... }
//                         in the kernel; the grid is capped at 2^20 blocks so that any n fits
//                         the grid's x limit, and each thread walks i, i + grid, ...
// Neither changes a result: every item is computed by one thread from its own inputs.
#pragma once
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
