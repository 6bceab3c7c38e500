// The three stages of run_experiment (nets/experiment.h), for the trainers that run
// several experiments at once (nets/experiment_batched.cpp): prepare a run (data, net,
// training config, the run's own training set), record each epoch into its record, and
// finish the record once training is done. Not a public interface.
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nets/experiment.h"

namespace detdl::nets {

struct PreparedRun {
  std::shared_ptr<const data::DataBundle> bundle;
  NetSpec net;
  TrainConfig cfg;
  Dataset train;       // the bundle's, or this run's copy with label noise
  Dataset validation;  // the head of the validation split (validation_rows), when cut
  bool cut_validation = false;
  nlohmann::json epochs = nlohmann::json::array();  // the record's per-epoch series so far
  std::vector<std::int32_t> last_predictions;
  std::string started;  // utc_now() when training started
  EvalSets evals() const;
};

// Loads the data (shared), builds the net and the config; throws std::invalid_argument
// naming the field for a bad experiment.
PreparedRun prepare_run(const Experiment& e, const RunOptions& opt);
// Adds one epoch to run.epochs (and calls opt.on_epoch).
void record_epoch(PreparedRun& run, const Experiment& e, const RunOptions& opt,
                  const EpochStats& s);
// A checkpointed run's record so far, in its file's metadata ("caller.record_so_far"; and
// "caller.epochs_done"): what the record gathers over the run (the epochs' series, the last
// test predictions, the step hashes) and what a resumed run adds to (its start, the seconds
// already spent, non-finite steps). The study runner's checkpoints carry it, so that a
// resumed run's record is the uninterrupted run's.
inline constexpr const char* kSoFarKey = "caller.record_so_far";
inline constexpr const char* kEpochsDoneKey = "caller.epochs_done";
struct SoFar {  // what the resumed call's result lacks
  std::vector<std::string> step_hashes;
  std::int64_t nonfinite_loss_steps = 0;
  double seconds = 0.0;
};
// The record so far: run's epochs and predictions, before's and now's (this call's result so
// far) hashes and counts, before's seconds + `seconds`.
nlohmann::json so_far_json(const PreparedRun& run, const SoFar& before, const TrainResult& now,
                           double seconds);
// Restores run's epochs, predictions and start from the checkpoint at `path` and returns
// the rest; throws std::runtime_error naming the file when the metadata is missing,
// malformed, or holds other than the epochs its weights have finished (train.step).
SoFar read_so_far(const std::string& path, PreparedRun& run);
// The resumed call's result made the whole run's: before's step hashes and counts added.
void merge_so_far(TrainResult& result, const SoFar& before);

// The run record and output once training returned `result` after total_seconds.
RunOutput finish_run(PreparedRun& run, const Experiment& e, const RunOptions& opt,
                     TrainResult result, double total_seconds);

}  // namespace detdl::nets
