// A checkpointed run's record so far (nets/run_parts.h): written into its checkpoint's
// metadata, read back on resume, merged into the resumed run's result.
#include <stdexcept>

#include "engine/checkpoint.h"
#include "engine/train_checkpoint.h"
#include "nets/run_parts.h"

namespace detdl::nets {

nlohmann::json so_far_json(const PreparedRun& run, const SoFar& before, const TrainResult& now,
                           double seconds) {
  std::vector<std::string> hashes = before.step_hashes;
  hashes.insert(hashes.end(), now.step_hashes.begin(), now.step_hashes.end());
  return {{"epochs", run.epochs},
          {"test_predictions", run.last_predictions},
          {"started_at", run.started},
          {"seconds", before.seconds + seconds},
          {"step_hashes", hashes},
          {"nonfinite_loss_steps", before.nonfinite_loss_steps + now.nonfinite_loss_steps}};
}

SoFar read_so_far(const std::string& path, PreparedRun& run) {
  const TensorFile f = load_safetensors(path);
  const auto it = f.metadata.find(kSoFarKey);
  if (it == f.metadata.end())
    throw std::runtime_error("checkpoint " + path + ": cannot resume with the run's record: no " +
                             kSoFarKey + " (written by detdl train, not by a study)");
  SoFar so;
  try {
    const nlohmann::json j = nlohmann::json::parse(it->second);
    run.epochs = j.at("epochs");
    if (!run.epochs.is_array()) throw std::runtime_error("epochs is not an array");
    run.last_predictions = j.at("test_predictions").get<std::vector<std::int32_t>>();
    run.started = j.at("started_at").get<std::string>();
    so.seconds = j.at("seconds").get<double>();
    so.step_hashes = j.at("step_hashes").get<std::vector<std::string>>();
    so.nonfinite_loss_steps = j.at("nonfinite_loss_steps").get<std::int64_t>();
  } catch (const std::exception& e) {
    throw std::runtime_error("checkpoint " + path + ": cannot resume: metadata " + kSoFarKey +
                             " is malformed: " + e.what());
  }
  const std::int64_t rows = run.train.size(), batch = run.cfg.batch_size;
  const std::int64_t spe = (rows + batch - 1) / batch;
  const std::int64_t step = metadata_int(path, f, "train.step");
  if (static_cast<std::int64_t>(run.epochs.size()) != step / spe)
    throw std::runtime_error("checkpoint " + path + ": cannot resume: its record holds " +
                             std::to_string(run.epochs.size()) +
                             " epochs, its weights are at step " + std::to_string(step) + " (" +
                             std::to_string(spe) + " steps per epoch)");
  return so;
}

void merge_so_far(TrainResult& result, const SoFar& before) {
  result.step_hashes.insert(result.step_hashes.begin(), before.step_hashes.begin(),
                            before.step_hashes.end());
  result.nonfinite_loss_steps += before.nonfinite_loss_steps;
  result.first_step = 0;
}

}  // namespace detdl::nets
