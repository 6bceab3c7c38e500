// The run option flush_subnormals (TensorFlow's CPU arithmetic, kernels/cpu/fpmode.h) through
// experiments: its JSON form (only when true), its refusal on the CUDA device, a run whose
// every thread flushes while it trains and none after, the same bits on 1 and 2 threads,
// a checkpoint that cannot be resumed by a run of the other arithmetic, and repetitions
// trained together that give each run's bits alone.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

#include "kernels/cpu/fpmode.h"
#include "kernels/cpu/parallel.h"
#include "nets/experiment.h"
#include "tests/nets/butter_experiments.h"

namespace detdl::nets {
namespace {

namespace fs = std::filesystem;

Experiment tiny_mlp() {
  Experiment e;
  e.net = "mlp:16";
  e.data = "blobs";
  e.epochs = 2;
  e.batch_size = 64;
  e.schedule.base_lr = 0.05f;
  return e;
}

TEST(FlushSubnormalsRuns, JsonFormOnlyWhenTrueAndRefusedOnCuda) {
  Experiment e = tiny_mlp();
  EXPECT_FALSE(to_json(e).contains("flush_subnormals"));  // other records keep their form
  e.flush_subnormals = true;
  const auto j = to_json(e);
  EXPECT_EQ(j.at("flush_subnormals"), true);
  EXPECT_TRUE(experiment_from_json(j).flush_subnormals);
  auto cuda = j;
  cuda["device"] = "cuda";
  try {
    experiment_from_json(cuda, "study.toml");
    ADD_FAILURE() << "a CUDA run with flush_subnormals was accepted";
  } catch (const std::invalid_argument& ex) {
    EXPECT_NE(std::string(ex.what()).find("study.toml.flush_subnormals"), std::string::npos)
        << ex.what();
  }
  auto bad = j;
  bad["flush_subnormals"] = "yes";
  EXPECT_THROW(experiment_from_json(bad), std::invalid_argument);
}

TEST(FlushSubnormalsRuns, EveryThreadFlushesWhileTrainingAndNoneAfter) {
  for (int threads : {1, 2}) {
    Experiment e = tiny_mlp();
    e.flush_subnormals = true;
    e.threads = threads;
    int steps = 0, caller_flushing = 0, workers_flushing = 0;
    RunOptions ro;
    ro.on_step = [&](const StepProgress&) {
      ++steps;
      caller_flushing += cpu::thread_flushes_subnormals();
      std::vector<char> w(threads, 0);
      cpu::parallel_ranges(threads, [&](std::int64_t, std::int64_t, int i) {
        w[i] = cpu::thread_flushes_subnormals();
      });
      int all = 1;
      for (char f : w) all &= f;
      workers_flushing += all;
    };
    const RunOutput out = run_experiment(e, ro);
    EXPECT_GT(steps, 0);
    EXPECT_EQ(caller_flushing, steps);
    EXPECT_EQ(workers_flushing, steps);
    EXPECT_EQ(out.record["experiment"]["flush_subnormals"], true);
    EXPECT_FALSE(cpu::thread_flushes_subnormals());
    EXPECT_FALSE(cpu::flush_subnormals());
  }
  cpu::set_num_threads(1);
}

TEST(FlushSubnormalsRuns, SameBitsOnOneAndTwoThreads) {
  Experiment e = test_butter::butter("wine_quality_white", "rectangle", 3, 1024);
  e.flush_subnormals = true;
  e.threads = 1;
  RunOptions ro;
  ro.step_hashes = true;
  const RunOutput one = run_experiment(e, ro);
  e.threads = 2;
  const RunOutput two = run_experiment(e, ro);
  EXPECT_EQ(one.result.step_hashes, two.result.step_hashes);
  EXPECT_EQ(one.result.weight_hash, two.result.weight_hash);
  cpu::set_num_threads(1);
}

TEST(FlushSubnormalsRuns, CheckpointOfTheOtherArithmeticIsRefused) {
  const fs::path dir = fs::temp_directory_path() / ("detdl_flush_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (bool flushed_first : {true, false}) {
    const std::string path = (dir / (flushed_first ? "a.safetensors" : "b.safetensors")).string();
    Experiment e = tiny_mlp();
    e.flush_subnormals = flushed_first;
    RunOptions stop;
    stop.checkpoint_path = path;
    stop.stop_after_steps = 3;
    run_experiment(e, stop);
    e.flush_subnormals = !flushed_first;
    RunOptions resume;
    resume.checkpoint_path = path;
    resume.resume = true;
    try {
      run_experiment(e, resume);
      ADD_FAILURE() << "resumed a checkpoint of the other arithmetic";
    } catch (const std::exception& ex) {
      EXPECT_NE(std::string(ex.what()).find("flush_subnormals"), std::string::npos) << ex.what();
    }
    e.flush_subnormals = flushed_first;  // its own arithmetic resumes
    EXPECT_NO_THROW(run_experiment(e, resume));
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace detdl::nets
