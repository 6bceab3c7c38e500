// Shuffles: a Fisher-Yates permutation driven by Philox draws, the one rule behind the data
// order (per epoch), the tabular train/test split and label noise.
//
// Draw `position` is Philox (seed, stream, sub, position); j = (draw * (i + 1)) >> 32 (bias
// below n * 2^-32, and the same on every machine: integer arithmetic only).
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "kernels/common/philox.h"

namespace detdl {

inline std::vector<std::int64_t> philox_permutation(std::int64_t n, std::uint64_t seed,
                                                    RandomStream stream, std::uint32_t sub) {
  std::vector<std::int64_t> p(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) p[i] = i;
  // Draw i is philox_u32(seed, stream, sub, i); its block of four is computed once.
  Philox4 block{};
  std::int64_t held = -1;  // the block index in `block`
  for (std::int64_t i = n - 1; i > 0; --i) {
    if ((i >> 2) != held)
      block = philox_block(seed, stream, sub, static_cast<std::uint64_t>(held = i >> 2));
    const std::uint64_t u = block.v[i & 3];
    const auto j = static_cast<std::int64_t>((u * static_cast<std::uint64_t>(i + 1)) >> 32);
    std::swap(p[i], p[j]);
  }
  return p;
}

// The data order of one epoch: keyed by (order seed, RandomStream::data_order, epoch).
inline std::vector<std::int64_t> epoch_permutation(std::int64_t n, std::uint64_t seed,
                                                   std::int64_t epoch) {
  return philox_permutation(n, seed, RandomStream::data_order, static_cast<std::uint32_t>(epoch));
}

}  // namespace detdl
