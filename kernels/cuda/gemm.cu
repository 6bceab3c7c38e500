// The tiled GEMM of gemm.h: register tiles over double-buffered shared slices, one chunk of
// K per blockIdx.z in `portable`, one chain (or atomic split-K pieces) in `fast`.
// Earlier versions and the harness that compares them: kernels/cuda/dev/sgemm.cu.
#include "kernels/cuda/gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/common/reduction.h"
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.h"

namespace detdl::cuda {
namespace {

using i64 = std::int64_t;

constexpr int kThreads = 256;
constexpr int kBK = 8;   // k slice; kChunkProducts % kBK == 0, so no slice straddles a chunk
constexpr int kPad = 4;  // shared rows of R + 4 floats: the two k halves of a row's stores
                         // land 16 banks apart, and float4 reads stay 16-byte aligned
static_assert(kChunkProducts % kBK == 0, "k slices must not straddle a chunk boundary");

// Block tiles: 128 x 128 outputs with 8 x 8 per thread where C has at least 96 rows and
// columns, else 64 x 64 with 4 x 4 (skinny products: weight gradients, small layers).
// A thread's rows are ty * 4 + {0..3} + g * 4 * (BM / TM) for its TM / 4 groups g (and so
// for columns), so its float4 reads of a shared k row are aligned and a warp's are spread.

// One k slice of op(X) for rows [r0, r0 + R): E values per thread, zero outside the
// matrix (rows >= `rows`, k >= ke). k_fast: op(X)[r][k] = X[r * ld + k] (k contiguous),
// else X[k * ld + r] (r contiguous). Consecutive threads read consecutive addresses; with
// `vec` (X 16-byte aligned, ld % 4 == 0) a thread's four values are one float4.
template <int R, int E>
__device__ __forceinline__ void load_slice(const float* X, i64 ld, bool k_fast, bool vec, i64 rows,
                                           i64 r0, i64 k0, i64 ke, float (&v)[E]) {
  const int e0 = static_cast<int>(threadIdx.x) * E;
  if (k_fast) {
    const int r = e0 / kBK, kk = e0 % kBK;
    const i64 m = r0 + r, k = k0 + kk;
    if constexpr (E == 4) {
      if (vec && m < rows && k + 4 <= ke) {
        const float4 q = *reinterpret_cast<const float4*>(X + m * ld + k);
        v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
        return;
      }
    }
    for (int e = 0; e < E; ++e) v[e] = (m < rows && k + e < ke) ? X[m * ld + k + e] : 0.0f;
  } else {
    const int kk = e0 / R, r = e0 % R;
    const i64 k = k0 + kk, m = r0 + r;
    if constexpr (E == 4) {
      if (vec && k < ke && m + 4 <= rows) {
        const float4 q = *reinterpret_cast<const float4*>(X + k * ld + m);
        v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
        return;
      }
    }
    for (int e = 0; e < E; ++e) v[e] = (k < ke && m + e < rows) ? X[k * ld + m + e] : 0.0f;
  }
}

// Xs[kk][r] = the values load_slice read.
template <int R, int E>
__device__ __forceinline__ void store_slice(bool k_fast, const float (&v)[E],
                                            float (*Xs)[R + kPad]) {
  const int e0 = static_cast<int>(threadIdx.x) * E;
  if (k_fast) {
    const int r = e0 / kBK, kk = e0 % kBK;
    for (int e = 0; e < E; ++e) Xs[kk + e][r] = v[e];
  } else {
    const int kk = e0 / R, r = e0 % R;
    for (int e = 0; e < E; ++e) Xs[kk][r + e] = v[e];
  }
}

// Block (x, y, z) owns C tile (y, x) and k in [z * k_per_z, min(K, (z + 1) * k_per_z)):
// every output is one fmaf chain over that range in k order from +0.0f, written to
// out + z * out_z_stride (row stride ldo), or atomicAdd-ed there (kAtomic). Padding terms
// never enter a chain (a fmaf(0, 0, -0.0f) would turn -0.0f into +0.0f).
template <int BM, int BN, int TM, int TN, bool kAtomic>
__global__ void __launch_bounds__(kThreads)
    sgemm_tiles(bool ta, bool tb, i64 M, i64 N, i64 K, const float* A, i64 lda, const float* B,
                i64 ldb, bool vec_a, bool vec_b, i64 k_per_z, float* out, i64 ldo, i64 out_z_stride,
                bool vec_out) {
  constexpr int kTX = BN / TN, kTY = BM / TM;                          // threads along n, m
  constexpr int kEA = BM * kBK / kThreads, kEB = BN * kBK / kThreads;  // loads per thread
  static_assert(kTX * kTY == kThreads && TM % 4 == 0 && TN % 4 == 0, "one tile per thread");
  static_assert(kEA >= 1 && kEB >= 1 && kBK % kEA == 0 && kBK % kEB == 0, "whole loads");
  DETDL_SHARED(float, As, [2][kBK][BM + kPad]);  // As[b][kk][r] = opA[m0 + r][k0 + kk]
  DETDL_SHARED(float, Bs, [2][kBK][BN + kPad]);  // Bs[b][kk][c] = opB[k0 + kk][n0 + c]
  const int tx = static_cast<int>(threadIdx.x) % kTX, ty = static_cast<int>(threadIdx.x) / kTX;
  const i64 m0 = static_cast<i64>(blockIdx.y) * BM, n0 = static_cast<i64>(blockIdx.x) * BN;
  const i64 kb = static_cast<i64>(blockIdx.z) * k_per_z;
  const i64 ke = kb + k_per_z < K ? kb + k_per_z : K;
  const bool a_kfast = !ta, b_kfast = tb;

  float acc[TM][TN];
  for (int i = 0; i < TM; ++i)
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

  float va[kEA], vb[kEB];
  if (kb < ke) {
    load_slice<BM, kEA>(A, lda, a_kfast, vec_a, M, m0, kb, ke, va);
    load_slice<BN, kEB>(B, ldb, b_kfast, vec_b, N, n0, kb, ke, vb);
    store_slice<BM, kEA>(a_kfast, va, As[0]);
    store_slice<BN, kEB>(b_kfast, vb, Bs[0]);
  }
  __syncthreads();
  int buf = 0;
  for (i64 k0 = kb; k0 < ke; k0 += kBK) {
    const bool more = k0 + kBK < ke;
    if (more) {  // the next slice's loads are in flight while this one is multiplied
      load_slice<BM, kEA>(A, lda, a_kfast, vec_a, M, m0, k0 + kBK, ke, va);
      load_slice<BN, kEB>(B, ldb, b_kfast, vec_b, N, n0, k0 + kBK, ke, vb);
    }
    const int kmax = ke - k0 < kBK ? static_cast<int>(ke - k0) : kBK;
    for (int kk = 0; kk < kmax; ++kk) {
      float a[TM], b[TN];
      for (int g = 0; g < TM / 4; ++g) {
        const float4 q = *reinterpret_cast<const float4*>(&As[buf][kk][g * 4 * kTY + ty * 4]);
        a[4 * g] = q.x, a[4 * g + 1] = q.y, a[4 * g + 2] = q.z, a[4 * g + 3] = q.w;
      }
      for (int g = 0; g < TN / 4; ++g) {
        const float4 q = *reinterpret_cast<const float4*>(&Bs[buf][kk][g * 4 * kTX + tx * 4]);
        b[4 * g] = q.x, b[4 * g + 1] = q.y, b[4 * g + 2] = q.z, b[4 * g + 3] = q.w;
      }
      for (int i = 0; i < TM; ++i)
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    if (more) {  // into the other buffer: the barrier below orders it before its readers
      store_slice<BM, kEA>(a_kfast, va, As[buf ^ 1]);
      store_slice<BN, kEB>(b_kfast, vb, Bs[buf ^ 1]);
    }
    __syncthreads();
    buf ^= 1;
  }

  float* o = out + static_cast<i64>(blockIdx.z) * out_z_stride;
  for (int i = 0; i < TM; ++i) {
    const i64 m = m0 + (i / 4) * 4 * kTY + ty * 4 + i % 4;
    if (m >= M) continue;
    for (int g = 0; g < TN / 4; ++g) {
      const i64 n = n0 + g * 4 * kTX + tx * 4;
      float* row = o + m * ldo + n;
      if (!kAtomic && vec_out && n + 4 <= N) {
        *reinterpret_cast<float4*>(row) =
            make_float4(acc[i][4 * g], acc[i][4 * g + 1], acc[i][4 * g + 2], acc[i][4 * g + 3]);
        continue;
      }
      for (int j = 0; j < 4 && n + j < N; ++j) {
        if (kAtomic)
          atomicAdd(row + j, acc[i][4 * g + j]);
        else
          row[j] = acc[i][4 * g + j];
      }
    }
  }
}

// C[m][n] = ChunkTree over z of partials[z][m][n] (chunk partials in chunk order).
__global__ void fold_chunks(i64 M, i64 N, i64 chunks, const float* partials, float* C, i64 ldc) {
  const i64 t = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x;
  if (t >= M * N) return;
  ChunkTree tree;
  for (i64 z = 0; z < chunks; ++z) tree.push(partials[z * M * N + t]);
  C[(t / N) * ldc + t % N] = tree.root();
}

i64 ceil_div(i64 a, i64 b) { return (a + b - 1) / b; }

bool aligned16(const void* p, i64 ld) {
  return reinterpret_cast<std::uintptr_t>(p) % 16 == 0 && ld % 4 == 0;
}

// Blocks that keep every SM busy: below this many C tiles, `fast` splits K.
i64 target_blocks() {
  static const i64 value = [] {
    int device = 0, sms = 0;
    DETDL_CUDA_CHECK(cudaGetDevice(&device));
    DETDL_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    return static_cast<i64>(2) * std::max(sms, 1);
  }();
  return value;
}

void check_args(i64 M, i64 N, i64 K, bool ta, bool tb, i64 lda, i64 ldb, i64 ldc) {
  auto bad = [](const char* what, i64 v) {
    throw std::invalid_argument(std::string("cuda::sgemm: ") + what + ", got " + std::to_string(v));
  };
  if (M < 0) bad("M must be >= 0", M);
  if (N < 0) bad("N must be >= 0", N);
  if (K < 0) bad("K must be >= 0", K);
  if (lda < (ta ? M : K)) bad("lda too small", lda);
  if (ldb < (tb ? K : N)) bad("ldb too small", ldb);
  if (ldc < N) bad("ldc too small", ldc);
}

struct Problem {
  bool ta, tb;
  i64 M, N, K;
  const float* A;
  i64 lda;
  const float* B;
  i64 ldb;
};

// Runs sgemm_tiles with BM x BN tiles over `z` slices of k_per_z into out.
template <int BM, int BN, int TM, int TN, bool kAtomic>
void launch(const Problem& p, i64 z, i64 k_per_z, float* out, i64 ldo, i64 out_z_stride,
            cudaStream_t stream) {
  const i64 tiles_m = ceil_div(p.M, BM), tiles_n = ceil_div(p.N, BN);
  if (tiles_m > 65535 || z > 65535)
    throw std::invalid_argument("cuda::sgemm: M or K too large for the grid (M " +
                                std::to_string(p.M) + ", K " + std::to_string(p.K) + ")");
  const dim3 grid(static_cast<unsigned>(tiles_n), static_cast<unsigned>(tiles_m),
                  static_cast<unsigned>(z));
  const bool vec_out = !kAtomic && aligned16(out, ldo) && out_z_stride % 4 == 0;
  DETDL_LAUNCH(grid, kThreads, 0, stream, sgemm_tiles<BM, BN, TM, TN, kAtomic>)
  (p.ta, p.tb, p.M, p.N, p.K, p.A, p.lda, p.B, p.ldb, aligned16(p.A, p.lda), aligned16(p.B, p.ldb),
   k_per_z, out, ldo, out_z_stride, vec_out);
  DETDL_CUDA_CHECK_LAUNCH("sgemm_tiles");
}

template <bool kAtomic>
void launch_any(const Problem& p, i64 z, i64 k_per_z, float* out, i64 ldo, i64 out_z_stride,
                cudaStream_t stream) {
  if (p.M >= 96 && p.N >= 96)
    launch<128, 128, 8, 8, kAtomic>(p, z, k_per_z, out, ldo, out_z_stride, stream);
  else
    launch<64, 64, 4, 4, kAtomic>(p, z, k_per_z, out, ldo, out_z_stride, stream);
}

// Scratch for the chunk partials of one row panel is kept under this many floats (1 GiB
// by default; set_sgemm_partial_budget).
std::atomic<i64> g_partial_floats{i64{1} << 28};

}  // namespace

i64 set_sgemm_partial_budget(i64 floats) {
  if (floats < 1)
    throw std::invalid_argument("set_sgemm_partial_budget: floats must be >= 1, got " +
                                std::to_string(floats));
  return g_partial_floats.exchange(floats);
}

void sgemm(Level level, bool trans_a, bool trans_b, i64 M, i64 N, i64 K, const float* A, i64 lda,
           const float* B, i64 ldb, float* C, i64 ldc, cudaStream_t stream) {
  check_args(M, N, K, trans_a, trans_b, lda, ldb, ldc);
  if (M == 0 || N == 0) return;
  const Problem all{trans_a, trans_b, M, N, K, A, lda, B, ldb};

  if (level == Level::fast) {
    const i64 tiles = ceil_div(M, 64) * ceil_div(N, 64);
    const i64 wanted = tiles >= target_blocks() ? 1 : ceil_div(target_blocks(), tiles);
    if (wanted == 1 || K < 2 * kChunkProducts) {  // one chain over all of K per output
      launch_any<false>(all, 1, std::max<i64>(K, 1), C, ldc, 0, stream);
      return;
    }
    // Split-K: pieces (multiples of the k slice, >= 1024) chained per block, then atomics.
    const i64 pieces = std::min<i64>(wanted, ceil_div(K, 1024));
    const i64 piece = ceil_div(ceil_div(K, pieces), kBK) * kBK;
    DETDL_CUDA_CHECK(cudaMemset2DAsync(C, ldc * sizeof(float), 0, N * sizeof(float), M, stream));
    launch_any<true>(all, ceil_div(K, piece), piece, C, ldc, 0, stream);
    return;
  }

  // portable / repeatable: one chunk of K per blockIdx.z, the chunk partials folded with
  // ChunkTree; a single chunk (K <= 4096) is the result itself.
  const i64 chunks = std::max<i64>(1, ceil_div(K, kChunkProducts));
  if (chunks == 1) {
    launch_any<false>(all, 1, kChunkProducts, C, ldc, 0, stream);
    return;
  }
  // Row panels keep the partials' scratch bounded (a multiple of 128 rows, or all of M).
  i64 panel = std::max<i64>(1, g_partial_floats.load() / (chunks * N));
  panel = panel >= M ? M : std::max<i64>(128, panel / 128 * 128);
  DeviceBuffer<float> partials(static_cast<std::size_t>(chunks * std::min(panel, M) * N), stream);
  for (i64 r0 = 0; r0 < M; r0 += panel) {
    const i64 rows = std::min(panel, M - r0);
    Problem p = all;
    p.M = rows;
    p.A = trans_a ? A + r0 : A + r0 * lda;
    launch_any<false>(p, chunks, kChunkProducts, partials.get(), N, rows * N, stream);
    DETDL_LAUNCH(static_cast<unsigned>(ceil_div(rows * N, 256)), 256, 0, stream, fold_chunks)
    (rows, N, chunks, partials.get(), C + r0 * ldc, ldc);
    DETDL_CUDA_CHECK_LAUNCH("fold_chunks");
  }
}

}  // namespace detdl::cuda
