// CUDA canonical reductions (portable level). Each thread owns one chunk: it accumulates
// its chunk in index order from +0.0f, exactly as kernels/common/reduction.h does; the
// chunk partials are then folded by the same ChunkTree on one thread. The result is bit
// for bit the CPU's canonical_sum / canonical_dot.
#include <cstdint>

#include "kernels/common/reduction.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.h"

namespace detdl::cuda {

__global__ void chunk_partials_sum(const float* x, std::int64_t n, float* partials) {
  const std::int64_t c = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  const std::int64_t s = c * kChunkValues;
  if (s >= n) return;
  const std::int64_t e = (s + kChunkValues < n) ? s + kChunkValues : n;
  float p = 0.0f;
  for (std::int64_t k = s; k < e; ++k) p = p + x[k];
  partials[c] = p;
}

__global__ void chunk_partials_dot(const float* a, const float* b, std::int64_t n,
                                   float* partials) {
  const std::int64_t c = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  const std::int64_t s = c * kChunkProducts;
  if (s >= n) return;
  const std::int64_t e = (s + kChunkProducts < n) ? s + kChunkProducts : n;
  float p = 0.0f;
  for (std::int64_t k = s; k < e; ++k) p = fmaf(a[k], b[k], p);
  partials[c] = p;
}

__global__ void fold_partials(const float* partials, std::int64_t chunks, float* out) {
  ChunkTree tree;
  for (std::int64_t c = 0; c < chunks; ++c) tree.push(partials[c]);
  *out = tree.root();
}

cudaError_t canonical_sum(const float* x, std::int64_t n, float* partials, float* out,
                          cudaStream_t stream) {
  const std::int64_t chunks = (n + kChunkValues - 1) / kChunkValues;
  if (chunks > 0)
    DETDL_LAUNCH(static_cast<unsigned>((chunks + 127) / 128), 128, 0, stream, chunk_partials_sum)
  (x, n, partials);
  DETDL_LAUNCH(1, 1, 0, stream, fold_partials)(partials, chunks, out);
  return cudaGetLastError();
}

cudaError_t canonical_dot(const float* a, const float* b, std::int64_t n, float* partials,
                          float* out, cudaStream_t stream) {
  const std::int64_t chunks = (n + kChunkProducts - 1) / kChunkProducts;
  if (chunks > 0)
    DETDL_LAUNCH(static_cast<unsigned>((chunks + 127) / 128), 128, 0, stream, chunk_partials_dot)
  (a, b, n, partials);
  DETDL_LAUNCH(1, 1, 0, stream, fold_partials)(partials, chunks, out);
  return cudaGetLastError();
}

}  // namespace detdl::cuda

namespace detdl::cuda {
namespace {

// term(j, i) = x[i][j]: thread (j, chunk) reads row i's element j, neighbours read
// neighbouring columns (coalesced).
struct ColumnTerm {
  const float* x;
  std::int64_t cols;
  __device__ float operator()(std::int64_t j, std::int64_t i) const { return x[i * cols + j]; }
};

struct FlatTerm {
  const float* x;
  __device__ float operator()(std::int64_t k) const { return x[k]; }
};

}  // namespace

void column_sums(const SumOrder& order, std::int64_t rows, std::int64_t cols, const float* x,
                 float* out, cudaStream_t stream) {
  detail::value_reduce(order, cols, rows, ColumnTerm{x, cols}, detail::StoreSum{out}, stream);
}

float sum_all(const SumOrder& order, std::int64_t n, const float* x, cudaStream_t stream) {
  return detail::scalar_reduce(order, n, FlatTerm{x}, stream);
}

}  // namespace detdl::cuda
