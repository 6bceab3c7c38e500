#include "variance/divergence.h"

#include <algorithm>
#include <set>

namespace detdl::variance {

std::vector<std::string> step_hashes(const nlohmann::json& record) {
  if (!record.contains("step_hashes") || !record["step_hashes"].is_array()) return {};
  if (record.value("first_step", 0) != 0) return {};
  return record["step_hashes"].get<std::vector<std::string>>();
}

std::int64_t first_divergence_step(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  if (a.empty() || b.empty()) return -1;
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return static_cast<std::int64_t>(i + 1);
  return 0;
}

std::vector<std::int64_t> distinct_states_per_step(const std::vector<std::vector<std::string>>& runs) {
  std::size_t steps = 0;
  for (const auto& r : runs) steps = std::max(steps, r.size());
  std::vector<std::int64_t> out(steps, 0);
  for (std::size_t s = 0; s < steps; ++s) {
    std::set<std::string> seen;
    for (const auto& r : runs)
      if (s < r.size()) seen.insert(r[s]);
    out[s] = static_cast<std::int64_t>(seen.size());
  }
  return out;
}

}  // namespace detdl::variance
