// CUDA GEMM with the CPU's semantics (kernels/cpu/gemm.h): row-major, lda/ldb/ldc, trans
// flags; C (M, N) = opA (M, K) * opB (K, N), overwritten (K == 0 gives +0.0f).
//
// `portable` and `repeatable` (the same code): C[m][n] is exactly the canonical dot over
// k = 0..K-1 (chunks of kChunkProducts = 4096, one fmaf chain per chunk in k order from
// +0.0f, balanced pairwise tree over the chunks), bit for bit the CPU's sgemm.
//   Tiling: a block owns a 64 x 64 tile of C, each thread 4 x 4 outputs; k is walked in
//   slices of 16 staged in shared memory, and each thread's 16 accumulators are fmaf
//   chains in k order (the slices only stage data, they never reorder a chain). At each
//   4096 boundary the 16 chunk partials are pushed onto a per-thread binary-counter stack
//   (ChunkTree's merges, so the same nodes as the level-by-level tree).
//   When the C tiles are too few to fill the GPU (weight gradients: small M x N, long K)
//   the chunks are cut into groups of 2^g consecutive chunks starting at multiples of 2^g,
//   one group per blockIdx.z. Such a group is a subtree of the canonical tree (the last,
//   shorter group is the same node with the same pairing), so each block writes its
//   subtree's root to scratch and a second kernel folds the group roots per element with
//   ChunkTree: the same root bit for bit, whatever the group size (which depends on the
//   number of SMs).
// `fast`: no chunk tree, one fmaf chain over all of K per output (equal to portable for
//   K <= 4096); when the C tiles are too few and K >= 8192, split-K: pieces of K on
//   separate blocks whose chains are atomicAdd-ed into the zeroed C in arrival order, so
//   the bits may change from run to run.
// Throws std::runtime_error on a CUDA error. Pointers are device pointers.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/level.h"

namespace detdl::cuda {

void sgemm(Level level, bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
           const float* A,  // (M, K) lda >= K, or (K, M) lda >= M when trans_a
           std::int64_t lda,
           const float* B,  // (K, N) ldb >= N, or (N, K) ldb >= K when trans_b
           std::int64_t ldb,
           float* C,  // (M, N) ldc >= N
           std::int64_t ldc, cudaStream_t stream);

}  // namespace detdl::cuda
