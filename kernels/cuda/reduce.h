// CUDA canonical reductions; see kernels/common/reduction.h for the order.
//
// canonical_sum / canonical_dot: one thread per chunk, partials folded by ChunkTree.
// column_sums / sum_all mirror kernels/cpu/reduce.h:
//   `portable`, `repeatable` (the same code): thread (column j, chunk c) sums its chunk of
//     256 rows in row order from +0.0f into partials[c][j]; a second kernel folds each
//     column's chunk partials in chunk order with ChunkTree. Bit for bit the CPU's.
//   `fast`: the chunk partials are atomicAdd-ed into the zeroed output in whatever order
//     the threads arrive, so the bits may change from run to run.
//
// Under nvcc (and in host mode, docs/gpu.md) this header also gives the device templates the other kernels build their
// value reductions from (value_reduce: out[o] = post(o, canonical sum over k of
// term(o, k))).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/level.h"

namespace detdl::cuda {

// x: (n) device; partials: device scratch of ceil(n / kChunkValues) floats; out: device.
cudaError_t canonical_sum(const float* x, std::int64_t n, float* partials, float* out,
                          cudaStream_t stream);
// a, b: (n) device; partials: ceil(n / kChunkProducts) floats; out: device.
cudaError_t canonical_dot(const float* a, const float* b, std::int64_t n, float* partials,
                          float* out, cudaStream_t stream);

// out[j] = sum over rows i of x[i][j] (see above). Throws std::runtime_error on a CUDA error.
void column_sums(Level level, std::int64_t rows, std::int64_t cols,
                 const float* x,  // (rows, cols) device
                 float* out,      // (cols) device
                 cudaStream_t stream);

// Sum of x (n) device; synchronises `stream` and returns the value on the host.
float sum_all(Level level, std::int64_t n, const float* x, cudaStream_t stream);

}  // namespace detdl::cuda

#if defined(__CUDACC__) || defined(DETDL_CUDA_HOST)
#include <algorithm>

#include "kernels/common/reduction.h"
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.h"

namespace detdl::cuda::detail {

constexpr int kReduceBlock = 256;

inline unsigned grid_for(std::int64_t threads) {
  return static_cast<unsigned>((threads + kReduceBlock - 1) / kReduceBlock);
}

// Thread t = c * outs + o (o fastest, so a column reduction reads coalesced rows) sums
// chunk c of output o: p = +0.0f, p = p + term(o, k) for k in the chunk, in order.
template <class Term>
__global__ void value_chunk_partials(std::int64_t outs, std::int64_t length, std::int64_t chunks,
                                     Term term, float* partials /*(chunks, outs)*/) {
  const std::int64_t t = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (t >= outs * chunks) return;
  const std::int64_t o = t % outs, c = t / outs;
  const std::int64_t s = c * kChunkValues,
                     e = s + kChunkValues < length ? s + kChunkValues : length;
  float p = 0.0f;
  for (std::int64_t k = s; k < e; ++k) p = p + term(o, k);
  partials[t] = p;
}

// `fast`: as value_chunk_partials, but each chunk partial is atomicAdd-ed into acc[o].
template <class Term>
__global__ void value_chunk_atomic(std::int64_t outs, std::int64_t length, std::int64_t chunks,
                                   Term term, float* acc /*(outs), zeroed*/) {
  const std::int64_t t = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (t >= outs * chunks) return;
  const std::int64_t o = t % outs, c = t / outs;
  const std::int64_t s = c * kChunkValues,
                     e = s + kChunkValues < length ? s + kChunkValues : length;
  float p = 0.0f;
  for (std::int64_t k = s; k < e; ++k) p = p + term(o, k);
  atomicAdd(acc + o, p);
}

// out of each output: post(o, root of the ChunkTree over its chunk partials, in chunk order).
template <class Post>
__global__ void value_fold(std::int64_t outs, std::int64_t chunks, const float* partials,
                           Post post) {
  const std::int64_t o = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (o >= outs) return;
  ChunkTree tree;
  for (std::int64_t c = 0; c < chunks; ++c) tree.push(partials[c * outs + o]);
  post(o, tree.root());
}

template <class Post>
__global__ void value_post(std::int64_t outs, const float* acc, Post post) {
  const std::int64_t o = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (o < outs) post(o, acc[o]);
}

// For o in [0, outs): post(o, S_o) with S_o the sum over k in [0, length) of term(o, k):
// the canonical sum of values (portable, repeatable) or chunk partials added by atomics
// (fast). term and post are device callables (functors or __device__ lambdas).
template <class Term, class Post>
void value_reduce(Level level, std::int64_t outs, std::int64_t length, Term term, Post post,
                  cudaStream_t stream) {
  if (outs <= 0) return;
  const std::int64_t chunks = (length + kChunkValues - 1) / kChunkValues;
  if (level == Level::fast) {
    DeviceBuffer<float> acc(static_cast<std::size_t>(outs), stream);
    DETDL_CUDA_CHECK(
        cudaMemsetAsync(acc.get(), 0, static_cast<std::size_t>(outs) * sizeof(float), stream));
    if (chunks > 0) {
      DETDL_LAUNCH(grid_for(outs * chunks), kReduceBlock, 0, stream, value_chunk_atomic)
      (outs, length, chunks, term, acc.get());
      DETDL_CUDA_CHECK_LAUNCH("value_chunk_atomic");
    }
    DETDL_LAUNCH(grid_for(outs), kReduceBlock, 0, stream, value_post)(outs, acc.get(), post);
    DETDL_CUDA_CHECK_LAUNCH("value_post");
    return;
  }
  DeviceBuffer<float> partials(static_cast<std::size_t>(std::max<std::int64_t>(1, outs * chunks)),
                               stream);
  if (chunks > 0) {
    DETDL_LAUNCH(grid_for(outs * chunks), kReduceBlock, 0, stream, value_chunk_partials)
    (outs, length, chunks, term, partials.get());
    DETDL_CUDA_CHECK_LAUNCH("value_chunk_partials");
  }
  DETDL_LAUNCH(grid_for(outs), kReduceBlock, 0, stream, value_fold)
  (outs, chunks, partials.get(), post);
  DETDL_CUDA_CHECK_LAUNCH("value_fold");
}

// post that stores the sum: out[o] = S_o.
struct StoreSum {
  float* out;
  __device__ void operator()(std::int64_t o, float s) const { out[o] = s; }
};

// term(o, k) = f(k): a one-output reduction over a callable of k alone.
template <class F>
struct ScalarTerm {
  F f;
  __device__ float operator()(std::int64_t, std::int64_t k) const { return f(k); }
};

// A scalar sum of term(k), k in [0, n), copied back to the host (synchronises `stream`).
template <class Term>
float scalar_reduce(Level level, std::int64_t n, Term term, cudaStream_t stream) {
  DeviceBuffer<float> out(1, stream);
  value_reduce(level, 1, n, ScalarTerm<Term>{term}, StoreSum{out.get()}, stream);
  float host = 0.0f;
  DETDL_CUDA_CHECK(
      cudaMemcpyAsync(&host, out.get(), sizeof(float), cudaMemcpyDeviceToHost, stream));
  DETDL_CUDA_CHECK(cudaStreamSynchronize(stream));
  return host;
}

}  // namespace detdl::cuda::detail
#endif
