// A run alone with its record in its checkpoints (RunOptions::record_in_checkpoint, the study
// runner's): stopped at an epoch's end or inside an epoch and resumed, its output is the
// uninterrupted run's (weights, step hashes, every epoch's series and predictions), its
// record saying where it resumed; a checkpoint without the record (detdl train's) or one
// whose record disagrees with its weights is refused with the file named.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "engine/checkpoint.h"
#include "nets/experiment.h"

namespace detdl::nets {
namespace {

namespace fs = std::filesystem;

Experiment small_cnn() {
  Experiment e;
  e.net = "lenet1";
  e.data = "synthetic-mnist:600";  // 600 rows, batch 128: 5 steps per epoch, the last short
  e.epochs = 4;
  e.batch_size = 128;
  e.optimizer.kind = OptimizerConfig::Kind::adam;
  e.schedule.base_lr = 1e-3f;
  e.threads = 2;
  return e;
}

RunOptions recorded(const std::string& path) {
  RunOptions ro;
  ro.step_hashes = true;
  ro.epoch_predictions = true;
  ro.keep_weights_up_to = 1'000'000;
  ro.checkpoint_path = path;
  ro.record_in_checkpoint = true;
  ro.resume = true;
  return ro;
}

// The record as stored (JSON text), without times and the resume's step.
nlohmann::json without_times(const nlohmann::json& record) {
  nlohmann::json r = nlohmann::json::parse(record.dump());
  for (const char* k : {"timings", "started_at", "resumed_from_step"}) r.erase(k);
  for (auto& ep : r["epochs"])
    for (const char* k : {"seconds", "train_seconds", "validation_seconds", "test_seconds"})
      ep.erase(k);
  return r;
}

TEST(RunCheckpoint, AStoppedRunResumesToTheRecordOfOneNeverStopped) {
  const Experiment e = small_cnn();
  RunOptions plain = recorded("");
  plain.checkpoint_path.clear();
  const RunOutput whole = run_experiment(e, plain);
  ASSERT_EQ(whole.result.steps, 20);
  const fs::path dir = fs::temp_directory_path() / "detdl_run_ck";
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const std::int64_t stop : {10, 7, 13}) {  // an epoch's end, inside epochs 1 and 2
    SCOPED_TRACE("stopped after step " + std::to_string(stop));
    const std::string path = (dir / ("run" + std::to_string(stop) + ".safetensors")).string();
    RunOptions first = recorded(path);
    first.stop_after_steps = stop;
    const RunOutput part = run_experiment(e, first);
    ASSERT_TRUE(part.result.stopped_early);
    const TensorFile f = load_safetensors(path);
    EXPECT_EQ(f.metadata.at("caller.epochs_done"), std::to_string(stop / 5));
    const RunOutput resumed = run_experiment(e, recorded(path));
    EXPECT_EQ(resumed.record["resumed_from_step"], stop);
    EXPECT_EQ(resumed.result.weight_hash, whole.result.weight_hash);
    EXPECT_EQ(resumed.result.step_hashes, whole.result.step_hashes);
    EXPECT_EQ(resumed.final_weights, whole.final_weights);
    const nlohmann::json diff =
        nlohmann::json::diff(without_times(whole.record), without_times(resumed.record));
    EXPECT_TRUE(diff.empty()) << diff.dump().substr(0, 2000);
    EXPECT_EQ(resumed.record["timings"]["epoch_seconds"].size(), 4u);
  }
}

TEST(RunCheckpoint, ACheckpointWithoutTheRecordOrOutOfStepIsRefused) {
  const Experiment e = small_cnn();
  const fs::path dir = fs::temp_directory_path() / "detdl_run_ck_refused";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / "run.safetensors").string();
  auto refused = [&](const std::string& why) {
    try {
      run_experiment(e, recorded(path));
      ADD_FAILURE() << "resumed: " << why;
    } catch (const std::runtime_error& ex) {
      EXPECT_NE(std::string(ex.what()).find(path), std::string::npos) << ex.what();
      EXPECT_NE(std::string(ex.what()).find(why), std::string::npos) << ex.what();
    }
  };
  // detdl train's checkpoint: no record.
  RunOptions train = recorded(path);
  train.record_in_checkpoint = false;
  train.stop_after_steps = 5;
  run_experiment(e, train);
  refused("caller.record_so_far");
  // A record of 2 epochs beside weights after 1.
  RunOptions first = recorded(path);
  first.stop_after_steps = 10;
  fs::remove(path);
  run_experiment(e, first);
  TensorFile two = load_safetensors(path);
  first.stop_after_steps = 5;
  fs::remove(path);
  run_experiment(e, first);
  TensorFile one = load_safetensors(path);
  one.metadata["caller.record_so_far"] = two.metadata.at("caller.record_so_far");
  save_safetensors(path, one);
  refused("its record holds 2 epochs");
}

}  // namespace
}  // namespace detdl::nets
