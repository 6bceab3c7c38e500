#include "variance/divergence.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace detdl::variance {

std::vector<std::string> step_hashes(const nlohmann::json& record) {
  if (!record.contains("step_hashes") || !record["step_hashes"].is_array()) return {};
  if (record.value("first_step", 0) != 0) return {};
  return record["step_hashes"].get<std::vector<std::string>>();
}

std::int64_t first_divergence_step(const std::vector<std::string>& a,
                                   const std::vector<std::string>& b) {
  if (a.empty() || b.empty()) return -1;
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return static_cast<std::int64_t>(i + 1);
  return 0;
}

std::vector<std::int64_t> distinct_states_per_step(
    const std::vector<std::vector<std::string>>& runs) {
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

WeightDistance weight_distance(const std::vector<std::vector<float>>& weights) {
  std::size_t len = 0;
  for (const auto& w : weights)
    if (!w.empty()) {
      len = w.size();
      break;
    }
  std::vector<const std::vector<float>*> use;
  for (const auto& w : weights)
    if (!w.empty() && w.size() == len) use.push_back(&w);
  WeightDistance d;
  d.runs = use.size();
  if (use.size() < 2) return d;
  double dist = 0, norm = 0;
  std::size_t pairs = 0;
  for (std::size_t i = 0; i < use.size(); ++i) {
    double n2 = 0;
    for (float v : *use[i]) n2 += static_cast<double>(v) * v;
    norm += std::sqrt(n2);
    for (std::size_t j = i + 1; j < use.size(); ++j) {
      double s = 0;
      for (std::size_t k = 0; k < len; ++k) {
        const double e = static_cast<double>((*use[i])[k]) - (*use[j])[k];
        s += e * e;
      }
      dist += std::sqrt(s);
      ++pairs;
    }
  }
  d.mean_l2 = dist / static_cast<double>(pairs);
  const double mean_norm = norm / static_cast<double>(use.size());
  d.relative = mean_norm > 0 ? d.mean_l2 / mean_norm : std::numeric_limits<double>::quiet_NaN();
  return d;
}

}  // namespace detdl::variance
