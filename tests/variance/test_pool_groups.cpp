// studies/dl-variance/pool_groups.py: 16-run groups resampled from the pooled detdl_raw.csv
// exports of several stores (a study whose stores were lost with their machines). Checked
// against `study table`'s own group_spread.csv of the LeNet-1 study (64 runs in one store,
// both committed under studies/results/), against itself on the same runs split into two
// files, and on bad input.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/cli_run.h"

namespace {
namespace fs = std::filesystem;

const std::string kScript = DETDL_SOURCE_DIR "/studies/dl-variance/pool_groups.py";
const std::string kLenet1 = DETDL_SOURCE_DIR "/studies/results/dl-variance-lenet1/";

using detdl::test_util::python3;
using detdl::test_util::split_fields;

// The script's stdout; its exit status in *status.
std::string capture(const std::string& cmd, int* status) {
  return detdl::test_util::run_command(cmd, status, /*with_stderr=*/false);
}

// criterion -> column -> value of the script's CSV output.
std::map<std::string, std::map<std::string, std::string>> rows(const std::string& csv) {
  std::stringstream ss(csv);
  std::string line;
  std::getline(ss, line);
  const auto head = split_fields(line, ',');
  std::map<std::string, std::map<std::string, std::string>> out;
  while (std::getline(ss, line)) {
    const auto f = split_fields(line, ',');
    for (std::size_t i = 0; i < head.size() && i < f.size(); ++i) out[f[0]][head[i]] = f[i];
  }
  return out;
}

TEST(PoolGroups, MatchesStudyTableOnOneStore) {
  int status = 0;
  const auto got = rows(capture(
      python3() + " " + kScript + " --published 10.8 " + kLenet1 + "detdl_raw.csv", &status));
  ASSERT_EQ(status, 0);
  // study table's group_spread.csv: fractions; the script prints percent with 2 decimals.
  std::ifstream in(kLenet1 + "group_spread.csv");
  ASSERT_TRUE(in) << kLenet1 << "group_spread.csv";
  std::string line;
  std::getline(in, line);
  const auto head = split_fields(line, ',');
  int compared = 0;
  while (std::getline(in, line)) {
    const auto f = split_fields(line, ',');
    std::map<std::string, std::string> want;
    for (std::size_t i = 0; i < head.size(); ++i) want[head[i]] = f[i];
    const std::string crit = want["criterion"];
    if (crit != "best_loss" && crit != "best_acc") continue;
    ASSERT_TRUE(got.count(crit)) << crit;
    const auto& g = got.at(crit);
    EXPECT_EQ(g.at("runs"), want["pool"]) << crit;
    for (const char* col : {"one_group_median", "one_group_p05", "one_group_p95", "largest_median",
                            "largest_p05", "largest_p95"}) {
      const double w = 100.0 * std::stod(want[col]), v = std::stod(g.at(col));
      EXPECT_NEAR(v, w, 0.006) << crit << " " << col;
    }
    ++compared;
  }
  EXPECT_EQ(compared, 2);
}

TEST(PoolGroups, TwoFilesPoolAsOne) {
  const fs::path dir =
      fs::temp_directory_path() / ("detdl_pool_groups_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ifstream in(kLenet1 + "detdl_raw.csv");
  ASSERT_TRUE(in);
  std::string head, line;
  std::getline(in, head);
  std::ofstream even(dir / "even.csv"), odd(dir / "odd.csv");
  even << head << "\n";
  odd << head << "\n";
  while (std::getline(in, line)) {
    const int rep = std::stoi(split_fields(line, ',')[1]);
    (rep % 2 ? odd : even) << line << "\n";
  }
  even.close();
  odd.close();
  int s1 = 0, s2 = 0;
  const std::string whole =
      capture(python3() + " " + kScript + " " + kLenet1 + "detdl_raw.csv", &s1);
  const std::string pooled = capture(python3() + " " + kScript + " " + (dir / "odd.csv").string() +
                                         " " + (dir / "even.csv").string(),
                                     &s2);
  EXPECT_EQ(s1, 0);
  EXPECT_EQ(s2, 0);
  EXPECT_FALSE(whole.empty());
  EXPECT_EQ(pooled, whole);
  fs::remove_all(dir);
}

TEST(PoolGroups, ConflictingRepetitionAndMissingSettingAreRefused) {
  const fs::path dir =
      fs::temp_directory_path() / ("detdl_pool_groups_bad_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string head = "setting,repetition,key,criterion,selected_epoch,test_accuracy\n";
  std::ofstream(dir / "a.csv") << head << "default-portable,3,k,best_loss,5,0.9\n";
  std::ofstream(dir / "b.csv") << head << "default-portable,3,k,best_loss,5,0.8\n";
  int status = 0;
  capture(
      python3() + " " + kScript + " " + (dir / "a.csv").string() + " " + (dir / "b.csv").string(),
      &status);
  EXPECT_NE(status, 0) << "one repetition with two accuracies";
  capture(python3() + " " + kScript + " --setting nope " + (dir / "a.csv").string(), &status);
  EXPECT_NE(status, 0) << "a setting no file has";
  fs::remove_all(dir);
}

}  // namespace
