// Determinism levels and the op families a study can switch to `fast` one at a time.
// The contract itself is docs/determinism.md.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace detdl {

enum class Level : std::uint8_t {
  portable,    // same bits on any thread count, any device, CPU == GPU
  repeatable,  // same bits run to run on one machine and configuration
  fast,        // anything goes: completion-order combines, atomics, vendor fast paths
  emulated,    // portable's kernels, except where an emulated implementation family
               // (kernels/common/impl_choice.h) draws another legitimate implementation
               // from the impl seed: same bits for the same impl seed on any thread count
};

// Op families whose reductions a study can switch to `fast` one at a time, to attribute
// implementation-level variance to the op that causes it. Every op of engine/ops/registry.h
// is filed under one. The last four have no reduction whose order a level changes (so
// `fast` on them changes no bits); they exist so that no op is filed under a family it is
// not. New families go at the end: a family's index is its slot in RunContext::level_of
// and its place in a checkpoint's "level" identity.
enum class OpFamily : std::uint8_t {
  matmul,         // linear / GEMM forward and data gradients, conv forward and data gradient
  conv_wgrad,     // convolution weight gradient (the long batch x rows x cols reduction)
  bias_grad,      // bias gradients (sums over batch, rows, cols)
  norm_stats,     // batch-norm statistics and their gradients
  loss_reduce,    // loss and metric reductions over the batch
  optimizer,      // optimizer state updates (element-wise; reductions of penalties)
  elementwise,    // one output element from the same element of each input (add, activation)
  data_movement,  // copies that only move elements (reshape, concat)
  random,         // keyed Philox streams (dropout masks): counter-based, no reduction
  pooling,        // fixed windows in (kh, kw) order (max/avg pooling, global average)
  count_,
};
inline constexpr int kOpFamilyCount = static_cast<int>(OpFamily::count_);

constexpr std::string_view level_name(Level l) {
  switch (l) {
    case Level::portable: return "portable";
    case Level::repeatable: return "repeatable";
    case Level::fast: return "fast";
    case Level::emulated: return "emulated";
  }
  return "?";
}

inline std::optional<Level> parse_level(std::string_view s) {
  if (s == "portable") return Level::portable;
  if (s == "repeatable") return Level::repeatable;
  if (s == "fast") return Level::fast;
  if (s == "emulated") return Level::emulated;
  return std::nullopt;
}

constexpr std::string_view op_family_name(OpFamily f) {
  switch (f) {
    case OpFamily::matmul: return "matmul";
    case OpFamily::conv_wgrad: return "conv_wgrad";
    case OpFamily::bias_grad: return "bias_grad";
    case OpFamily::norm_stats: return "norm_stats";
    case OpFamily::loss_reduce: return "loss_reduce";
    case OpFamily::optimizer: return "optimizer";
    case OpFamily::elementwise: return "elementwise";
    case OpFamily::data_movement: return "data_movement";
    case OpFamily::random: return "random";
    case OpFamily::pooling: return "pooling";
    case OpFamily::count_: break;
  }
  return "?";
}

// Whether `fast` changes anything in the family: the first five have reductions whose order
// `fast` changes (loss_reduce only the reported loss: no gradient depends on the reduced
// value). The optimizer and the last four are element-wise or fixed-order, so --fast-op
// refuses them (docs/determinism.md); `--emulated-op optimizer` draws framework forms.
constexpr bool has_fast_path(OpFamily f) {
  switch (f) {
    case OpFamily::matmul:
    case OpFamily::conv_wgrad:
    case OpFamily::bias_grad:
    case OpFamily::norm_stats:
    case OpFamily::loss_reduce: return true;
    default: return false;
  }
}

// "matmul, conv_wgrad, ...": every family's name, for error messages and help text.
inline std::string op_family_names() {
  std::string out;
  for (int i = 0; i < kOpFamilyCount; ++i)
    out += (i ? ", " : "") + std::string(op_family_name(static_cast<OpFamily>(i)));
  return out;
}

// The families --fast-op accepts.
inline std::string fast_op_family_names() {
  std::string out;
  for (int i = 0; i < kOpFamilyCount; ++i)
    if (has_fast_path(static_cast<OpFamily>(i)))
      out += (out.empty() ? "" : ", ") + std::string(op_family_name(static_cast<OpFamily>(i)));
  return out;
}

inline std::optional<OpFamily> parse_op_family(std::string_view s) {
  for (int i = 0; i < kOpFamilyCount; ++i)
    if (op_family_name(static_cast<OpFamily>(i)) == s) return static_cast<OpFamily>(i);
  return std::nullopt;
}

}  // namespace detdl
