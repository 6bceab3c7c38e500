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
// The run record and output once training returned `result` after total_seconds.
RunOutput finish_run(PreparedRun& run, const Experiment& e, const RunOptions& opt,
                     TrainResult result, double total_seconds);

}  // namespace detdl::nets
