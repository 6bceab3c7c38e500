// The conv and scatter families' choices for a convolution (ImplFamily::conv, ::scatter),
// shared by the CPU's emulated convolution (kernels/cpu/emulated_conv.h, which describes
// the catalogue) and the CUDA convolution (kernels/cuda/conv.h): both take the same draws
// and give the same bits.
#pragma once
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kernels/common/impl_choice.h"
#include "kernels/common/shapes.h"
#include "kernels/common/split_k_plan.h"

namespace detdl {

// The forward's algorithm: the canonical (c, kh, kw) chain, one chain over (kh, kw, c), or
// per-tap chains over c added in (kh, kw) order.
enum class ConvAlgo : std::uint8_t { im2col_chw, im2col_hwc, per_tap };
inline constexpr int kConvAlgoCount = 3;

// The forward algorithm of the draw's place (choose 0).
inline ConvAlgo conv_forward_algo(const ImplDraw& d, const Conv2dShape&) {
  return static_cast<ConvAlgo>(d.choose(0, kConvAlgoCount));
}

// The data gradient's GEMM plan for the reduction over o (emulated_gemm_plan with K = O).
inline EmulatedGemmPlan conv_data_plan(const ImplDraw& d, const Conv2dShape& s) {
  return emulated_gemm_plan(d, s.O);
}

// The col2im tap order of the scatter draw: (kh, kw) row-major (choose 0 == 0) or a
// permutation of the taps redrawn every step (per_step 1). Returns (KH*KW) tap indices.
inline std::vector<std::int32_t> scatter_tap_order(const ImplDraw& d, const Conv2dShape& s) {
  const std::int64_t T = s.KH * s.KW;
  std::vector<std::int32_t> order(static_cast<std::size_t>(T));
  if (d.choose(0, 2) == 0) {
    std::iota(order.begin(), order.end(), 0);
  } else {
    impl_permutation(d, 1, T, order.data());
  }
  return order;
}

inline constexpr int kWeightGroups[] = {1, 2, 4, 8};
inline constexpr int kWeightGroupCount = 4;

// The weight gradient's batch groups: group g is samples [N*g/G, N*(g+1)/G), one chain over
// its (n, oh, ow); the groups combined in arrival order or by the pairwise tree.
struct WeightGradPlan {
  int groups = 1;  // capped at N
  SplitCombine combine = SplitCombine::tree;
  std::vector<std::int32_t> order;  // arrival order of the groups; (groups)
};

// groups capped at N; empty order means 0, 1, 2, ...
inline WeightGradPlan weight_grad_plan(const Conv2dShape& s, int groups, SplitCombine combine,
                                       std::vector<std::int32_t> order = {}) {
  WeightGradPlan p;
  p.groups = static_cast<int>(std::clamp<std::int64_t>(groups, 1, s.N));
  p.combine = combine;
  if (order.empty()) {
    order.resize(static_cast<std::size_t>(p.groups));
    std::iota(order.begin(), order.end(), 0);
  }
  if (static_cast<std::int64_t>(order.size()) != p.groups)
    throw std::invalid_argument("weight_grad_plan: order has " + std::to_string(order.size()) +
                                " entries for " + std::to_string(p.groups) + " groups");
  p.order = std::move(order);
  return p;
}

// groups (choose 0), combine (choose 1), arrival order (per_step 2).
inline WeightGradPlan conv_weight_plan(const ImplDraw& d, const Conv2dShape& s) {
  const int g =
      static_cast<int>(std::min<std::int64_t>(kWeightGroups[d.choose(0, kWeightGroupCount)], s.N));
  std::vector<std::int32_t> order(static_cast<std::size_t>(g));
  impl_permutation(d, 2, g, order.data());
  return weight_grad_plan(s, g, d.coin(1) ? SplitCombine::tree : SplitCombine::arrival,
                          std::move(order));
}

}  // namespace detdl
