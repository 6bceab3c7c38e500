// An experiment: everything that defines one training run (net, data, training config,
// every seed, the determinism level per op family). A run is a pure function of its
// Experiment: the same Experiment gives the same bits (in `portable`, on any thread
// count), which is what lets a study skip runs it has stored and resume one that died.
//
// The JSON form is the study files' and the run records' `experiment` object; presets
// give the dl-variance and BUTTER configurations (docs/cli.md).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/train.h"
#include "nets/butter_batched.h"
#include "nets/data/registry.h"
#include "nets/edits.h"
#include "nets/zoo.h"

namespace detdl::nets {

struct Seeds {
  std::uint64_t init = 1, order = 1, augment = 1, dropout = 1, label_noise = 1, split = 1;
  // The implementation seed: which legitimate implementation each emulated family runs
  // (kernels/common/impl_choice.h). Read only where emulation is on.
  std::uint64_t impl = 1;
};

struct Experiment {
  std::string net = "mlp";
  std::string data = "blobs";
  std::string data_dir;             // root of named data sets (empty: data::data_root())
  std::string preprocess = "none";  // none | pixel-mean | channel-std
  bool study_split = false;         // validation = first 7,500 test images, test = last 2,500
  // none | crop-flip | shift-flip:FRAC | shift-reflect-flip:FRAC (Keras's continuous shifts,
  // bilinear) | shift-int-flip:FRAC | shift-int-reflect-flip:FRAC (whole-pixel shifts)
  std::string augment = "none";
  double label_noise = 0.0;  // fraction of training targets disturbed (BUTTER's rules)
  // Nonzero: one initial weight, drawn from this value, moves by one ulp (TrainConfig::
  // init_nudge): instability studies. In the JSON form only when nonzero.
  std::uint64_t init_nudge = 0;
  // Nonzero: validation metrics over the validation split's first N rows only. The
  // dl-variance study's Keras generator evaluated 7500 // 128 = 58 batches, 7,424 of its
  // 7,500 images (docs/reproduction.md item 10); detdl evaluates all by default. Changes only
  // what best_loss / best_acc select, never the weights. In the JSON form only when nonzero.
  std::int64_t validation_rows = 0;
  std::int64_t epochs = 5;
  std::int64_t batch_size = 32;
  std::string loss = "auto";  // auto (from the data set's task) | softmax_ce | bce | mse
  OptimizerConfig optimizer;
  Schedule schedule;
  float l1 = 0.0f, l2 = 0.0f;  // loss-term penalties on the net's chosen parameters
  // Edits of the net (nets/edits.h) and reduce-on-plateau (engine/schedule.h): the training
  // doctor's repairs. In the JSON form only when set, so other records keep their form.
  NetEdits edits;
  Plateau plateau;
  Seeds seeds;
  Level level = Level::portable;
  std::vector<OpFamily> fast_ops;  // families run at `fast` whatever the level
  // Implementation families emulated at any level (--emulated-op); level `emulated` emulates
  // them all. In the JSON form (with seeds.impl) only when emulation is on, so records of
  // other runs keep the form and identity they had before the level existed.
  std::vector<ImplFamily> emulated_ops;
  int threads = 1;
  // TensorFlow's CPU arithmetic (TrainConfig::flush_subnormals, kernels/cpu/fpmode.h):
  // subnormals flushed to zero in every thread. CPU only. In the JSON form only when true,
  // so every other record keeps its form and identity.
  bool flush_subnormals = false;
  bool metrics = true;  // the 20 BUTTER series and per-class accuracy
  // Where the steps run: cpu | cuda (TrainConfig::device). In the JSON form only when it is
  // not cpu, so CPU records keep the form (and identity) they had before devices existed.
  Device device = Device::cpu;
  // Whose kernels a CUDA run uses: own | vendor (cuBLAS / cuDNN, engine/context.h). In the
  // JSON form only when it is not own, so existing records keep their form and identity.
  // vendor needs device cuda (run_experiment throws otherwise).
  Implementation implementation = Implementation::own;

  RunContext context() const;
  bool emulation_on() const { return level == Level::emulated || !emulated_ops.empty(); }
};

// Bounds on the counts (a typo of a few digits is refused, not run for a year).
inline constexpr std::int64_t kMaxEpochs = 1'000'000;
inline constexpr std::int64_t kMaxBatchSize = 1 << 24;
inline constexpr int kMaxThreads = 1024;

// Emulation the experiment's device cannot run (the CUDA backend emulates every family, on
// its own kernels only: not with implementation vendor):
// {field, reason}, or two empty strings when it can. experiment_from_json and prepare_run
// refuse with it.
std::pair<std::string, std::string> device_emulation_refusal(const Experiment& e);

nlohmann::json to_json(const Experiment& e);
// JSON null anywhere in `j` is an error naming its path: a config merged over a preset
// would otherwise silently drop the field to the engine's default (merge-patch semantics).
void reject_nulls(const nlohmann::json& j, const std::string& where);
// Reads the JSON form. Every field is optional (defaults above); an unknown field, a wrong
// type, null, or a bad value (out of range, NaN, Inf) throws std::invalid_argument naming
// the field (with `where`, e.g. the study file, as its prefix). This is the one validation
// path: `detdl train` flags and study files are turned into this form and read by it.
Experiment experiment_from_json(const nlohmann::json& j, const std::string& where = "experiment");

// Presets: the files presets/NAME.json (the `--config` format: fields over the defaults;
// compiled in): lenet1, lenet4, lenet5, resnet38, resnet56 (also resnet20), wrn-28-10 (the
// dl-variance configurations of ../shared/design/VARIANCE.md) and butter (BUTTER's
// wine_quality_white rectangle depth 3 size 1024, Adam 1e-4, batch 256). A preset is read
// by experiment_from_json like any config. preset_names() is in file-name order.
Experiment preset(const std::string& name);
std::vector<std::string> preset_names();

struct RunOptions {
  // Called once the data set is loaded and the net built, before training.
  std::function<void(const data::DataBundle&, const NetSpec&)> on_start;
  std::function<void(const EpochStats&)> on_epoch;
  std::function<void(const StepProgress&)> on_step;  // after every step (progress display)
  std::string checkpoint_path;                       // empty: none
  std::int64_t checkpoint_every = 0;
  double checkpoint_seconds = 0.0;  // TrainConfig::checkpoint_seconds
  bool resume = false;
  // The checkpoints also hold the run's record so far (nets/run_parts.h), and a resume
  // restores it: the output is the uninterrupted run's, its record saying resumed_from_step
  // (the study runner's; `detdl train --resume` records the resumed call only).
  bool record_in_checkpoint = false;
  std::int64_t stop_after_steps = -1;
  bool step_hashes = false;  // record the weight hash after every step ("step_hashes")
  std::function<void(std::int64_t step, const Module& model)> on_step_model;  // after each step
  bool epoch_predictions = false;  // record each epoch's test predictions (for selection + churn)
  // Keep the final parameters (model order, concatenated) in RunOutput::final_weights when
  // the model has at most this many (weight-space distances in studies); 0: never.
  std::int64_t keep_weights_up_to = 0;
  // The training monitor (engine/monitor.h): each probed epoch's record gets "monitor".
  MonitorConfig monitor;
  // Asked after each epoch: true stops the run there (TrainConfig::stop_after_epoch).
  std::function<bool(const EpochStats&)> stop_after_epoch;
};

struct RunOutput {
  TrainResult result;
  nlohmann::json record;  // the run record (docs/cli.md, "Run records")
  std::int64_t parameters = 0;
  std::string net_description;
  std::vector<float> final_weights;  // see RunOptions::keep_weights_up_to
};

// Loads the data (shared, data::load_data), builds the net, trains, and returns the result
// with its run record: config, versions, host, timings, per-epoch series, hashes and the
// final test predictions.
RunOutput run_experiment(const Experiment& e, const RunOptions& opt = {});

// Why these experiments cannot be trained together (empty when they can): only BUTTER
// nets on the CPU at `portable` or `repeatable` (no fast families, no emulation, no
// augmentation), and experiments that differ in nothing but their seeds (init, order,
// label noise, split, ...; their threads included: the first's are used).
std::string batch_refusal(const std::vector<Experiment>& es);

// The experiments trained together as one batched computation (nets/butter_batched.h).
// Output i is run_experiment(es[i], opt)'s, bit for bit (hashes, series, predictions, the
// record), except its timings, which are the batch's (all repetitions together), and
// record["batched"] = {"repetitions": R, "index": i}. The options may not ask for
// checkpoints, a step limit or per-step callbacks. Throws std::invalid_argument with
// batch_refusal's reason. order: nets::BatchOrder (every order gives the same bits; by
// lanes is the fastest on the CPU).
//
// checkpoints (paths, resume, every_seconds, stop_after_epochs; its `extra` is this
// function's): each run's file also holds its record so far (metadata
// "caller.record_so_far"; "caller.epochs_done" its epochs), so a resumed run's output is the
// uninterrupted run's (its record
// says resumed_from_step; its timings add the time before the checkpoint). Stopped by
// stop_after_epochs, it returns no outputs.
std::vector<RunOutput> run_experiments_batched(const std::vector<Experiment>& es,
                                               const RunOptions& opt = {},
                                               BatchOrder order = BatchOrder::by_lanes,
                                               const BatchedCheckpoints* checkpoints = nullptr);

// The current time as ISO 8601 UTC ("2026-12-01T14:49:08Z"), for records and stores.
std::string utc_now();

}  // namespace detdl::nets
