// The reduce family's tree shapes (ImplFamily::reduce) and the order of a value reduction,
// shared by the CPU kernels (kernels/cpu/emulated_reduce.h, which defines each shape's
// arithmetic) and the CUDA kernels (kernels/cuda/reduce.h, which runs the same shapes as
// thread blocks and warp shuffles): both take the same draw and give the same bits.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/common/impl_choice.h"
#include "kernels/common/level.h"

namespace detdl {

// The shapes (emulated_reduce.h describes each one's order and error bound).
enum class ReduceShape : std::uint8_t {
  canonical,
  sequential,
  warp_tree_256,
  warp_tree_1024,
  block_atomic,
  count_,
};
inline constexpr int kReduceShapeCount = static_cast<int>(ReduceShape::count_);

// The draw -> shape mapping: decision 0 of the call's reduce draw, uniform over the shapes.
inline ReduceShape reduce_shape(const ImplDraw& d) {
  return static_cast<ReduceShape>(d.choose(0, kReduceShapeCount));
}

inline constexpr std::int64_t kAtomicBlockTerms = 256;  // terms per block in block_atomic
inline constexpr std::uint32_t kArrivalWhat = 8;        // decisions 8, 9, ...: arrival orders

// The block arrival order of block_atomic for a sum of n terms (empty for other shapes):
// a per-step permutation of ceil(n / 256) blocks from decision kArrivalWhat + k, for the
// call's k-th sum.
inline std::vector<std::int64_t> arrival_order(ReduceShape s, const ImplDraw& d, std::int64_t n,
                                               std::uint32_t k = 0) {
  if (s != ReduceShape::block_atomic) return {};
  std::vector<std::int64_t> order(
      static_cast<std::size_t>((n + kAtomicBlockTerms - 1) / kAtomicBlockTerms));
  impl_permutation(d, kArrivalWhat + k, static_cast<std::int64_t>(order.size()), order.data());
  return order;
}

// The order of one call's value reductions on the CUDA backend: the level's (canonical
// chunks and tree; `fast`: atomics) or, when the reduce family is emulated, the drawn shape.
// Converts from a Level, so a call that never emulates passes its level as before.
struct SumOrder {
  Level level = Level::portable;
  ReduceShape shape = ReduceShape::canonical;  // not canonical: `draw` was taken
  ImplDraw draw{};

  SumOrder(Level l) : level(l) {}  // NOLINT(google-explicit-constructor): a level is an order
  SumOrder(Level l, const ImplDraw& d) : level(l), shape(reduce_shape(d)), draw(d) {}
  template <class OptionalDraw>  // std::optional<ImplDraw>: the draw when the family is on
  static SumOrder of(Level l, const OptionalDraw& d) {
    return d ? SumOrder(l, *d) : SumOrder(l);
  }
  bool emulated() const { return shape != ReduceShape::canonical; }
  // block_atomic's arrival order for the call's k-th sum of n terms (empty otherwise).
  std::vector<std::int64_t> arrival(std::int64_t n, std::uint32_t k) const {
    return arrival_order(shape, draw, n, k);
  }
};

}  // namespace detdl
