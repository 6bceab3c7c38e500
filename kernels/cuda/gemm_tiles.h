// The tile kernel under cuda::sgemm (gemm.cu) and the implicit-GEMM convolutions (conv.cu):
// C (M, N) = opA (M, K) * opB (K, N) where the operands are read through loaders, so a
// convolution's im2col matrix is never written out: its tiles are gathered from the image
// as they are needed. Device code: include only from .cu files.
//
// Order (gemm.h): every output is one fmaf chain over the block's k range in k order from
// +0.0f; the k slices only stage data. Tiling: 128 x 128 outputs per block with 8 x 8 per
// thread, or 64 x 64 with 4 x 4; k slices of 8 in double-buffered shared memory, padded
// rows; one barrier per slice.
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/common/reduction.h"
#include "kernels/common/split_k_plan.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.h"

namespace detdl::cuda::tiles {

using i64 = std::int64_t;

constexpr int kThreads = 256;
constexpr int kBK = 8;   // k slice; kChunkProducts % kBK == 0, so no slice straddles a chunk
constexpr int kPad = 4;  // shared rows of R + 4 floats: the two k halves of a row's stores
                         // land 16 banks apart, and float4 reads stay 16-byte aligned
static_assert(kChunkProducts % kBK == 0, "k slices must not straddle a chunk boundary");

// Operands: op(X)[r][k] for r < rows, k < K. An operand has
//   bool along_k;  // the layout its loads prefer: a thread's E values are E consecutive k
//                  // of one row (along_k), or E consecutive rows of one k
//   template <int E> __device__ void load(i64 r, i64 k, i64 ke, float (&v)[E]) const;
//                  // the E values from (r, k) in that direction; 0.0f past `rows` or ke
//
// A dense row-major matrix: op(X)[r][k] = X[r * ld + k] (k_contiguous) or X[k * ld + r].
struct Dense {
  const float* X;
  i64 ld, rows;
  bool along_k;  // = k contiguous: loads follow the memory
  bool vec;      // X 16-byte aligned and ld % 4 == 0: four values are one float4
  template <int E>
  __device__ __forceinline__ void load(i64 r, i64 k, i64 ke, float (&v)[E]) const {
    if (along_k) {
      if constexpr (E == 4) {
        if (vec && r < rows && k + 4 <= ke) {
          const float4 q = *reinterpret_cast<const float4*>(X + r * ld + k);
          v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
          return;
        }
      }
      for (int e = 0; e < E; ++e) v[e] = (r < rows && k + e < ke) ? X[r * ld + k + e] : 0.0f;
    } else {
      if constexpr (E == 4) {
        if (vec && k < ke && r + 4 <= rows) {
          const float4 q = *reinterpret_cast<const float4*>(X + k * ld + r);
          v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
          return;
        }
      }
      for (int e = 0; e < E; ++e) v[e] = (k < ke && r + e < rows) ? X[k * ld + r + e] : 0.0f;
    }
  }
};

// One k slice of op(X) for rows [r0, r0 + R): E values per thread; consecutive threads take
// consecutive positions in the operand's preferred direction.
template <int R, int E, class Op>
__device__ __forceinline__ void load_slice(const Op& op, i64 r0, i64 k0, i64 ke, float (&v)[E]) {
  const int e0 = static_cast<int>(threadIdx.x) * E;
  if (op.along_k)
    op.template load<E>(r0 + e0 / kBK, k0 + e0 % kBK, ke, v);
  else
    op.template load<E>(r0 + e0 % R, k0 + e0 / R, ke, v);
}

// Xs[kk][r] = the values load_slice read.
template <int R, int E>
__device__ __forceinline__ void store_slice(bool along_k, const float (&v)[E],
                                            float (*Xs)[R + kPad]) {
  const int e0 = static_cast<int>(threadIdx.x) * E;
  if (along_k) {
    const int r = e0 / kBK, kk = e0 % kBK;
    for (int e = 0; e < E; ++e) Xs[kk + e][r] = v[e];
  } else {
    const int kk = e0 / R, r = e0 % R;
    for (int e = 0; e < E; ++e) Xs[kk][r + e] = v[e];
  }
}

// Outputs: out.put(z, m, n, v, count) takes v[0..count) for (m, n .. n + count - 1), the
// chains of slice z (count <= 4, n % 4 == 0 within the tile).
// A dense row-major destination: out + z * z_stride, row stride ld; stored or atomicAdd-ed.
template <bool kAtomic>
struct DenseOut {
  float* out;
  i64 ld, z_stride;
  bool vec;  // out 16-byte aligned, ld and z_stride multiples of 4
  __device__ __forceinline__ void put(i64 z, i64 m, i64 n, const float (&v)[4], int count) const {
    float* row = out + z * z_stride + m * ld + n;
    if (!kAtomic && vec && count == 4) {
      *reinterpret_cast<float4*>(row) = make_float4(v[0], v[1], v[2], v[3]);
      return;
    }
    for (int j = 0; j < count; ++j) {
      if (kAtomic)
        atomicAdd(row + j, v[j]);
      else
        row[j] = v[j];
    }
  }
};

// acc[i][j] = fmaf(opA[m0 + row i][k], opB[k][n0 + col j], acc[i][j]) for k in [kb, ke), in
// k order: the slices are staged through As / Bs (double-buffered, one barrier per slice;
// the next slice's loads are in flight while this one is multiplied). Padding terms never
// enter a chain (a fmaf(0, 0, -0.0f) would turn -0.0f into +0.0f). A thread's rows are
// ty * 4 + {0..3} + g * 4 * (BM / TM) for its TM / 4 groups g (and so for columns), so its
// float4 reads of a shared k row are aligned and a warp's are spread. Every thread of the
// block calls it (it has barriers); on return the shared buffers are free again.
template <int BM, int BN, int TM, int TN, class OpA, class OpB>
__device__ __forceinline__ void chain_range(const OpA& a, const OpB& b, i64 m0, i64 n0, i64 kb,
                                            i64 ke, float (*As)[kBK][BM + kPad],
                                            float (*Bs)[kBK][BN + kPad], float (&acc)[TM][TN]) {
  constexpr int kTX = BN / TN, kTY = BM / TM;                          // threads along n, m
  constexpr int kEA = BM * kBK / kThreads, kEB = BN * kBK / kThreads;  // loads per thread
  static_assert(kTX * kTY == kThreads && TM % 4 == 0 && TN % 4 == 0, "one tile per thread");
  static_assert(kEA >= 1 && kEB >= 1 && kBK % kEA == 0 && kBK % kEB == 0, "whole loads");
  const int tx = static_cast<int>(threadIdx.x) % kTX, ty = static_cast<int>(threadIdx.x) / kTX;
  float va[kEA], vb[kEB];
  if (kb < ke) {
    load_slice<BM, kEA>(a, m0, kb, ke, va);
    load_slice<BN, kEB>(b, n0, kb, ke, vb);
    store_slice<BM, kEA>(a.along_k, va, As[0]);
    store_slice<BN, kEB>(b.along_k, vb, Bs[0]);
  }
  __syncthreads();
  int buf = 0;
  for (i64 k0 = kb; k0 < ke; k0 += kBK) {
    const bool more = k0 + kBK < ke;
    if (more) {
      load_slice<BM, kEA>(a, m0, k0 + kBK, ke, va);
      load_slice<BN, kEB>(b, n0, k0 + kBK, ke, vb);
    }
    const int kmax = ke - k0 < kBK ? static_cast<int>(ke - k0) : kBK;
    for (int kk = 0; kk < kmax; ++kk) {
      float av[TM], bv[TN];
      for (int g = 0; g < TM / 4; ++g) {
        const float4 q = *reinterpret_cast<const float4*>(&As[buf][kk][g * 4 * kTY + ty * 4]);
        av[4 * g] = q.x, av[4 * g + 1] = q.y, av[4 * g + 2] = q.z, av[4 * g + 3] = q.w;
      }
      for (int g = 0; g < TN / 4; ++g) {
        const float4 q = *reinterpret_cast<const float4*>(&Bs[buf][kk][g * 4 * kTX + tx * 4]);
        bv[4 * g] = q.x, bv[4 * g + 1] = q.y, bv[4 * g + 2] = q.z, bv[4 * g + 3] = q.w;
      }
      for (int i = 0; i < TM; ++i)
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    if (more) {  // into the other buffer: the barrier below orders it before its readers
      store_slice<BM, kEA>(a.along_k, va, As[buf ^ 1]);
      store_slice<BN, kEB>(b.along_k, vb, Bs[buf ^ 1]);
    }
    __syncthreads();
    buf ^= 1;
  }
}

// The C row of a thread's output i and the C column of its output j (see chain_range).
template <int BM, int TM>
__device__ __forceinline__ i64 tile_row(int i) {
  return (i / 4) * 4 * (BM / TM) + static_cast<int>(threadIdx.x) / (kThreads / (BM / TM)) * 4 +
         i % 4;
}
template <int BN, int TN>
__device__ __forceinline__ i64 tile_col(int j) {
  return (j / 4) * 4 * (BN / TN) + static_cast<int>(threadIdx.x) % (BN / TN) * 4 + j % 4;
}

// Block (x, y, z) owns C tile (y, x) and k in [z * k_per_z, min(K, (z + 1) * k_per_z)):
// every output is one fmaf chain over that range (chain_range), handed to out.put.
template <int BM, int BN, int TM, int TN, class OpA, class OpB, class Out>
__global__ void __launch_bounds__(kThreads)
    gemm_tiles(i64 M, i64 N, i64 K, OpA a, OpB b, i64 k_per_z, Out out) {
  DETDL_SHARED(float, As, [2][kBK][BM + kPad]);  // As[b][kk][r] = opA[m0 + r][k0 + kk]
  DETDL_SHARED(float, Bs, [2][kBK][BN + kPad]);  // Bs[b][kk][c] = opB[k0 + kk][n0 + c]
  const i64 m0 = static_cast<i64>(blockIdx.y) * BM, n0 = static_cast<i64>(blockIdx.x) * BN;
  const i64 kb = static_cast<i64>(blockIdx.z) * k_per_z;
  const i64 ke = kb + k_per_z < K ? kb + k_per_z : K;
  float acc[TM][TN];
  for (int i = 0; i < TM; ++i)
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;
  chain_range<BM, BN, TM, TN>(a, b, m0, n0, kb, ke, As, Bs, acc);
  for (int i = 0; i < TM; ++i) {
    const i64 m = m0 + tile_row<BM, TM>(i);
    if (m >= M) continue;
    for (int g = 0; g < TN / 4; ++g) {
      const i64 n = n0 + tile_col<BN, TN>(4 * g);
      if (n >= N) continue;
      const float v[4] = {acc[i][4 * g], acc[i][4 * g + 1], acc[i][4 * g + 2], acc[i][4 * g + 3]};
      out.put(static_cast<i64>(blockIdx.z), m, n, v, N - n < 4 ? static_cast<int>(N - n) : 4);
    }
  }
}

inline i64 ceil_div(i64 a, i64 b) { return (a + b - 1) / b; }

// Blocks that keep every SM busy (2 per SM): below this many C tiles, `fast` splits K.
inline i64 target_blocks() {
  static const i64 value = [] {
    int device = 0, sms = 0;
    DETDL_CUDA_CHECK(cudaGetDevice(&device));
    DETDL_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    return static_cast<i64>(2) * (sms > 1 ? sms : 1);
  }();
  return value;
}

// `fast` split-K: the number of k pieces for an M x N product (1: one chain per output).
inline i64 fast_pieces(i64 M, i64 N, i64 K) {
  const i64 tiles = ceil_div(M, 64) * ceil_div(N, 64);
  if (tiles >= target_blocks() || K < 2 * kChunkProducts) return 1;
  const i64 wanted = ceil_div(target_blocks(), tiles);
  return wanted < ceil_div(K, 1024) ? wanted : ceil_div(K, 1024);
}

inline bool aligned16(const void* p, i64 ld) {
  return reinterpret_cast<std::uintptr_t>(p) % 16 == 0 && ld % 4 == 0;
}

// Whether the SM rule applies (true by default; tests switch it off to run the 128 x 128
// kernel on shapes too small to fill the SMs: set_gemm_fill_sms in gemm.h).
inline std::atomic<bool>& fill_sms_rule() {
  static std::atomic<bool> value{true};
  return value;
}

inline bool big_tiles(i64 M, i64 N, i64 z) {
  if (M < 96 || N < 96) return false;
  return !fill_sms_rule().load() || ceil_div(M, 128) * ceil_div(N, 128) * z >= target_blocks() / 2;
}

// Runs gemm_tiles over `z` k ranges of k_per_z: 128 x 128 tiles where C has at least 96
// rows and columns and those tiles (times z) give every SM a block, else 64 x 64 (skinny
// products: weight gradients, small layers, and a batch of 128 rows against a wide layer,
// whose 128 x 128 tiles would leave three quarters of an H200's 132 SMs idle: the device
// check of 2026-12-04 measured 128 x 4096 x 4096 at 0.17x cuBLAS). The tile size is a
// speed choice only: every output is the same fmaf chain in k order under either.
// Throws std::invalid_argument when the grid cannot hold the problem.
template <class OpA, class OpB, class Out>
void launch(i64 M, i64 N, i64 K, const OpA& a, const OpB& b, i64 z, i64 k_per_z, const Out& out,
            cudaStream_t stream) {
  const bool big = big_tiles(M, N, z);
  const i64 tile = big ? 128 : 64;
  const i64 tiles_m = ceil_div(M, tile), tiles_n = ceil_div(N, tile);
  if (tiles_m > 65535 || z > 65535 || tiles_n > 0x7fffffff)
    throw std::invalid_argument("cuda gemm tiles: problem too large for the grid (M " +
                                std::to_string(M) + ", N " + std::to_string(N) + ", k ranges " +
                                std::to_string(z) + ")");
  const dim3 grid(static_cast<unsigned>(tiles_n), static_cast<unsigned>(tiles_m),
                  static_cast<unsigned>(z));
  if (big) {
    DETDL_LAUNCH(grid, kThreads, 0, stream, gemm_tiles<128, 128, 8, 8, OpA, OpB, Out>)
    (M, N, K, a, b, k_per_z, out);
  } else {
    DETDL_LAUNCH(grid, kThreads, 0, stream, gemm_tiles<64, 64, 4, 4, OpA, OpB, Out>)
    (M, N, K, a, b, k_per_z, out);
  }
  DETDL_CUDA_CHECK_LAUNCH("gemm_tiles");
}

// C[m][n] = ChunkTree over z of partials[z][m][n] (chunk partials in chunk order), then
// finish(m, n, root) stores it.
template <class Finish>
__global__ void fold_chunks(i64 M, i64 N, i64 chunks, const float* partials, Finish finish) {
  const i64 t = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x;
  if (t >= M * N) return;
  ChunkTree tree;
  for (i64 z = 0; z < chunks; ++z) tree.push(partials[z * M * N + t]);
  finish(t / N, t % N, tree.root());
}

template <class Finish>
void fold(i64 M, i64 N, i64 chunks, const float* partials, const Finish& finish,
          cudaStream_t stream) {
  DETDL_LAUNCH(static_cast<unsigned>(ceil_div(M * N, 256)), 256, 0, stream, fold_chunks)
  (M, N, chunks, partials, finish);
  DETDL_CUDA_CHECK_LAUNCH("fold_chunks");
}

// The arrival order of an emulated plan's partials (kernels/common/split_k_plan.h), passed
// by value: at[j] is the j-th partial to land; given == false means 0, 1, 2, ... (per-tap
// convolutions, whose taps are more than kMaxSplit).
struct PartsOrder {
  std::int32_t at[kMaxSplit];
  bool given;
};

// The order of `count` partials: `order` (count <= kMaxSplit) or, when empty, index order.
inline PartsOrder parts_order(const std::vector<std::int32_t>& order, i64 count) {
  PartsOrder p{};
  p.given = !order.empty();
  if (p.given && (count > kMaxSplit || static_cast<i64>(order.size()) != count))
    throw std::invalid_argument("cuda combine: an order of " + std::to_string(order.size()) +
                                " for " + std::to_string(count) + " partials");
  for (std::size_t j = 0; p.given && j < order.size(); ++j) p.at[j] = order[j];
  return p;
}

// finish(m, n, value) with value the combine of parts[j][m][n] over j < count: arrival is
// +0.0f + parts[at[0]] + parts[at[1]] + ... (what atomics landing in that order compute);
// tree is ChunkTree over j in index order (a deterministic split-K reduction).
template <class Finish>
__global__ void combine_parts(i64 M, i64 N, i64 count, bool tree, PartsOrder order,
                              const float* parts /*(count, M, N)*/, Finish finish) {
  const i64 t = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x;
  if (t >= M * N) return;
  float r = 0.0f;
  if (tree) {
    ChunkTree fold;
    for (i64 j = 0; j < count; ++j) fold.push(parts[j * M * N + t]);
    r = fold.root();
  } else {
    for (i64 j = 0; j < count; ++j) r = r + parts[(order.given ? order.at[j] : j) * M * N + t];
  }
  finish(t / N, t % N, r);
}

template <class Finish>
void combine(i64 M, i64 N, i64 count, SplitCombine how, const PartsOrder& order, const float* parts,
             const Finish& finish, cudaStream_t stream) {
  DETDL_LAUNCH(static_cast<unsigned>(ceil_div(M * N, 256)), 256, 0, stream, combine_parts)
  (M, N, count, how == SplitCombine::tree, order, parts, finish);
  DETDL_CUDA_CHECK_LAUNCH("combine_parts");
}

// A dense destination with its float4 flag derived (stores only: atomics stay scalar).
template <bool kAtomic>
DenseOut<kAtomic> dense_out(float* out, i64 ld, i64 z_stride) {
  return {out, ld, z_stride, !kAtomic && aligned16(out, ld) && z_stride % 4 == 0};
}

// Rows (or positions) per panel of a chunked product whose partials take chunks * width
// floats per row: as many as the budget holds, a multiple of 128 (at least 128), at most
// `total`.
inline i64 panel_rows(i64 budget_floats, i64 chunks, i64 width, i64 total) {
  const i64 fit = budget_floats / (chunks * width) / 128 * 128;
  const i64 panel = fit > 128 ? fit : 128;
  return panel < total ? panel : total;
}

// finish for a dense destination: C[m * ldc + n] = root.
struct DenseFinish {
  float* C;
  i64 ldc;
  __device__ void operator()(i64 m, i64 n, float root) const { C[m * ldc + n] = root; }
};

}  // namespace detdl::cuda::tiles
