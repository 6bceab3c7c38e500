// GEMM, the engine's sum-of-products workhorse (linear layers, convolutions via im2col).
//
// Reduction order: C[m][n] is the canonical dot over k = 0..K-1 of opA[m][k] * opB[k][n]
// (chunks of kChunkProducts = 4096, fmaf in k order inside a chunk from +0.0f, pairwise
// tree over chunks). `portable` and `repeatable` give exactly that on any thread count;
// `fast` may split K across threads and combine partials in completion order.
#pragma once
#include <cstdint>

#include "kernels/common/level.h"

namespace detdl::cpu {

// C (M, N) = opA (M, K) * opB (K, N). All matrices row-major.
//   trans_a = false: A is (M, K) with leading dimension lda >= K; true: A is (K, M), lda >= M.
//   trans_b = false: B is (K, N) with leading dimension ldb >= N; true: B is (N, K), ldb >= K.
//   C (M, N) with ldc >= N is overwritten (K == 0 gives +0.0f everywhere).
void sgemm(Level level, bool trans_a, bool trans_b, std::int64_t M, std::int64_t N,
           std::int64_t K, const float* A, std::int64_t lda, const float* B, std::int64_t ldb,
           float* C, std::int64_t ldc);

}  // namespace detdl::cpu
