// The golden file (tests/golden/hashes.json): every network's weight hash after a few
// `portable` steps, on 1 and on 2 threads. The GPU test script checks the same file.
// To change it on purpose (a changed canonical order, a new initialiser), regenerate it
// with `build/detdl golden --write tests/golden/hashes.json` and say why in the commit.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "nets/golden.h"

namespace detdl::nets {
namespace {

nlohmann::json golden_file() {
  std::ifstream in(std::string(DETDL_SOURCE_DIR) + "/tests/golden/hashes.json");
  EXPECT_TRUE(in.good());
  return nlohmann::json::parse(in);
}

TEST(Golden, EveryNetworkMatchesTheFileOnOneAndTwoThreads) {
  const auto want = golden_file();
  const auto cases = golden_cases();
  EXPECT_EQ(want.size(), cases.size());
  for (const auto& c : cases) {
    ASSERT_TRUE(want.contains(c.name)) << c.name;
    EXPECT_EQ(golden_hash(c, 1), want[c.name].get<std::string>()) << c.name << " on 1 thread";
    EXPECT_EQ(golden_hash(c, 2), want[c.name].get<std::string>()) << c.name << " on 2 threads";
  }
}

TEST(Golden, CasesCoverEveryNetworkFamily) {
  std::vector<std::string> names;
  for (const auto& c : golden_cases()) names.push_back(c.experiment.net);
  for (const char* n : {"lenet1", "lenet4", "lenet5", "resnet20", "resnet56", "wrn-16-4"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
}

}  // namespace
}  // namespace detdl::nets
