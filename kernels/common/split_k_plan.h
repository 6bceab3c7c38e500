// The matmul family's split-K plans (ImplFamily::matmul), shared by the CPU's emulated GEMM
// (kernels/cpu/emulated_gemm.h, which describes the catalogue) and the CUDA GEMM
// (kernels/cuda/gemm.h): both take the same draw and give the same bits.
//   split s in {1, 2, 3, 4, 8, 16} (capped at K): k cut into s contiguous slices
//     [K*j/s, K*(j+1)/s), each ONE fmaf chain in k order from +0.0f;
//   combine (s >= 2): arrival (+0.0f, then the slices added in a per-step drawn order) or
//     tree (the pairwise tree over the slices, kernels/common/reduction.h's ChunkTree).
#pragma once
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kernels/common/impl_choice.h"

namespace detdl {

enum class SplitCombine : std::uint8_t { arrival, tree };

inline constexpr int kSplitFactors[] = {1, 2, 3, 4, 8, 16};
inline constexpr int kSplitFactorCount = 6;
inline constexpr int kMaxSplit = 16;

struct EmulatedGemmPlan {
  // Slice boundaries: slice j is k in [cuts[j], cuts[j+1]); cuts.front() == 0, cuts.back() == K.
  std::vector<std::int64_t> cuts{0, 0};
  SplitCombine combine = SplitCombine::tree;
  std::vector<std::int32_t> order;  // arrival order of the slices (combine == arrival); (slices)
  std::int64_t slices() const { return static_cast<std::int64_t>(cuts.size()) - 1; }
};

// Slices of equal length (capped at K); order empty means slice order 0, 1, 2, ...
inline EmulatedGemmPlan split_k_plan(std::int64_t K, int split, SplitCombine combine,
                                     std::vector<std::int32_t> order = {}) {
  const std::int64_t s = std::max<std::int64_t>(1, std::min<std::int64_t>(split, K));
  EmulatedGemmPlan p;
  p.cuts.resize(static_cast<std::size_t>(s + 1));
  for (std::int64_t j = 0; j <= s; ++j) p.cuts[j] = K * j / s;
  p.combine = combine;
  if (order.empty()) {
    order.resize(static_cast<std::size_t>(s));
    std::iota(order.begin(), order.end(), 0);
  }
  if (static_cast<std::int64_t>(order.size()) != s)
    throw std::invalid_argument("split_k_plan: order has " + std::to_string(order.size()) +
                                " entries for " + std::to_string(s) + " slices");
  p.order = std::move(order);
  return p;
}

// The draw's plan for a reduction of length K: split factor (choose 0), combine (choose 1),
// arrival order (per_step 2).
inline EmulatedGemmPlan emulated_gemm_plan(const ImplDraw& d, std::int64_t K) {
  const int split = kSplitFactors[d.choose(0, kSplitFactorCount)];
  const SplitCombine combine = d.coin(1) ? SplitCombine::tree : SplitCombine::arrival;
  const std::int64_t s = std::max<std::int64_t>(1, std::min<std::int64_t>(split, K));
  std::vector<std::int32_t> order(static_cast<std::size_t>(s));
  impl_permutation(d, 2, s, order.data());
  return split_k_plan(K, split, combine, std::move(order));
}

}  // namespace detdl
