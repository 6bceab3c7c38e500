// GEMM, the engine's sum-of-products workhorse (linear layers, convolutions via im2col).
//
// Reduction order: C[m][n] is the canonical dot over k = 0..K-1 of opA[m][k] * opB[k][n]
// (chunks of kChunkProducts = 4096, fmaf in k order inside a chunk from +0.0f, pairwise
// tree over chunks). `portable` and `repeatable` give exactly that on any thread count and
// any transpose combination: threads own fixed regions of C, and each element is computed
// by one thread as the canonical dot (gemm_block.h: packed panels, 6x16 AVX2 micro-kernel,
// one fmaf chain per lane).
//
// `fast` does two things, and nothing else:
//   1. No chunk tree: each C element is ONE fmaf chain over k = 0..K-1 in order (so for
//      K <= kChunkProducts it equals portable bit for bit).
//   2. Split-K when C is small against K (2+ threads, K >= 2 * kChunkProducts and
//      K >= 4 * max(M, N), as in weight gradients): k is cut into pieces (whole multiples
//      of 256, at least kChunkProducts, about 4 per thread) handed out dynamically by
//      parallel_dynamic; each worker continues one fmaf chain in its own (M, N) partial
//      over the pieces it gets, in the order it gets them, and the partials are added
//      into C (c = c + p) in the order the workers finished their last piece. So with 2+
//      threads the bits may differ from run to run; with 1 thread `fast` is one chain.
#pragma once
#include <cstdint>

#include "kernels/common/level.h"

namespace detdl::cpu {

// C (M, N) = opA (M, K) * opB (K, N). All matrices row-major.
//   trans_a = false: A is (M, K) with leading dimension lda >= K; true: A is (K, M), lda >= M.
//   trans_b = false: B is (K, N) with leading dimension ldb >= N; true: B is (N, K), ldb >= K.
//   C (M, N) with ldc >= N is overwritten (K == 0 gives +0.0f everywhere).
void sgemm(Level level, bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
           const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float* C,
           std::int64_t ldc);

// R independent products of one shape, C[r] = opA[r] * opB[r] for r in [0, R) (arguments
// as sgemm's, one pointer per product), as one parallel computation: the thread pool takes
// tasks over (product, region of C), so R small products keep every thread busy where one
// of them alone would not (BUTTER's repetitions trained together, nets/butter_batched.h).
// Each element is the canonical dot, exactly as sgemm computes it: every C[r] is bit for bit
// sgemm's. `portable` and `repeatable` only (throws std::invalid_argument for `fast`, whose
// split-K belongs to a single product).
void sgemm_batched(Level level, bool trans_a, bool trans_b, std::int64_t R, std::int64_t M,
                   std::int64_t N, std::int64_t K, const float* const* A, std::int64_t lda,
                   const float* const* B, std::int64_t ldb, float* const* C, std::int64_t ldc);

}  // namespace detdl::cpu
