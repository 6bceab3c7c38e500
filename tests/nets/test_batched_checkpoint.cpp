// Checkpoints of repetitions trained together (nets/butter_batched.h, BatchedCheckpoints):
// a batch stopped at an epoch's end and resumed from its files gives every run the output of
// the batch never stopped (weights, step hashes, the record's series and predictions), in
// each step order; a stop, a second stop and resume, and every-epoch writes included. Files
// that do not fit (missing, corrupt, another run's, other epochs) are refused with the file
// named, never resumed into bits of no run.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/checkpoint.h"
#include "nets/experiment.h"
#include "tests/nets/butter_experiments.h"

namespace detdl::nets {
namespace {

using test_butter::butter;
using test_butter::repetitions;

namespace fs = std::filesystem;

// The record as stored (JSON text: NaN is null, as a resumed record's epochs are), without
// what says when and how long, and without whether it was resumed.
nlohmann::json without_times(const nlohmann::json& record) {
  nlohmann::json r = nlohmann::json::parse(record.dump());
  r.erase("timings");
  r.erase("started_at");
  r.erase("resumed_from_step");
  for (auto& ep : r["epochs"])
    for (const char* k : {"seconds", "train_seconds", "validation_seconds", "test_seconds"})
      ep.erase(k);
  return r;
}

RunOptions options() {
  RunOptions ro;
  ro.step_hashes = true;
  ro.epoch_predictions = true;
  ro.keep_weights_up_to = 1'000'000;
  return ro;
}

fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("detdl_batched_ck_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

BatchedCheckpoints files_in(const fs::path& dir, std::size_t runs) {
  BatchedCheckpoints ck;
  for (std::size_t i = 0; i < runs; ++i)
    ck.paths.push_back((dir / ("run" + std::to_string(i) + ".safetensors")).string());
  ck.every_seconds = 1e9;  // only where the test stops
  return ck;
}

void expect_same_runs(const std::vector<RunOutput>& got, const std::vector<RunOutput>& want,
                      std::int64_t resumed_from_step) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE("run " + std::to_string(i));
    EXPECT_EQ(got[i].result.weight_hash, want[i].result.weight_hash);
    EXPECT_EQ(got[i].result.step_hashes, want[i].result.step_hashes);
    EXPECT_EQ(got[i].final_weights, want[i].final_weights);
    // The difference only, where there is one (a record is long).
    const nlohmann::json diff =
        nlohmann::json::diff(without_times(want[i].record), without_times(got[i].record));
    EXPECT_TRUE(diff.empty()) << diff.dump().substr(0, 2000);
    EXPECT_EQ(got[i].record["resumed_from_step"], resumed_from_step);
    EXPECT_EQ(got[i].record["timings"]["epoch_seconds"].size(), want[i].record["epochs"].size());
  }
}

// Stops after `stop` epochs (checkpoints written), then resumes to the end.
std::vector<RunOutput> stopped_and_resumed(const std::vector<Experiment>& es, const fs::path& dir,
                                           std::int64_t stop, BatchOrder order) {
  BatchedCheckpoints ck = files_in(dir, es.size());
  ck.stop_after_epochs = stop;
  EXPECT_TRUE(run_experiments_batched(es, options(), order, &ck).empty());
  for (const auto& p : ck.paths) EXPECT_TRUE(fs::exists(p)) << p;
  ck.stop_after_epochs = -1;
  ck.resume = true;
  return run_experiments_batched(es, options(), order, &ck);
}

TEST(BatchedCheckpoint, AStoppedBatchResumesToTheBitsOfOneNeverStopped) {
  // Softmax cross-entropy with the BUTTER metrics, label noise (each run its own labels).
  Experiment e = butter("wine_quality_white", "rectangle_residual", 4, 1024);
  e.epochs = 4;
  e.label_noise = 0.05;
  const std::vector<Experiment> es = repetitions(e, 5, 300);  // one lane group, two with AVX2
  const std::vector<RunOutput> whole = run_experiments_batched(es, options());
  const fs::path dir = fresh_dir("whole");
  const std::int64_t spe = whole[0].result.steps / 4;
  for (const BatchOrder order :
       {BatchOrder::by_lanes, BatchOrder::by_layer, BatchOrder::by_repetition}) {
    SCOPED_TRACE("order " + std::to_string(static_cast<int>(order)));
    expect_same_runs(stopped_and_resumed(es, dir, 2, order), whole, 2 * spe);
  }
  // The time before the stop is counted in the resumed run's total.
  BatchedCheckpoints ck = files_in(dir, es.size());
  ck.stop_after_epochs = 1;
  run_experiments_batched(es, options(), BatchOrder::by_lanes, &ck);
  const TensorFile f = load_safetensors(ck.paths[0]);
  const double before =
      nlohmann::json::parse(f.metadata.at("caller.record_so_far")).at("seconds").get<double>();
  EXPECT_GT(before, 0.0);
  ck.stop_after_epochs = -1;
  ck.resume = true;
  const auto out = run_experiments_batched(es, options(), BatchOrder::by_lanes, &ck);
  EXPECT_GT(out[0].record["timings"]["total_seconds"].get<double>(), before);
}

TEST(BatchedCheckpoint, StoppedTwiceAndWrittenEveryEpoch) {
  // Binary cross-entropy on one sigmoid output, L1 and L2 penalties.
  Experiment e = butter("banana", "rectangle", 3, 512);
  e.epochs = 5;
  e.l1 = 1e-4f;
  e.l2 = 1e-3f;
  const std::vector<Experiment> es = repetitions(e, 3, 300);
  const std::vector<RunOutput> whole = run_experiments_batched(es, options());
  const fs::path dir = fresh_dir("twice");
  BatchedCheckpoints ck = files_in(dir, es.size());
  ck.stop_after_epochs = 1;
  EXPECT_TRUE(run_experiments_batched(es, options(), BatchOrder::by_lanes, &ck).empty());
  ck.resume = true;
  ck.stop_after_epochs = 3;
  EXPECT_TRUE(run_experiments_batched(es, options(), BatchOrder::by_lanes, &ck).empty());
  ck.stop_after_epochs = -1;
  ck.every_seconds = 0.0;  // a write at every epoch end but the last
  const auto out = run_experiments_batched(es, options(), BatchOrder::by_lanes, &ck);
  const std::int64_t spe = whole[0].result.steps / 5;
  expect_same_runs(out, whole, 3 * spe);
  // The last write was after epoch 4 of 5: its record holds 4 epochs.
  const TensorFile f = load_safetensors(ck.paths[2]);
  EXPECT_EQ(f.metadata.at("train.step"), std::to_string(4 * spe));
  EXPECT_EQ(nlohmann::json::parse(f.metadata.at("caller.record_so_far"))["epochs"].size(), 4u);
}

TEST(BatchedCheckpoint, FilesThatDoNotFitAreRefusedWithTheFileNamed) {
  Experiment e = butter("wine_quality_white", "rectangle", 3, 512);
  e.epochs = 3;
  const std::vector<Experiment> es = repetitions(e, 2, 300);
  const fs::path dir = fresh_dir("refused");
  BatchedCheckpoints ck = files_in(dir, es.size());
  auto refused = [&](const std::vector<Experiment>& runs, const std::string& file,
                     const std::string& why) {
    BatchedCheckpoints r = ck;
    r.resume = true;
    r.stop_after_epochs = -1;
    try {
      run_experiments_batched(runs, options(), BatchOrder::by_lanes, &r);
      ADD_FAILURE() << "resumed: " << why;
    } catch (const std::exception& ex) {
      EXPECT_NE(std::string(ex.what()).find(file), std::string::npos) << ex.what();
      EXPECT_NE(std::string(ex.what()).find(why), std::string::npos) << ex.what();
    }
  };
  refused(es, ck.paths[0], "missing");

  ck.stop_after_epochs = 1;
  ASSERT_TRUE(run_experiments_batched(es, options(), BatchOrder::by_lanes, &ck).empty());
  // Another run's seeds: the identity names the field.
  std::vector<Experiment> other = es;
  other[1].seeds.init += 1;
  refused(other, ck.paths[1], "seeds.init");
  // Runs at different epochs: run 1's file after 2 epochs, run 0's after 1.
  const fs::path kept = dir / "run0.after1";
  fs::copy_file(ck.paths[0], kept);
  ck.stop_after_epochs = 2;
  ck.resume = true;
  ASSERT_TRUE(run_experiments_batched(es, options(), BatchOrder::by_lanes, &ck).empty());
  fs::copy_file(kept, ck.paths[0], fs::copy_options::overwrite_existing);
  refused(es, ck.paths[1], "lockstep");
  // A truncated file.
  fs::resize_file(ck.paths[0], fs::file_size(ck.paths[0]) / 2);
  refused(es, ck.paths[0], "truncated");
  // A trainer's checkpoint without the batch's record.
  {
    TensorFile f = load_safetensors(ck.paths[1]);
    f.metadata.erase("caller.record_so_far");
    save_safetensors(ck.paths[0], f);
  }
  refused(es, ck.paths[0], "caller.record_so_far");
}

}  // namespace
}  // namespace detdl::nets
