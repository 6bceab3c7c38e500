// Twin runs: two runs that differ in one thing (one initial weight moved by one ulp, or the
// impl seed of one emulated family), trained one after the other, with the distance between
// their weights recorded over the steps. Summers and Dinneen (ICML 2021) found that a single
// bit flip at initialisation ends with as much variance as all sources of nondeterminism
// together; `detdl twin` shows how many steps that amplification takes (docs/determinism.md).
#pragma once
#include <cstdint>
#include <vector>

#include "nets/experiment.h"

namespace detdl::variance {

// Steps 0 .. total at which the distance is measured: every step up to 10, then about
// per_decade steps per factor of 10 (rounded, distinct, ascending), and the last step.
std::vector<std::int64_t> log_spaced_steps(std::int64_t total, int per_decade);

struct TwinPoint {
  std::int64_t step = 0;
  double l2 = 0.0;             // ||a - b|| over every parameter (float64 sums)
  double relative = 0.0;       // l2 / ||a||
  double max_abs = 0.0;        // the largest |a_i - b_i|
  std::int64_t differing = 0;  // parameters whose bits differ
};

struct TwinResult {
  std::vector<TwinPoint> points;
  std::int64_t parameters = 0;
  std::int64_t first_differing_step = -1;  // the first measured step with differing bits
  float test_accuracy_a = 0.0f, test_accuracy_b = 0.0f;  // after the last epoch
  std::int64_t test_disagreements = 0;  // test rows whose predicted class differs (churn)
  std::int64_t test_rows = 0;
  double seconds = 0.0;
};

// Trains a, then b (each a whole run_experiment), measuring at log_spaced_steps. Throws
// std::invalid_argument when the two runs have different parameter counts or step counts, or
// when the snapshots would exceed max_floats (a = the weight count x measured steps).
TwinResult run_twin(const nets::Experiment& a, const nets::Experiment& b, int per_decade = 20,
                    std::int64_t max_floats = std::int64_t{1} << 28);

}  // namespace detdl::variance
