// Where runs part ways: from the weight hash recorded after every step (the run records'
// "step_hashes"), the first step at which two runs' weights differ, and how many distinct
// weight states a setting's runs are in at each step. For runs that differ only in their
// determinism level this is the step at which `fast` first changed a bit.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace detdl::variance {

// The record's step hashes (empty when it has none or was resumed part way: a resumed
// run's list does not start at step 1).
std::vector<std::string> step_hashes(const nlohmann::json& record);

// The first step (1-based) after which the two runs' weights differ; 0 when they never do
// over the steps both have; -1 when either has no step hashes.
std::int64_t first_divergence_step(const std::vector<std::string>& a,
                                   const std::vector<std::string>& b);

// For each step s (index s-1), the number of distinct weight hashes among the runs that
// reached step s.
std::vector<std::int64_t> distinct_states_per_step(
    const std::vector<std::vector<std::string>>& runs);

// Weight-space distance: the mean over all pairs of runs of the L2 distance between their
// final weights (float64 sums), and the same divided by the mean L2 norm of the runs'
// weights. Runs without weights, or of another length, are left out; NaN when fewer than
// two remain.
struct WeightDistance {
  std::size_t runs = 0;
  double mean_l2 = std::numeric_limits<double>::quiet_NaN();
  double relative = std::numeric_limits<double>::quiet_NaN();
};
WeightDistance weight_distance(const std::vector<std::vector<float>>& weights);

}  // namespace detdl::variance
