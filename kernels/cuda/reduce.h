// CUDA canonical reductions; see kernels/common/reduction.h for the order.
//
// canonical_sum / canonical_dot: one thread per chunk, partials folded by ChunkTree.
// column_sums / sum_all mirror kernels/cpu/reduce.h:
//   `portable`, `repeatable` (the same code): thread (column j, chunk c) sums its chunk of
//     256 rows in row order from +0.0f into partials[c][j] (the chain inside a chunk is
//     serial by the contract); the chunk partials of each column are then folded by the
//     canonical tree: with few chunks (<= 64) one thread per column with ChunkTree, with
//     more by warp-shuffle and block trees over aligned groups of 256 chunks, level after
//     level. Bit for bit the CPU's either way.
//   `fast`: the chunk partials are atomicAdd-ed into the zeroed output in whatever order
//     the threads arrive, so the bits may change from run to run.
//
// Under nvcc (and in host mode, docs/gpu.md) this header also gives the device templates
// the other kernels build their value reductions from (value_reduce: out[o] = post(o,
// canonical sum over k of term(o, k))).
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
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "kernels/common/reduction.h"
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.h"

namespace detdl::cuda::detail {

constexpr int kReduceBlock = 256;

inline unsigned grid_for(std::int64_t threads) {
  return static_cast<unsigned>((threads + kReduceBlock - 1) / kReduceBlock);
}

// Terms stored as planes: term k of output o at o * o_stride + (k / len) * seg_stride +
// k % len (batch norm's channel c over (n, hw); a convolution bias gradient). One division
// where a chunk starts, none per term.
struct PlaneWalk {
  std::int64_t index, off, len, jump;
  __device__ PlaneWalk(std::int64_t o, std::int64_t k0, std::int64_t o_stride, std::int64_t len_,
                       std::int64_t seg_stride)
      : index(o * o_stride + (k0 / len_) * seg_stride + k0 % len_),
        off(k0 % len_),
        len(len_),
        jump(seg_stride - len_) {}
  __device__ std::int64_t next() {
    const std::int64_t i = index++;
    if (++off == len) {
      off = 0;
      index += jump;
    }
    return i;
  }
};

// A Term is callable as term(o, k), or has term.chunk(o, k0) returning an object whose
// next() gives term(o, k0), term(o, k0 + 1), ... (walked that way when it has one).
template <class T, class = void>
struct HasChunk : std::false_type {};
template <class T>
struct HasChunk<T, std::void_t<decltype(std::declval<const T&>().chunk(0, 0))>> : std::true_type {};

// p = +0.0f, p = p + term(o, k) for k in [s, e), in order: the chunk's canonical chain.
template <class Term>
__device__ __forceinline__ float chunk_chain(const Term& term, std::int64_t o, std::int64_t s,
                                             std::int64_t e) {
  float p = 0.0f;
  if constexpr (HasChunk<Term>::value) {
    auto walk = term.chunk(o, s);
    for (std::int64_t k = s; k < e; ++k) p = p + walk.next();
  } else {
    for (std::int64_t k = s; k < e; ++k) p = p + term(o, k);
  }
  return p;
}

// Thread t = c * outs + o (o fastest, so a column reduction reads coalesced rows) computes
// chunk c of output o. The chain inside a chunk is serial by the contract
// (docs/determinism.md); the parallelism is over chunks and outputs, and the tree over the
// chunks (below).
template <class Term>
__global__ void value_chunk_partials(std::int64_t outs, std::int64_t length, std::int64_t chunks,
                                     Term term, float* partials /*(chunks, outs)*/) {
  const std::int64_t t = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (t >= outs * chunks) return;
  const std::int64_t o = t % outs, c = t / outs;
  const std::int64_t s = c * kChunkValues,
                     e = s + kChunkValues < length ? s + kChunkValues : length;
  partials[t] = chunk_chain(term, o, s, e);
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
  atomicAdd(acc + o, chunk_chain(term, o, s, e));
}

// Few chunks: one thread per output folds its chunk partials in chunk order with ChunkTree
// (neighbouring threads read neighbouring outputs).
template <class Post>
__global__ void value_fold(std::int64_t outs, std::int64_t chunks, const float* partials,
                           Post post) {
  const std::int64_t o = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (o >= outs) return;
  ChunkTree tree;
  for (std::int64_t c = 0; c < chunks; ++c) tree.push(partials[c * outs + o]);
  post(o, tree.root());
}

// Many chunks: block (o, g) folds partials [256 g, 256 g + 256) of output o into the root
// of that subtree of the canonical tree: a shuffle tree per warp (pairs (0, 1), (2, 3),
// ..., a node without a right partner passes up unchanged), then the same tree over the
// 8 warp roots. Aligned groups of 2^k leaves are nodes of the canonical tree, so folding
// the group roots the same way, level after level, gives its root bit for bit.
// last: one group left; post(o, root) instead of storing out[g][o].
template <class Post>
__global__ void __launch_bounds__(kReduceBlock)
    value_tree_level(std::int64_t outs, std::int64_t count, const float* in /*(count, outs)*/,
                     float* out /*(ceil(count / 256), outs)*/, bool last, Post post) {
  DETDL_SHARED(float, roots, [kReduceBlock / 32]);
  const std::int64_t o = blockIdx.x, g = blockIdx.y;
  const int t = static_cast<int>(threadIdx.x), lane = t % 32, warp = t / 32;
  const std::int64_t first = g * kReduceBlock;
  const int in_group =
      static_cast<int>(count - first < kReduceBlock ? count - first : kReduceBlock);
  float v = t < in_group ? in[(first + t) * outs + o] : 0.0f;
  const int past = in_group - warp * 32;  // leaves of this warp: clamp(past, 0, 32)
  const int in_warp = past < 0 ? 0 : (past > 32 ? 32 : past);
  for (int s = 1; s < 32; s *= 2) {
    const float right = __shfl_down_sync(0xffffffffu, v, s);
    if (lane % (2 * s) == 0 && lane + s < in_warp) v = v + right;
  }
  if (lane == 0) roots[warp] = v;
  __syncthreads();
  if (warp != 0) return;
  const int warps = (in_group + 31) / 32;
  float w = lane < warps ? roots[lane] : 0.0f;
  for (int s = 1; s < kReduceBlock / 32; s *= 2) {
    const float right = __shfl_down_sync(0xffffffffu, w, s);
    if (lane % (2 * s) == 0 && lane + s < warps) w = w + right;
  }
  if (lane != 0) return;
  if (last)
    post(o, w);
  else
    out[g * outs + o] = w;
}

template <class Post>
__global__ void value_post(std::int64_t outs, const float* acc, Post post) {
  const std::int64_t o = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (o < outs) post(o, acc[o]);
}

// Chunk counts above this are folded by value_tree_level, at most this many serially.
constexpr std::int64_t kSerialFoldChunks = 64;

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
  if (chunks <= kSerialFoldChunks || outs > 0x7fffffff) {
    DETDL_LAUNCH(grid_for(outs), kReduceBlock, 0, stream, value_fold)
    (outs, chunks, partials.get(), post);
    DETDL_CUDA_CHECK_LAUNCH("value_fold");
    return;
  }
  // Level by level: 256 partials become one subtree root, until one is left per output.
  std::int64_t count = chunks;
  DeviceBuffer<float> roots(
      static_cast<std::size_t>(outs * ((count + kReduceBlock - 1) / kReduceBlock)), stream);
  const float* in = partials.get();
  float* bufs[2] = {roots.get(), partials.get()};
  for (int level_index = 0;; ++level_index) {
    const std::int64_t groups = (count + kReduceBlock - 1) / kReduceBlock;
    if (groups > 65535)
      throw std::invalid_argument("value_reduce: too many chunks (" + std::to_string(count) + ")");
    float* out = bufs[level_index % 2];
    DETDL_LAUNCH(dim3(static_cast<unsigned>(outs), static_cast<unsigned>(groups)), kReduceBlock, 0,
                 stream, value_tree_level)
    (outs, count, in, out, groups == 1, post);
    DETDL_CUDA_CHECK_LAUNCH("value_tree_level");
    if (groups == 1) return;
    in = out;
    count = groups;
  }
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
