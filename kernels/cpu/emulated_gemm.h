// GEMM at the `emulated` level (ImplFamily::matmul, kernels/common/impl_choice.h): the same
// product C = opA * opB as sgemm (gemm.h), computed the way a split-K GEMM would.
//
// The catalogue (each alternative is a real GEMM's arithmetic, and within the float64 bound
// gamma_K * sum_k |a_k b_k| that the canonical order meets; tests/kernels/test_emulated_gemm.cpp):
//   split s in {1, 2, 3, 4, 8, 16} (capped at K, so every slice has >= 1 term): k is cut
//     into s contiguous slices [K*j/s, K*(j+1)/s); each slice is ONE fmaf chain in k order
//     from +0.0f (a split-K kernel's CTA, or one thread block's k-range: cuBLAS / CUTLASS
//     split-K and stream-K, whose factor depends on the GPU and the library version).
//     s = 1 is one chain over all of k (a non-split GEMM; for K <= 4096 the canonical bits).
//   combine, for s >= 2:
//     arrival: the slices are added into a zeroed C one after another, in an order redrawn
//       every step (split-K with atomicAdd: the order in which the CTAs finish);
//     tree: the slices are added pairwise, (0+1), (2+3), ..., an odd last one moving up
//       (a deterministic split-K reduction kernel, e.g. CUTLASS's "parallel" split-K).
//
// Every output element is computed by one task in this fixed order, so the bits never
// depend on the thread count.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/common/impl_choice.h"
#include "kernels/common/split_k_plan.h"

namespace detdl::cpu {

// The plans and their draw live in kernels/common/split_k_plan.h (the CUDA GEMM runs the
// same ones); named here too, as the CPU's callers know them.
using detdl::emulated_gemm_plan;
using detdl::EmulatedGemmPlan;
using detdl::kSplitFactorCount;
using detdl::kSplitFactors;
using detdl::split_k_plan;
using detdl::SplitCombine;

// C (M, N) = opA (M, K) * opB (K, N) in the plan's order; arguments as sgemm's (gemm.h).
// plan.cuts.back() must equal K.
void emulated_sgemm(const EmulatedGemmPlan& plan, bool trans_a, bool trans_b, std::int64_t M,
                    std::int64_t N, std::int64_t K, const float* A, std::int64_t lda,
                    const float* B, std::int64_t ldb, float* C, std::int64_t ldc);

// One fmaf chain per element over k = 0..K-1, continued from C (accumulate) or from +0.0f:
// lets a caller cut one long chain into pieces (conv weight-gradient groups) exactly.
void chain_sgemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
                 const float* A, std::int64_t lda, const float* B, std::int64_t ldb,
                 bool accumulate, float* C, std::int64_t ldc);

// out[i] = the combine of parts[j][i] over j in [0, count): arrival is +0.0f + parts[order[0]]
// + parts[order[1]] + ... ; tree is the pairwise tree over j. tree may overwrite the parts.
// parts: count pointers to (n); order: (count), used by arrival only; out: (n).
void combine_partials(SplitCombine combine, const std::int32_t* order, std::int64_t count,
                      float* const* parts, std::int64_t n, float* out);

}  // namespace detdl::cpu
