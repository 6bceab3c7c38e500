// The GEMM of gemm.h on the tile kernel of gemm_tiles.h: one chunk of K per blockIdx.z in
// `portable`, one chain (or atomic split-K pieces) in `fast`.
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
#include "kernels/cuda/gemm_tiles.h"

namespace detdl::cuda {
namespace {

using i64 = std::int64_t;
using tiles::aligned16;
using tiles::ceil_div;

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

bool set_gemm_fill_sms(bool fill) { return tiles::fill_sms_rule().exchange(fill); }

void sgemm(Level level, bool trans_a, bool trans_b, i64 M, i64 N, i64 K, const float* A, i64 lda,
           const float* B, i64 ldb, float* C, i64 ldc, cudaStream_t stream) {
  check_args(M, N, K, trans_a, trans_b, lda, ldb, ldc);
  if (M == 0 || N == 0) return;
  // op(A)[m][k]: A[m * lda + k] (k contiguous) or A[k * lda + m]; op(B)[k][n] read as
  // rows n: B[n * ldb + k] (k contiguous) or B[k * ldb + n].
  const tiles::Dense a{A, lda, M, !trans_a, aligned16(A, lda)};
  const tiles::Dense b{B, ldb, N, trans_b, aligned16(B, ldb)};

  if (level == Level::fast) {
    const i64 pieces = tiles::fast_pieces(M, N, K);
    if (pieces == 1) {  // one chain over all of K per output
      tiles::launch(M, N, K, a, b, 1, std::max<i64>(K, 1), tiles::dense_out<false>(C, ldc, 0),
                    stream);
      return;
    }
    // Split-K: pieces (multiples of the k slice, >= 1024) chained per block, then atomics.
    const i64 piece = ceil_div(ceil_div(K, pieces), tiles::kBK) * tiles::kBK;
    DETDL_CUDA_CHECK(cudaMemset2DAsync(C, ldc * sizeof(float), 0, N * sizeof(float), M, stream));
    tiles::launch(M, N, K, a, b, ceil_div(K, piece), piece, tiles::dense_out<true>(C, ldc, 0),
                  stream);
    return;
  }

  // portable / repeatable: one chunk of K per blockIdx.z, the chunk partials folded with
  // ChunkTree; a single chunk (K <= 4096) is the result itself.
  const i64 chunks = std::max<i64>(1, ceil_div(K, kChunkProducts));
  if (chunks == 1) {
    tiles::launch(M, N, K, a, b, 1, kChunkProducts, tiles::dense_out<false>(C, ldc, 0), stream);
    return;
  }
  // Row panels keep the partials' scratch bounded (a multiple of 128 rows, or all of M).
  const i64 panel = tiles::panel_rows(g_partial_floats.load(), chunks, N, M);
  DeviceBuffer<float> partials(static_cast<std::size_t>(chunks * panel * N), stream);
  for (i64 r0 = 0; r0 < M; r0 += panel) {
    const i64 rows = std::min(panel, M - r0);
    tiles::Dense ap = a;
    ap.X = trans_a ? A + r0 : A + r0 * lda;
    ap.rows = rows;
    ap.vec = aligned16(ap.X, lda);
    tiles::launch(rows, N, K, ap, b, chunks, kChunkProducts,
                  tiles::dense_out<false>(partials.get(), N, rows * N), stream);
    tiles::fold(rows, N, chunks, partials.get(), tiles::DenseFinish{C + r0 * ldc, ldc}, stream);
  }
}

void sgemm(const EmulatedGemmPlan& plan, bool trans_a, bool trans_b, i64 M, i64 N, i64 K,
           const float* A, i64 lda, const float* B, i64 ldb, float* C, i64 ldc,
           cudaStream_t stream) {
  check_args(M, N, K, trans_a, trans_b, lda, ldb, ldc);
  const i64 S = plan.slices();
  if (S < 1 || plan.cuts.front() != 0 || plan.cuts.back() != K)
    throw std::invalid_argument("cuda::sgemm: the plan's " + std::to_string(S) +
                                " slices do not cover K = " + std::to_string(K));
  if (M == 0 || N == 0) return;
  // Slice [k0, k1) of op(A) and op(B): the operands moved to column k0.
  auto slice = [&](i64 j, float* out, i64 ld) {
    const i64 k0 = plan.cuts[j], len = plan.cuts[j + 1] - k0;
    const float* As = trans_a ? A + k0 * lda : A + k0;
    const float* Bs = trans_b ? B + k0 : B + k0 * ldb;
    const tiles::Dense a{As, lda, M, !trans_a, aligned16(As, lda)};
    const tiles::Dense b{Bs, ldb, N, trans_b, aligned16(Bs, ldb)};
    tiles::launch(M, N, len, a, b, 1, std::max<i64>(len, 1), tiles::dense_out<false>(out, ld, 0),
                  stream);
  };
  if (S == 1) {
    slice(0, C, ldc);
    return;
  }
  DeviceBuffer<float> parts(static_cast<std::size_t>(S * M * N), stream);
  for (i64 j = 0; j < S; ++j) slice(j, parts.get() + j * M * N, N);
  tiles::combine(M, N, S, plan.combine, tiles::parts_order(plan.order, S), parts.get(),
                 tiles::DenseFinish{C, ldc}, stream);
}

}  // namespace detdl::cuda
