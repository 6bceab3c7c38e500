// BUTTER's dense networks (NREL's 2022 sweeps; see ../shared/design/BUTTER.md): a shape, a
// target parameter count and a depth define the layer widths; the first-layer width w0 is
// found by a binary search on the parameter count.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "engine/nn.h"

namespace detdl::nets {

enum class ButterShape {
  rectangle,
  trapezoid,
  exponential,
  wide_first_2x,
  wide_first_4x,
  wide_first_8x,
  wide_first_16x,
  rectangle_residual,
};
std::string_view butter_shape_name(ButterShape s);  // "rectangle", "wide_first_2x", ...
std::optional<ButterShape> parse_butter_shape(std::string_view name);

// The widths of every dense layer (depth of them, the last = n_out) for first width w0,
// from BUTTER's generators; rounding is round-half-to-even. Throws std::invalid_argument
// naming the argument if w0, depth (>= 2) or n_out is out of range.
std::vector<std::int64_t> butter_widths(ButterShape s, std::int64_t w0, std::int64_t depth,
                                        std::int64_t n_out);

// Trainable parameters of the dense stack: sum over layers of (fan_in + 1) * units, fan_in
// of the first layer n_in; residual adds cost nothing. Saturates at INT64_MAX (the search
// probes widths up to 2^30).
std::int64_t butter_param_count(const std::vector<std::int64_t>& widths, std::int64_t n_in);

struct ButterPlan {
  std::vector<std::int64_t> widths;
  std::int64_t params = 0;  // butter_param_count(widths, n_in)
  std::int64_t size = 0;    // the target
  // |params - size| <= 20% of size: the dataset README's rule, which it says "may not be
  // included" past, and which the published data itself breaks (mnist / rectangle / 3 /
  // 1024 at 807 parameters, -21%). Recorded, never enforced here: sweep files decide.
  bool conformant = false;
  double relative_distance() const {  // (params - size) / size
    return size > 0 ? static_cast<double>(params - size) / static_cast<double>(size) : 0.0;
  }
};

// Binary search over w0 in [1, 2^30): mid = (lo + hi) / 2; params < size -> lo = mid + 1,
// params > size -> hi = mid, equal -> stop. The evaluated w0 with the smallest
// |params - size| wins; on a tie the one evaluated first is kept. Throws
// std::invalid_argument naming the argument if size, depth, n_in or n_out is out of range.
ButterPlan butter_plan(ButterShape s, std::int64_t size, std::int64_t depth, std::int64_t n_in,
                       std::int64_t n_out);

// The plan's MLP: x (N, n_in) -> (N, n_out). Hidden layers Linear + ReLU (Glorot-uniform
// kernels, zero biases); rectangle_residual adds identity skips after the activation of
// hidden layers 1 .. depth-2. Output activation: sigmoid when sigmoid_output (regression,
// binary), identity otherwise (the engine's softmax cross-entropy takes logits).
// Built whether or not the plan is conformant (the record says how far it is). Throws
// std::invalid_argument if the plan does not fit n_in.
std::shared_ptr<Module> make_butter_mlp(ButterShape s, const ButterPlan& plan, std::int64_t n_in,
                                        bool sigmoid_output);

}  // namespace detdl::nets
