// CUDA GEMM with the CPU's semantics (kernels/cpu/gemm.h): row-major, lda/ldb/ldc, trans
// flags; C (M, N) = opA (M, K) * opB (K, N), overwritten (K == 0 gives +0.0f).
//
// `portable` and `repeatable` (the same code): C[m][n] is exactly the canonical dot over
// k = 0..K-1 (chunks of kChunkProducts = 4096, one fmaf chain per chunk in k order from
// +0.0f, balanced pairwise tree over the chunks), bit for bit the CPU's sgemm.
//   Tiling: a block owns a 128 x 128 tile of C with 8 x 8 outputs per thread (64 x 64 and
//   4 x 4 for C with fewer than 96 rows or columns); k is walked in slices of 8, loaded as
//   float4 where the layout allows, staged in double-buffered shared memory (one barrier
//   per slice; the next slice's loads are in flight during the current one's products).
//   Each thread's accumulators are fmaf chains in k order: the slices only stage data,
//   they never reorder a chain. The 4096 boundaries: K <= 4096 is one chunk, written
//   directly; otherwise blockIdx.z runs chunk z (k in [4096 z, 4096 (z + 1))), its chains
//   written to scratch, and a second kernel folds each element's chunk partials with
//   ChunkTree in chunk order (row panels keep the scratch under 1 GiB). No per-thread
//   stack, and long-K products (weight gradients) get one block per chunk and C tile.
// `fast`: no chunk tree, one fmaf chain over all of K per output (equal to portable for
//   K <= 4096); when the C tiles are too few and K >= 8192, split-K: pieces of K on
//   separate blocks whose chains are atomicAdd-ed into the zeroed C in arrival order, so
//   the bits may change from run to run.
// `emulated` with the matmul family on (kernels/common/split_k_plan.h): the drawn split-K
//   plan, bit for bit the CPU's emulated_sgemm: each slice of k one fmaf chain from +0.0f
//   (one tile launch per slice into scratch of slices * M * N floats), then one thread per
//   element combines the slices in arrival order from +0.0f or by the pairwise ChunkTree.
// Throws std::runtime_error on a CUDA error. Pointers are device pointers.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common/level.h"
#include "kernels/common/split_k_plan.h"

namespace detdl::cuda {

void sgemm(Level level, bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
           const float* A,  // (M, K) lda >= K, or (K, M) lda >= M when trans_a
           std::int64_t lda,
           const float* B,  // (K, N) ldb >= N, or (N, K) ldb >= K when trans_b
           std::int64_t ldb,
           float* C,  // (M, N) ldc >= N
           std::int64_t ldc, cudaStream_t stream);

// The same product in the plan's order (plan.cuts.back() == K, at most kMaxSplit slices).
void sgemm(const EmulatedGemmPlan& plan, bool trans_a, bool trans_b, std::int64_t M, std::int64_t N,
           std::int64_t K,
           const float* A,  // (M, K) lda >= K, or (K, M) lda >= M when trans_a
           std::int64_t lda,
           const float* B,  // (K, N) ldb >= N, or (N, K) ldb >= K when trans_b
           std::int64_t ldb,
           float* C,  // (M, N) ldc >= N
           std::int64_t ldc, cudaStream_t stream);

// The most floats of chunk-partial scratch one `portable` call uses (default 2^28, 1 GiB);
// longer products run in panels of 128-row multiples. Returns the previous value. For
// tests (a small budget forces the panels).
std::int64_t set_sgemm_partial_budget(std::int64_t floats);

// The tile rule of the GEMM tiles (sgemm and the implicit-GEMM convolutions): with `fill`
// (the default) 128 x 128 tiles only where they give every SM a block, else 64 x 64; without,
// 128 x 128 wherever C has 96 rows and columns. A speed choice only (the bits are the same
// either way); tests switch it off to run both kernels on small shapes. Returns the old value.
bool set_gemm_fill_sms(bool fill);

}  // namespace detdl::cuda
