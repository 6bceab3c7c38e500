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
//     the threads arrive, so the bits may change from run to run; on a device a scalar sum
//     (one output) is CUB's DeviceReduce::Sum instead (host mode has no CUB).
//   `emulated`, the reduce family on (SumOrder with a drawn shape, kernels/common/
//     reduce_shape.h): the shape's order as real GPU code, bit for bit the CPU's
//     shaped_sum_of (kernels/cpu/emulated_reduce.h): sequential is one thread per output;
//     warp_tree_256 / _1024 one block of 256 / 1024 threads per output (grid-stride chains,
//     __shfl_down_sync trees 16..1 in each warp, the same tree over the warp partials);
//     block_atomic one 256-thread block per 256 terms, whose partials one thread per output
//     then adds in the drawn arrival order (what atomics landing in that order compute).
//
// Under nvcc (and in host mode, docs/gpu.md) this header also gives the device templates
// the other kernels build their value reductions from (value_reduce: out[o] = post(o,
// canonical sum over k of term(o, k))).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/level.h"
#include "kernels/common/reduce_shape.h"

namespace detdl::cuda {

// x: (n) device; partials: device scratch of ceil(n / kChunkValues) floats; out: device.
cudaError_t canonical_sum(const float* x, std::int64_t n, float* partials, float* out,
                          cudaStream_t stream);
// a, b: (n) device; partials: ceil(n / kChunkProducts) floats; out: device.
cudaError_t canonical_dot(const float* a, const float* b, std::int64_t n, float* partials,
                          float* out, cudaStream_t stream);

// out[j] = sum over rows i of x[i][j] (see above). Throws std::runtime_error on a CUDA error.
void column_sums(const SumOrder& order, std::int64_t rows, std::int64_t cols,
                 const float* x,  // (rows, cols) device
                 float* out,      // (cols) device
                 cudaStream_t stream);

// Sum of x (n) device; synchronises `stream` and returns the value on the host.
float sum_all(const SumOrder& order, std::int64_t n, const float* x, cudaStream_t stream);

}  // namespace detdl::cuda

#if defined(__CUDACC__) || defined(DETDL_CUDA_HOST)
#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/common/reduction.h"
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.h"

#if defined(__CUDACC__)  // CUB and Thrust exist for nvcc only; host mode keeps the atomics
#include <cub/device/device_reduce.cuh>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>
#endif

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

// Few outputs (a scalar sum; fewer than 32 columns): in value_chunk_partials neighbouring
// threads would read terms 1 KiB apart. Here each warp takes 32 consecutive chunks of output
// blockIdx.y and stages them through shared memory 32 terms at a time: for each of its 32
// chunks j the warp reads terms [start_j + 32 r, start_j + 32 r + 32) (lane i the i-th:
// coalesced), then lane j adds chunk j's 32 staged terms in order. Every chunk's chain is
// the same adds in the same order; terms past `length` are not read, +0.0f stands in for
// them (a chain from +0.0f never holds -0.0f, so p + 0.0f == p). Terms callable as
// term(o, k) only (plane walks keep value_chunk_partials).
template <class Term>
__global__ void __launch_bounds__(kReduceBlock)
    value_chunk_partials_staged(std::int64_t outs, std::int64_t length, std::int64_t chunks,
                                Term term, float* partials /*(chunks, outs)*/) {
  DETDL_SHARED(float, tile, [kReduceBlock / 32][32][33]);  // [warp][chunk][term], padded
  const int lane = static_cast<int>(threadIdx.x % 32), warp = static_cast<int>(threadIdx.x / 32);
  const std::int64_t o = blockIdx.y;
  const std::int64_t c0 = (static_cast<std::int64_t>(blockIdx.x) * (kReduceBlock / 32) + warp) * 32;
  float p = 0.0f;  // lane j's chain: chunk c0 + j
  for (int r = 0; r < kChunkValues / 32; ++r) {
    for (int j = 0; j < 32; ++j) {
      const std::int64_t k = (c0 + j) * kChunkValues + r * 32 + lane;
      tile[warp][j][lane] = c0 + j < chunks && k < length ? term(o, k) : 0.0f;
    }
    __syncwarp();
    for (int i = 0; i < 32; ++i) p = p + tile[warp][lane][i];
    __syncwarp();
  }
  if (c0 + lane < chunks) partials[(c0 + lane) * outs + o] = p;
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

// ---- The reduce family's emulated shapes (kernels/cpu/emulated_reduce.h has the orders) ----

// term(o, k) alone, for a Term that may be walked only (HasChunk without operator()).
template <class Term>
__device__ __forceinline__ float term_at(const Term& term, std::int64_t o, std::int64_t k) {
  if constexpr (HasChunk<Term>::value)
    return term.chunk(o, k).next();
  else
    return term(o, k);
}

// sequential: one thread per output, one chain from +0.0f in index order.
template <class Term, class Post>
__global__ void shaped_sequential(std::int64_t outs, std::int64_t length, Term term, Post post) {
  const std::int64_t o = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (o < outs) post(o, chunk_chain(term, o, 0, length));
}

// Shuffle-down tree within a warp: v = v + (lane + off's v) for off = lanes/2, ..., 1. Lane
// l < off reads a lane below 2 off, whose value the previous level made final, so lane 0
// ends with the CPU's shuffle_tree over the first `lanes` lanes; the other lanes' values
// are not used.
__device__ __forceinline__ float warp_shuffle_tree(float v, int lanes) {
  for (int off = lanes / 2; off >= 1; off /= 2) v = v + __shfl_down_sync(0xffffffffu, v, off);
  return v;
}

// Block b of B threads reduces segment b % segments of output b / segments: terms [s0, s0 +
// len) with s0 = (b % segments) * segment, as the CPU's block_reduce(B, len): thread t
// chains terms s0 + t, s0 + t + B, ... from +0.0f, a shuffle tree per warp, then the same
// tree over the B/32 warp partials. Thread 0 stores the segment's partial in out[b].
template <int B, class Term>
__global__ void __launch_bounds__(B)
    shaped_block_tree(std::int64_t length, std::int64_t segments, std::int64_t segment, Term term,
                      float* out /*(outs * segments)*/) {
  DETDL_SHARED(float, warp_partials, [B / 32]);
  const std::int64_t b = blockIdx.x, o = b / segments, s0 = (b % segments) * segment;
  const std::int64_t len = length - s0 < segment ? length - s0 : segment;
  const int t = static_cast<int>(threadIdx.x), lane = t % 32, warp = t / 32;
  float v = 0.0f;
  for (std::int64_t k = t; k < len; k += B) v = v + term_at(term, o, s0 + k);
  v = warp_shuffle_tree(v, 32);
  if (lane == 0) warp_partials[warp] = v;
  __syncthreads();
  if (warp != 0) return;
  float w = lane < B / 32 ? warp_partials[lane] : 0.0f;
  w = warp_shuffle_tree(w, B / 32);
  if (lane == 0) out[b] = w;
}

// One thread per output. order null (one segment): post(o, partial). Otherwise block_atomic's
// landing: +0.0f, then the segment partials added in arrival order (order: (segments) device).
template <class Post>
__global__ void shaped_finish(std::int64_t outs, std::int64_t segments, const float* partials,
                              const std::int64_t* order, Post post) {
  const std::int64_t o = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (o >= outs) return;
  if (!order) {
    post(o, partials[o]);
    return;
  }
  float acc = 0.0f;
  for (std::int64_t j = 0; j < segments; ++j) acc = acc + partials[o * segments + order[j]];
  post(o, acc);
}

// value_reduce in an emulated shape; `which` numbers the call's sums (block_atomic's arrival
// order is drawn per sum, as on the CPU).
template <class Term, class Post>
void shaped_reduce(const SumOrder& order, std::uint32_t which, std::int64_t outs,
                   std::int64_t length, Term term, Post post, cudaStream_t stream) {
  if (order.shape == ReduceShape::sequential) {
    DETDL_LAUNCH(grid_for(outs), kReduceBlock, 0, stream, shaped_sequential)
    (outs, length, term, post);
    DETDL_CUDA_CHECK_LAUNCH("shaped_sequential");
    return;
  }
  const bool atomic = order.shape == ReduceShape::block_atomic;
  const std::int64_t segments = atomic ? (length + kAtomicBlockTerms - 1) / kAtomicBlockTerms : 1;
  const std::int64_t segment = atomic ? kAtomicBlockTerms : length;
  if (outs * segments > 0x7fffffff)
    throw std::invalid_argument("value_reduce: " + std::to_string(outs * segments) +
                                " blocks exceed the grid");
  DeviceBuffer<float> partials(static_cast<std::size_t>(std::max<std::int64_t>(1, outs * segments)),
                               stream);
  if (segments > 0) {
    const unsigned grid = static_cast<unsigned>(outs * segments);
    if (order.shape == ReduceShape::warp_tree_1024) {
      DETDL_LAUNCH(grid, 1024, 0, stream, shaped_block_tree<1024>)
      (length, segments, segment, term, partials.get());
    } else {
      DETDL_LAUNCH(grid, 256, 0, stream, shaped_block_tree<256>)
      (length, segments, segment, term, partials.get());
    }
    DETDL_CUDA_CHECK_LAUNCH("shaped_block_tree");
  }
  // block_atomic's arrival order, drawn per sum (the other shapes read none).
  std::optional<DeviceBuffer<std::int64_t>> arrival;
  if (atomic) arrival.emplace(upload(order.arrival(length, which), stream));
  DETDL_LAUNCH(grid_for(outs), kReduceBlock, 0, stream, shaped_finish)
  (outs, segments, partials.get(), arrival ? arrival->get() : nullptr, post);
  DETDL_CUDA_CHECK_LAUNCH("shaped_finish");
}

#if defined(__CUDACC__)
// term(0, k) as a function of k, for CUB's input iterator.
template <class Term>
struct ScalarAt {
  Term term;
  __device__ float operator()(std::int64_t k) const {
    if constexpr (HasChunk<Term>::value) {
      auto walk = term.chunk(0, k);
      return walk.next();
    } else {
      return term(0, k);
    }
  }
};

// `fast` scalar sums on a device: CUB's DeviceReduce::Sum over term(0, k), the device-wide
// reduction the frameworks' sums use (CUB's own tree, not the canonical order; the same
// bits run to run on one GPU and launch shape). out: one float on the device.
template <class Term>
void cub_scalar_sum(std::int64_t length, const Term& term, float* out, cudaStream_t stream) {
  const auto in = thrust::make_transform_iterator(thrust::counting_iterator<std::int64_t>(0),
                                                  ScalarAt<Term>{term});
  std::size_t bytes = 0;
  DETDL_CUDA_CHECK(cub::DeviceReduce::Sum(nullptr, bytes, in, out, length, stream));
  DeviceBuffer<unsigned char> temp(std::max<std::size_t>(bytes, 1), stream);
  DETDL_CUDA_CHECK(cub::DeviceReduce::Sum(temp.get(), bytes, in, out, length, stream));
}
#endif

// Chunk counts above this are folded by value_tree_level, at most this many serially.
constexpr std::int64_t kSerialFoldChunks = 64;

// For o in [0, outs): post(o, S_o) with S_o the sum over k in [0, length) of term(o, k):
// the canonical sum of values (portable, repeatable), chunk partials added by atomics
// (fast), or the drawn shape (order.emulated(); `which` numbers the call's sums). term and
// post are device callables (functors or __device__ lambdas).
template <class Term, class Post>
void value_reduce(const SumOrder& order, std::int64_t outs, std::int64_t length, Term term,
                  Post post, cudaStream_t stream, std::uint32_t which = 0) {
  if (outs <= 0) return;
  if (order.emulated()) {
    shaped_reduce(order, which, outs, length, term, post, stream);
    return;
  }
  const Level level = order.level;
  const std::int64_t chunks = (length + kChunkValues - 1) / kChunkValues;
  if (level == Level::fast) {
    DeviceBuffer<float> acc(static_cast<std::size_t>(outs), stream);
#if defined(__CUDACC__)
    if (outs == 1 && length > 0) {  // a scalar sum (a loss, a penalty): CUB's, as PyTorch's
      cub_scalar_sum(length, term, acc.get(), stream);
      DETDL_LAUNCH(1, 1, 0, stream, value_post)(outs, acc.get(), post);
      DETDL_CUDA_CHECK_LAUNCH("value_post");
      return;
    }
#endif
    // Otherwise (and always in host mode, which has no CUB): chunk partials by atomics.
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
  bool chunks_done = false;
  if constexpr (!HasChunk<Term>::value) {
    if (chunks > 0 && outs < 32) {
      const std::int64_t blocks = (chunks + kReduceBlock - 1) / kReduceBlock;
      DETDL_LAUNCH(dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(outs)), kReduceBlock,
                   0, stream, value_chunk_partials_staged)
      (outs, length, chunks, term, partials.get());
      DETDL_CUDA_CHECK_LAUNCH("value_chunk_partials_staged");
      chunks_done = true;
    }
  }
  if (chunks > 0 && !chunks_done) {
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
float scalar_reduce(const SumOrder& order, std::int64_t n, Term term, cudaStream_t stream) {
  DeviceBuffer<float> out(1, stream);
  value_reduce(order, 1, n, ScalarTerm<Term>{term}, StoreSum{out.get()}, stream);
  float host = 0.0f;
  DETDL_CUDA_CHECK(
      cudaMemcpyAsync(&host, out.get(), sizeof(float), cudaMemcpyDeviceToHost, stream));
  DETDL_CUDA_CHECK(cudaStreamSynchronize(stream));
  return host;
}

}  // namespace detdl::cuda::detail
#endif
