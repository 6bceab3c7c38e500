// `detdl train` as a user runs it: bad flags and files are refused with the option's name,
// a run writes a record whose hash is the printed one, and flags override presets.
#include <gtest/gtest.h>

#include "tests/cli_run.h"
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace {

using Result = detdl::test_util::CliResult;
Result run(const std::string& args) { return detdl::test_util::run_detdl(args); }

std::filesystem::path temp_dir() {
  auto d = std::filesystem::temp_directory_path() / ("detdl_cli_" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return d;
}

TEST(CliTrain, BadValuesNameTheOption) {
  auto r = run("train --level fastest --epochs 1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--level"), std::string::npos) << r.output;
  r = run("train --data no-such-set --epochs 1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("no-such-set"), std::string::npos) << r.output;
  r = run("train --net lenet9 --epochs 1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("lenet9"), std::string::npos) << r.output;
  r = run("train --schedule multistep:a,b --epochs 1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--schedule"), std::string::npos) << r.output;
  r = run("train --batch-size 0");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--batch-size"), std::string::npos) << r.output;
}

TEST(CliTrain, ConfigFileErrorsNameFileAndField) {
  const auto dir = temp_dir();
  const auto bad = dir / "bad.json";
  std::ofstream(bad) << R"({"epochs": 2, "optimizer": {"kind": "sgd", "learning_rate": 0.1}})";
  auto r = run("train --config " + bad.string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("optimizer.learning_rate"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("bad.json"), std::string::npos) << r.output;
  const auto broken = dir / "broken.json";
  std::ofstream(broken) << R"({"epochs": )";
  r = run("train --config " + broken.string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("broken.json"), std::string::npos) << r.output;
  std::filesystem::remove_all(dir);
}

TEST(CliTrain, FlagsOverridePresetAndConfig) {
  const auto dir = temp_dir();
  const auto cfg = dir / "c.json";
  std::ofstream(cfg) << R"({"batch_size": 64, "seeds": {"order": 5}})";
  const auto r = run("train --preset lenet5 --config " + cfg.string() +
                     " --epochs 3 --init-seed 9 --print-config");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["net"], "lenet5");
  EXPECT_EQ(j["epochs"], 3);            // flag over preset
  EXPECT_EQ(j["batch_size"], 64);       // config over preset
  EXPECT_EQ(j["seeds"]["order"], 5);    // config
  EXPECT_EQ(j["seeds"]["init"], 9);     // flag
  EXPECT_EQ(j["seeds"]["dropout"], 1);  // preset default kept
  std::filesystem::remove_all(dir);
}

TEST(CliTrain, RecordHoldsThePrintedHash) {
  const auto dir = temp_dir();
  const auto rec = dir / "run.json";
  const auto r = run("train --net mlp:16 --epochs 2 --threads 2 --record " + rec.string());
  ASSERT_EQ(r.status, 0) << r.output;
  std::ifstream in(rec);
  ASSERT_TRUE(in.good());
  const auto j = nlohmann::json::parse(in);
  const std::string hash = j["weight_hash"];
  EXPECT_EQ(hash.size(), 16u);
  EXPECT_NE(r.output.find("weight hash " + hash), std::string::npos) << r.output;
  EXPECT_EQ(j["epochs"].size(), 2u);
  EXPECT_FALSE(std::filesystem::exists(rec.string() + ".tmp"));
  std::filesystem::remove_all(dir);
}

}  // namespace
