// kernels/cuda/dev/sgemm.cu: the SGEMM's versions side by side (llm.c's dev/cuda habit).
// Each variant is validated against the CPU's canonical sgemm (kernels/cpu/gemm.h) bit for
// bit before it is timed; a variant that differs is reported and not timed.
//   1: the first draft (2026-11): 64 x 64 block tiles, 4 x 4 outputs per thread, k slices
//      of 16 through one shared buffer (scalar loads), the 4096-chunk partials pushed onto a
//      per-thread binary-counter stack in local memory, chunk groups over blockIdx.z.
//   2: kernels/cuda/gemm.cu (2026-12-02): 128 x 128 tiles, 8 x 8 per thread (64 x 64 and
//      4 x 4 for skinny C), k slices of 8, float4 loads, double-buffered padded shared
//      memory, one chunk per blockIdx.z and a separate fold.
//   cuBLAS FP32 and TF32 (vendor.h) are timed as the peers where cuBLAS exists.
//
//   dev_sgemm --validate        every variant on small shapes against the CPU (host mode:
//                               in CI, tests/gpu/CMakeLists.txt)
//   dev_sgemm [--reps N]        validate on the timing shapes, then time: 4096^3 and the
//                               network shapes (skinny M, long K); on a GPU machine
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kernels/common/level.h"
#include "kernels/common/random.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/dev/harness.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/vendor.h"

#include "kernels/common/reduction.h"
#include "kernels/cuda/allocator.h"

namespace detdl::cuda::dev::v1 {
namespace {

using i64 = std::int64_t;

constexpr int kBM = 64, kBN = 64, kBK = 16;  // C tile and k slice; kChunkProducts % kBK == 0
constexpr int kTM = 4, kTN = 4;              // outputs per thread: rows ty + 16 i, cols tx + 16 j
constexpr int kThreads = (kBM / kTM) * (kBN / kTN);
constexpr int kOut = kTM * kTN;
// Chunks per group are at most 2^15, so the binary-counter stack holds at most 16 entries.
constexpr int kMaxGroupChunksLog2 = 15;
constexpr int kStackDepth = kMaxGroupChunksLog2 + 1;
static_assert(kChunkProducts % kBK == 0, "k slices must not straddle a chunk boundary");

i64 ceil_div(i64 a, i64 b) { return (a + b - 1) / b; }

// kTree: chains of kChunkProducts pushed onto the stack (portable); else one chain over
// the block's whole k range (fast). kAtomic: atomicAdd into out instead of a store.
// Block z covers k in [z * k_per_group, min(K, (z + 1) * k_per_group)) and writes its
// result to out + z * out_z_stride (row stride ldo).
template <bool kTree, bool kAtomic>
__global__ void __launch_bounds__(kThreads)
    gemm_tiles(bool ta, bool tb, i64 M, i64 N, i64 K, const float* A, i64 lda, const float* B,
               i64 ldb, i64 k_per_group, float* out, i64 ldo, i64 out_z_stride) {
  DETDL_SHARED(float, As, [kBK][kBM]);  // As[kk][r] = opA[m0 + r][k0 + kk]
  DETDL_SHARED(float, Bs, [kBK][kBN]);  // Bs[kk][c] = opB[k0 + kk][n0 + c]
  const int tx = threadIdx.x % (kBN / kTN), ty = threadIdx.x / (kBN / kTN);
  const i64 m0 = static_cast<i64>(blockIdx.y) * kBM, n0 = static_cast<i64>(blockIdx.x) * kBN;
  const i64 kb = static_cast<i64>(blockIdx.z) * k_per_group;
  const i64 ke = kb + k_per_group < K ? kb + k_per_group : K;

  float acc[kOut];
  for (int r = 0; r < kOut; ++r) acc[r] = 0.0f;
  float stack[kTree ? kStackDepth : 1][kOut];
  int depth = 0;
  i64 pushed = 0;  // chunks pushed so far (the binary counter)

  for (i64 k0 = kb; k0 < ke; k0 += kBK) {
    // Stage the slice. Consecutive threads take consecutive addresses of each layout.
    for (int e = threadIdx.x; e < kBM * kBK; e += kThreads) {
      int r, kk;
      if (ta) {
        kk = e / kBM;
        r = e % kBM;
      } else {
        r = e / kBK;
        kk = e % kBK;
      }
      const i64 m = m0 + r, k = k0 + kk;
      As[kk][r] = (m < M && k < ke) ? (ta ? A[k * lda + m] : A[m * lda + k]) : 0.0f;
    }
    for (int e = threadIdx.x; e < kBN * kBK; e += kThreads) {
      int c, kk;
      if (tb) {
        c = e / kBK;
        kk = e % kBK;
      } else {
        kk = e / kBN;
        c = e % kBN;
      }
      const i64 n = n0 + c, k = k0 + kk;
      Bs[kk][c] = (n < N && k < ke) ? (tb ? B[n * ldb + k] : B[k * ldb + n]) : 0.0f;
    }
    __syncthreads();
    // Only real k terms enter a chain: a padding term fmaf(0, 0, -0.0f) would give +0.0f.
    const int kmax = ke - k0 < kBK ? static_cast<int>(ke - k0) : kBK;
    for (int kk = 0; kk < kmax; ++kk) {
      float a[kTM], b[kTN];
      for (int i = 0; i < kTM; ++i) a[i] = As[kk][ty + 16 * i];
      for (int j = 0; j < kTN; ++j) b[j] = Bs[kk][tx + 16 * j];
      for (int i = 0; i < kTM; ++i)
        for (int j = 0; j < kTN; ++j) acc[i * kTN + j] = fmaf(a[i], b[j], acc[i * kTN + j]);
    }
    __syncthreads();
    if (kTree && ((k0 + kBK - kb) % kChunkProducts == 0 || k0 + kBK >= ke)) {
      // Push the chunk partials: merge with the top while the counter's low bit is 1
      // (left + right, as ChunkTree::push), then start the next chunk from +0.0f.
      for (i64 t = pushed; t & 1; t >>= 1) {
        --depth;
        for (int r = 0; r < kOut; ++r) acc[r] = stack[depth][r] + acc[r];
      }
      for (int r = 0; r < kOut; ++r) {
        stack[depth][r] = acc[r];
        acc[r] = 0.0f;
      }
      ++depth;
      ++pushed;
    }
  }
  if (kTree) {
    // Fold the stack right to left (ChunkTree::root); an empty range gives +0.0f.
    for (int r = 0; r < kOut; ++r) {
      float root = 0.0f;
      if (depth > 0) {
        root = stack[depth - 1][r];
        for (int d = depth - 2; d >= 0; --d) root = stack[d][r] + root;
      }
      acc[r] = root;
    }
  }
  float* o = out + static_cast<i64>(blockIdx.z) * out_z_stride;
  for (int i = 0; i < kTM; ++i)
    for (int j = 0; j < kTN; ++j) {
      const i64 m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
      if (m < M && n < N) {
        if (kAtomic)
          atomicAdd(o + m * ldo + n, acc[i * kTN + j]);
        else
          o[m * ldo + n] = acc[i * kTN + j];
      }
    }
}

// C[m][n] = ChunkTree over z of partials[z][m][n] (group roots in group order).
__global__ void fold_groups(i64 M, i64 N, i64 groups, const float* partials, float* C, i64 ldc) {
  const i64 t = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x;
  if (t >= M * N) return;
  ChunkTree tree;
  for (i64 z = 0; z < groups; ++z) tree.push(partials[z * M * N + t]);
  C[(t / N) * ldc + t % N] = tree.root();
}

// Blocks that keep every SM busy: below this many C tiles the reduction is split.
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

}  // namespace

void sgemm_v1(Level level, bool trans_a, bool trans_b, i64 M, i64 N, i64 K, const float* A, i64 lda,
              const float* B, i64 ldb, float* C, i64 ldc, cudaStream_t stream) {
  check_args(M, N, K, trans_a, trans_b, lda, ldb, ldc);
  if (M == 0 || N == 0) return;
  const i64 tiles_m = ceil_div(M, kBM), tiles_n = ceil_div(N, kBN), tiles = tiles_m * tiles_n;
  if (tiles_m > 65535)
    throw std::invalid_argument("cuda::sgemm: M too large for the grid: " + std::to_string(M));
  const i64 wanted = tiles >= target_blocks() ? 1 : ceil_div(target_blocks(), tiles);
  const dim3 block(kThreads);

  if (level == Level::fast) {
    if (wanted == 1 || K < 2 * kChunkProducts) {  // one chain over all of K per output
      DETDL_LAUNCH(dim3(tiles_n, tiles_m, 1), block, 0, stream, gemm_tiles<false, false>)
      (trans_a, trans_b, M, N, K, A, lda, B, ldb, std::max<i64>(K, 1), C, ldc, 0);
      DETDL_CUDA_CHECK_LAUNCH("gemm_tiles<chain>");
      return;
    }
    // Split-K: pieces (multiples of the k slice, >= 1024) chained per block, then atomics.
    const i64 pieces = std::min<i64>(wanted, ceil_div(K, 1024));
    const i64 piece = ceil_div(ceil_div(K, pieces), kBK) * kBK;
    DETDL_CUDA_CHECK(cudaMemset2DAsync(C, ldc * sizeof(float), 0, N * sizeof(float), M, stream));
    DETDL_LAUNCH(dim3(tiles_n, tiles_m, ceil_div(K, piece)), block, 0, stream,
                 gemm_tiles<false, true>)
    (trans_a, trans_b, M, N, K, A, lda, B, ldb, piece, C, ldc, 0);
    DETDL_CUDA_CHECK_LAUNCH("gemm_tiles<split-k atomic>");
    return;
  }

  // portable / repeatable: groups of 2^g chunks (subtrees), at most 2^15 chunks per group.
  const i64 chunks = std::max<i64>(1, ceil_div(K, kChunkProducts));
  i64 group_chunks = 1;
  while (group_chunks * wanted < chunks) group_chunks *= 2;
  while (group_chunks < (i64{1} << kMaxGroupChunksLog2) && ceil_div(chunks, group_chunks) > 65535)
    group_chunks *= 2;
  if (group_chunks > (i64{1} << kMaxGroupChunksLog2) || ceil_div(chunks, group_chunks) > 65535)
    throw std::invalid_argument("cuda::sgemm: K too large: " + std::to_string(K));
  const i64 groups = ceil_div(chunks, group_chunks);
  const i64 k_per_group = group_chunks * kChunkProducts;
  if (groups == 1) {
    DETDL_LAUNCH(dim3(tiles_n, tiles_m, 1), block, 0, stream, gemm_tiles<true, false>)
    (trans_a, trans_b, M, N, K, A, lda, B, ldb, k_per_group, C, ldc, 0);
    DETDL_CUDA_CHECK_LAUNCH("gemm_tiles<tree>");
    return;
  }
  DeviceBuffer<float> partials(static_cast<std::size_t>(groups * M * N), stream);
  DETDL_LAUNCH(dim3(tiles_n, tiles_m, groups), block, 0, stream, gemm_tiles<true, false>)
  (trans_a, trans_b, M, N, K, A, lda, B, ldb, k_per_group, partials.get(), N, M * N);
  DETDL_CUDA_CHECK_LAUNCH("gemm_tiles<tree groups>");
  DETDL_LAUNCH(static_cast<unsigned>(ceil_div(M * N, 256)), 256, 0, stream, fold_groups)
  (M, N, groups, partials.get(), C, ldc);
  DETDL_CUDA_CHECK_LAUNCH("fold_groups");
}

}  // namespace detdl::cuda::dev::v1

namespace {

using detdl::Level;
using i64 = std::int64_t;

struct Shape {
  i64 M, N, K;
  bool ta, tb;
  const char* what;
};

std::vector<float> random_vec(i64 n, std::uint32_t sub) {
  return detdl::cuda::dev::random_vec(n, sub, 17);
}

using detdl::cuda::dev::DevBuf;

using Variant = std::function<void(const Shape&, const float*, const float*, float*)>;

int run(bool validate_only, int reps) {
  const std::vector<std::pair<std::string, Variant>> variants = {
      {"1 first draft",
       [](const Shape& s, const float* a, const float* b, float* c) {
         detdl::cuda::dev::v1::sgemm_v1(Level::portable, s.ta, s.tb, s.M, s.N, s.K, a,
                                        s.ta ? s.M : s.K, b, s.tb ? s.K : s.N, c, s.N, nullptr);
       }},
      {"2 gemm.cu",
       [](const Shape& s, const float* a, const float* b, float* c) {
         detdl::cuda::sgemm(Level::portable, s.ta, s.tb, s.M, s.N, s.K, a, s.ta ? s.M : s.K, b,
                            s.tb ? s.K : s.N, c, s.N, nullptr);
       }},
  };
  const std::vector<Shape> small = {
      {37, 53, 9000, false, false, "3 chunks"},  {200, 136, 5000, true, false, "big tiles"},
      {131, 97, 300, false, true, "edges"},      {5, 7, 20000, true, true, "tiny C, 5 chunks"},
      {64, 64, 4096, false, false, "one chunk"},
  };
  const std::vector<Shape> timed = {
      {4096, 4096, 4096, false, false, "square 4096^3"},
      {128, 4096, 4096, false, false, "skinny M (a batch of 128 rows)"},
      {64, 576, 131072, false, true, "weight gradient: 64 x 576, K = 128 x 32 x 32"},
      {16, 144, 131072, false, true, "weight gradient: 16 x 144, K = 128 x 32 x 32"},
  };
  int status = 0;
  for (const Shape& s : validate_only ? small : timed) {
    const std::vector<float> A = random_vec(s.M * s.K, 1), B = random_vec(s.K * s.N, 2);
    std::vector<float> ref(static_cast<std::size_t>(s.M * s.N));
    detdl::cpu::sgemm(Level::portable, s.ta, s.tb, s.M, s.N, s.K, A.data(), s.ta ? s.M : s.K,
                      B.data(), s.tb ? s.K : s.N, ref.data(), s.N);
    DevBuf a(A), b(B), c(std::vector<float>(ref.size()));
    std::printf("%lld x %lld x %lld (%s)\n", static_cast<long long>(s.M),
                static_cast<long long>(s.N), static_cast<long long>(s.K), s.what);
    const double flops = 2.0 * s.M * s.N * s.K;
    for (const auto& variant : variants) {
      const std::string& name = variant.first;
      const Variant& call = variant.second;  // (a structured binding cannot be captured in C++17)
      call(s, a.p, b.p, c.p);
      const std::vector<float> got = c.host();
      const bool same = std::memcmp(got.data(), ref.data(), got.size() * sizeof(float)) == 0;
      if (!same) status = 1;
      if (validate_only || !same) {
        std::printf("  %-16s %s\n", name.c_str(), same ? "== CPU" : "DIFFERS from the CPU");
        continue;
      }
      const double sec = detdl::cuda::dev::seconds_per_call(reps, [&] { call(s, a.p, b.p, c.p); });
      std::printf("  %-16s == CPU  %9.3f ms  %8.0f GFLOP/s\n", name.c_str(), sec * 1e3,
                  flops / sec * 1e-9);
    }
    if (validate_only) continue;
    for (bool tf32 : {false, true}) {
      try {
        const double sec = detdl::cuda::dev::seconds_per_call(reps, [&] {
          detdl::cuda::cublas_sgemm(tf32, s.ta, s.tb, s.M, s.N, s.K, a.p, s.ta ? s.M : s.K, b.p,
                                    s.tb ? s.K : s.N, c.p, s.N, nullptr);
        });
        std::printf("  %-16s         %9.3f ms  %8.0f GFLOP/s\n",
                    tf32 ? "cuBLAS TF32" : "cuBLAS FP32", sec * 1e3, flops / sec * 1e-9);
      } catch (const std::exception& e) {
        std::printf("  %-16s n/a (%s)\n", tf32 ? "cuBLAS TF32" : "cuBLAS FP32", e.what());
      }
    }
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  return detdl::cuda::dev::harness_main(argc, argv, "dev_sgemm", run);
}
