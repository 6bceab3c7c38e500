// Golden weight hashes: each network of the zoo trained for a few `portable` steps on
// generated data. The CPU tests check tests/golden/hashes.json in CI; the GPU test script
// checks the very same file, so a GPU `portable` run must reproduce the CPU's bits
// (docs/determinism.md, "What is checked, and where").
#pragma once
#include <string>
#include <vector>

#include "nets/experiment.h"

namespace detdl::nets {

struct GoldenCase {
  std::string name;  // the key in the golden file
  Experiment experiment;
};

// The cases, in file order: lenet1, lenet4, lenet5, resnet20, resnet56, wrn-16-4, butter.
// Every one needs nothing outside the project (generated data only).
std::vector<GoldenCase> golden_cases();

// Runs one case on `threads` threads (on `device`: the hashes must not depend on it) and
// returns its final weight hash.
std::string golden_hash(const GoldenCase& c, int threads = 1, Device device = Device::cpu);

}  // namespace detdl::nets
