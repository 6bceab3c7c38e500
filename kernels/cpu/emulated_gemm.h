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

namespace detdl::cpu {

enum class SplitCombine : std::uint8_t { arrival, tree };

inline constexpr int kSplitFactors[] = {1, 2, 3, 4, 8, 16};
inline constexpr int kSplitFactorCount = 6;

struct EmulatedGemmPlan {
  // Slice boundaries: slice j is k in [cuts[j], cuts[j+1]); cuts.front() == 0, cuts.back() == K.
  std::vector<std::int64_t> cuts{0, 0};
  SplitCombine combine = SplitCombine::tree;
  std::vector<std::int32_t> order;  // arrival order of the slices (combine == arrival); (slices)
  std::int64_t slices() const { return static_cast<std::int64_t>(cuts.size()) - 1; }
};

// Slices of equal length (capped at K); order empty means slice order 0, 1, 2, ...
EmulatedGemmPlan split_k_plan(std::int64_t K, int split, SplitCombine combine,
                              std::vector<std::int32_t> order = {});

// The draw's plan for a reduction of length K: split factor (choose 0), combine (choose 1),
// arrival order (per_step 2).
EmulatedGemmPlan emulated_gemm_plan(const ImplDraw& d, std::int64_t K);

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
