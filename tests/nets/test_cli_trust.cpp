// `detdl train` refuses what a careful user found it accepted (issue 9): forged and
// foreign checkpoints, changed settings on resume, bad numbers from flags and config files,
// outputs that would overwrite or be lost, and flags that were silently ignored. Each
// check runs the real binary and asserts the exit status and the message naming the
// option, file or field.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/checkpoint.h"
#include "tests/cli_run.h"

namespace {

namespace fs = std::filesystem;
using detdl::test_util::run_detdl;

fs::path temp_dir() {
  auto d = fs::temp_directory_path() / ("detdl_trust_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

bool has(const std::string& out, const std::string& what) {
  return out.find(what) != std::string::npos;
}

// The MLP on blobs, stopped after 100 steps into `ckpt`.
std::string stopped_run(const fs::path& ckpt) {
  fs::remove(ckpt);
  const auto r =
      run_detdl("train --net mlp --quiet --checkpoint " + ckpt.string() + " --stop-after 100");
  EXPECT_EQ(r.status, 0) << r.output;
  return ckpt.string();
}

}  // namespace

TEST(CliTrust, ForgedNegativeStepIsRefusedNotACrash) {
  const auto ck = stopped_run(temp_dir() / "neg.st");
  detdl::TensorFile f = detdl::load_safetensors(ck);
  f.metadata["train.step"] = "-1";
  detdl::save_safetensors(ck, f);  // CRCs fixed up, as an attacker or a script would
  const auto r = run_detdl("train --net mlp --quiet --checkpoint " + ck + " --resume");
  EXPECT_EQ(r.status, 1) << r.output;  // an error exit, not 139
  EXPECT_TRUE(has(r.output, ck) && has(r.output, "train.step")) << r.output;
}

TEST(CliTrust, ResumeWithChangedHyperparametersIsRefusedNamingThem) {
  const auto ck = stopped_run(temp_dir() / "hyper.st");
  auto r = run_detdl("train --net mlp --quiet --checkpoint " + ck + " --resume --lr 0.1");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(has(r.output, "schedule.lr: checkpoint 0.05, this run 0.1")) << r.output;
  r = run_detdl("train --net mlp --quiet --checkpoint " + ck + " --resume --batch-size 64");
  EXPECT_TRUE(has(r.output, "batch_size: checkpoint 32, this run 64")) << r.output;
  r = run_detdl("train --net mlp --quiet --checkpoint " + ck + " --resume --data bars");
  EXPECT_TRUE(has(r.output, "data: checkpoint blobs, this run bars") || has(r.output, "--data"))
      << r.output;
  // Raising --epochs trains the same run for longer: allowed, and equal to a run never stopped.
  r = run_detdl("train --net mlp --checkpoint " + ck + " --resume --epochs 6");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(has(r.output, "resumed from step 100 of " + ck)) << r.output;
  const auto full = run_detdl("train --net mlp --quiet --epochs 6");
  const auto hash_of = [](const std::string& out) {
    return out.substr(out.find("weight hash ") + 12, 16);
  };
  EXPECT_EQ(hash_of(r.output), hash_of(full.output));
}

TEST(CliTrust, WeightsThatNoLongerMatchTheirHashAreRefused) {
  const auto ck = stopped_run(temp_dir() / "bytes.st");
  detdl::TensorFile f = detdl::load_safetensors(ck);
  for (auto& [name, t] : f.tensors)
    if (name == "model.0.weight") t.f32()[3] += 0.5f;
  detdl::save_safetensors(ck, f);
  const auto hash = run_detdl("hash " + ck);
  EXPECT_NE(hash.status, 0);
  EXPECT_TRUE(has(hash.output, "MISMATCH")) << hash.output;
  const auto r = run_detdl("train --net mlp --quiet --checkpoint " + ck + " --resume");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(has(r.output, "model.hash")) << r.output;
}

TEST(CliTrust, NonFiniteAndOutOfRangeValuesAreRefusedByTheirFlag) {
  struct Case {
    const char* args;
    const char* says;
  };
  const Case cases[] = {
      {"--momentum nan", "--momentum: expected a number in [0, 1], got nan"},
      {"--momentum 1.5", "--momentum: expected a number in [0, 1]"},
      {"--schedule step:1:nan", "--schedule (schedule.gamma): expected a finite positive number"},
      {"--lr inf", "--lr: expected a finite positive number"},
      {"--lr 0", "--lr: expected a finite positive number"},
      {"--epochs 99999999999999999999", "--epochs: integer out of range"},
      {"--epochs 2000000", "--epochs: expected 0 to 1000000"},
      {"--epochs abc", "--epochs: expected an integer, got 'abc'"},
      {"--batch-size 0", "--batch-size: expected 1 to"},
      {"--label-noise 2", "--label-noise: expected a fraction in [0, 1]"},
      {"--eps -1", "--eps: expected a finite positive number"},
      {"--threads 0", "--threads: expected 1 to 1024"},
      {"--stop-after -5", "--stop-after: expected 0 to"},
  };
  for (const auto& c : cases) {
    const auto r = run_detdl(std::string("train --net mlp --quiet ") + c.args);
    EXPECT_NE(r.status, 0) << c.args;
    EXPECT_TRUE(has(r.output, c.says)) << c.args << "\n" << r.output;
    EXPECT_FALSE(has(r.output, "1797693")) << c.args << ": a 310-digit range\n" << r.output;
    EXPECT_FALSE(has(r.output, "weight hash")) << c.args << ": it trained\n" << r.output;
  }
}

TEST(CliTrust, ConfigFilesGoThroughTheSameChecks) {
  const auto dir = temp_dir();
  struct Case {
    const char* json;
    const char* says;
  };
  const Case cases[] = {
      {R"({"optimizer": {"momentum": 5}})",
       "cfg.json.optimizer.momentum: expected a number in [0, 1], got 5"},
      {R"({"schedule": {"lr": null}})", "cfg.json.schedule.lr: null is not a value"},
      {R"({"epochs": null})", "cfg.json.epochs: null is not a value"},
      {R"({"epochs": 1e30})", "cfg.json.epochs: expected an integer"},
      {R"({"l2": -1})", "cfg.json.l2: expected a finite number >= 0"},
      {R"({"schedule": {"kind": "multistep", "milestones": [5, 3]}})",
       "cfg.json.schedule.milestones: expected increasing"},
  };
  for (const auto& c : cases) {
    std::ofstream(dir / "cfg.json") << c.json;
    const auto r = run_detdl("train --quiet --config " + (dir / "cfg.json").string());
    EXPECT_NE(r.status, 0) << c.json;
    EXPECT_TRUE(has(r.output, c.says)) << c.json << "\n" << r.output;
  }
}

TEST(CliTrust, OutputsAreCheckedBeforeTrainingAndNeverOverwrittenSilently) {
  const auto dir = temp_dir();
  // A record in a folder that does not exist: refused before any training.
  auto r = run_detdl("train --net mlp --record " + (dir / "no/such/dir/r.json").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(has(r.output, "--record") && has(r.output, "does not exist")) << r.output;
  EXPECT_FALSE(has(r.output, "epoch")) << r.output;
  // An existing record or checkpoint (or any file) is not overwritten without --force.
  const auto keep = dir / "precious.txt";
  std::ofstream(keep) << "do not lose me";
  r = run_detdl("train --net mlp --quiet --record " + keep.string());
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(has(r.output, "exists") && has(r.output, "--force")) << r.output;
  r = run_detdl("train --net mlp --quiet --checkpoint " + keep.string());
  EXPECT_EQ(r.status, 1);
  std::ifstream in(keep);
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, "do not lose me");
  r = run_detdl("train --net mlp --quiet --epochs 1 --force --record " + keep.string());
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NO_THROW(nlohmann::json::parse(std::ifstream(keep)));
  // No temporary file is left beside the outputs.
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

TEST(CliTrust, FlagsThatWouldBeIgnoredAreRefused) {
  auto r = run_detdl("train --net mlp --resume");
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(has(r.output, "--resume needs --checkpoint")) << r.output;
  r = run_detdl("train --net mlp --checkpoint-every 10");
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(has(r.output, "--checkpoint-every needs --checkpoint")) << r.output;
  // --stop-after 0 stops before the first step.
  const auto ck = temp_dir() / "zero.st";
  fs::remove(ck);
  r = run_detdl("train --net mlp --stop-after 0 --checkpoint " + ck.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(has(r.output, "steps 0")) << r.output;
  EXPECT_EQ(detdl::load_safetensors(ck.string()).metadata.at("train.step"), "0");
}

TEST(CliTrust, ProgressLineOnlyWhereAsked) {
  // Piped (as here) the default shows no progress line; --progress on forces it.
  auto r = run_detdl("train --net mlp --epochs 1");
  ASSERT_EQ(r.status, 0);
  EXPECT_FALSE(has(r.output, "\r")) << r.output;
  EXPECT_FALSE(has(r.output, "ETA"));
  r = run_detdl("train --net mlp --epochs 1 --progress on");
  ASSERT_EQ(r.status, 0);
  EXPECT_TRUE(has(r.output, "\r  epoch 1  step ")) << r.output;
  EXPECT_TRUE(has(r.output, "ETA")) << r.output;
  // The line is erased before the epoch summary: the summary starts its own line.
  EXPECT_TRUE(has(r.output, "\repoch   1/1")) << r.output;
}
