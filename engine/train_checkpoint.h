// The training state in a checkpoint: what is saved besides the model (the optimizer's
// state, where the run is within its epoch, the run's identity), and the checks that
// refuse a `--resume` that would not give the bits of a run never stopped
// (docs/reliability.md).
//
// A checkpoint records the run's identity: every setting that decides its bits, by the
// experiment field that sets it ("batch_size", "optimizer.momentum", "schedule.lr", ...),
// as metadata "id.<field>". A resume compares them all and names each that differs. The
// number of epochs is not part of it: raising it trains the same run for longer (a schedule
// that depends on it, cosine's t_max, is part of it). Threads and the device are not
// either: `portable` gives the same bits on any.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/checkpoint.h"
#include "engine/metrics.h"

namespace detdl {

struct TrainConfig;
class Module;
class Optimizer;

// A run's identity: every setting that decides its bits, by experiment field.
using Identity = std::map<std::string, std::string>;

// The epoch so far: what an epoch's summary is computed from, saved with every checkpoint
// so that a run resumed mid-epoch reports the same epoch as one never stopped.
struct EpochProgress {
  std::vector<float> batch_losses;  // each step's loss (data + penalties), in step order
  std::int64_t correct = 0;         // rows predicted right
  MetricAccumulator metrics;        // the BUTTER series' per-sample values
};

// This run's shape, which a checkpoint's position is checked against.
struct RunShape {
  std::int64_t rows = 0, batch_size = 1, steps_per_epoch = 1, total_steps = 0;
  bool metrics = true;
};

// Writes model (parameters and buffers, "model.<name>"), optimizer state ("optim.<name>"),
// the epoch so far ("train.*") and the identity to `path` (atomically, engine/atomic_file.h).
// `extra`: the caller's own metadata, under keys that start with "caller." (the batched
// trainer's record so far: nets/experiment_batched.cpp), covered by the metadata's CRC.
void save_training_checkpoint(const std::string& path, const Module& model, const Optimizer& opt,
                              std::int64_t step, const EpochProgress& progress, const Identity& id,
                              const std::map<std::string, std::string>& extra = {});

// Restores model, optimizer and progress from `path` after checking every field (below and
// the weights against model.hash); returns the step to continue from. Throws
// std::runtime_error naming the file and the field; the model may be half-restored then.
std::int64_t restore_training_checkpoint(const std::string& path, Module& model, Optimizer& opt,
                                         EpochProgress& progress, const Identity& id,
                                         const RunShape& shape);

// The identity of a training config (cfg.identity, the caller's extra fields, included).
Identity training_identity(const TrainConfig& cfg);

// Writes the identity into `meta` as "id.<field>" pairs.
void put_identity(std::map<std::string, std::string>& meta, const Identity& id);

// Throws std::runtime_error naming the checkpoint and every field whose value differs
// (with both values), or that the checkpoint lacks.
void check_identity(const std::string& path, const std::map<std::string, std::string>& meta,
                    const Identity& want);

// The shortest decimal that reads back as the same float ("0.05", not "0.0500000007").
std::string exact_float(float v);

// The training position stored in a checkpoint, each field checked against the others and
// against the run: 0 <= step <= last step, the optimizer's step count equal to it, the
// epoch's losses, correct count and metric values covering exactly the rows seen so far.
struct ResumePosition {
  std::int64_t step = 0;
  std::int64_t epoch_correct = 0;
  std::vector<float> batch_losses;
};
// rows: training rows; steps_per_epoch, total_steps: this run's; metrics_samples: the
// number of per-sample metric values stored (every metric the same; -1: none stored).
ResumePosition check_position(const std::string& path, const TensorFile& f, std::int64_t rows,
                              std::int64_t batch_size, std::int64_t steps_per_epoch,
                              std::int64_t total_steps);

// An integer metadata field, refused with the file and field named when missing or not
// an integer (trailing characters and overflow included).
std::int64_t metadata_int(const std::string& path, const TensorFile& f, const std::string& key);

}  // namespace detdl
