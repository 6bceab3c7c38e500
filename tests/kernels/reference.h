// The canonical reduction written the slow, obvious way, for tests to compare kernels
// against bit for bit. Deliberately independent of kernels/common/reduction.h's ChunkTree:
// the tree is built level by level, pairs (0,1), (2,3), ..., an odd last node moving up.
#pragma once
#include <algorithm>
#include <cstddef>
#include <vector>

namespace detdl::reference {

inline float level_tree(std::vector<float> parts) {
  if (parts.empty()) return 0.0f;
  while (parts.size() > 1) {
    std::vector<float> next;
    for (std::size_t j = 0; j + 1 < parts.size(); j += 2) next.push_back(parts[j] + parts[j + 1]);
    if (parts.size() % 2) next.push_back(parts.back());
    parts = next;
  }
  return parts[0];
}

// Canonical sum of values: chunks of 256 added in order from +0.0f, then the tree.
inline float chunked_sum(const std::vector<float>& v) {
  std::vector<float> parts;
  for (std::size_t s = 0; s < v.size(); s += 256) {
    float p = 0.0f;
    for (std::size_t k = s; k < std::min(v.size(), s + 256); ++k) p = p + v[k];
    parts.push_back(p);
  }
  return level_tree(parts);
}

}  // namespace detdl::reference
