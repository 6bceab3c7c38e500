// The training loop: mini-batch SGD-style training of a Module on an in-memory data set,
// with per-epoch metrics, checkpoints and exact resume.
//
// A run is a pure function of its config: the data order of epoch e is the Philox
// permutation keyed by (order seed, e); dropout is keyed by (dropout seed, step, layer,
// element); so a run stopped after step k and resumed from its checkpoint gives the same
// bits as one never stopped.
#pragma once
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/context.h"
#include "engine/dataset.h"
#include "engine/metrics.h"
#include "engine/monitor.h"
#include "engine/optim.h"
#include "engine/schedule.h"
#include "engine/train_checkpoint.h"
#include "kernels/common/level.h"
#include "kernels/common/permutation.h"

namespace detdl {

// Where a run is, for progress displays.
struct StepProgress {
  std::int64_t step = 0;  // steps done, from the run's start (a resumed run starts past 0)
  std::int64_t total_steps = 0;
  std::int64_t steps_per_epoch = 0;
  std::int64_t first_step = 0;     // where this call started (resume)
  double seconds = 0.0;            // since this call started training
  std::int64_t rows_per_step = 0;  // batch size
};

struct EpochStats;
struct TrainResult;

struct TrainConfig {
  std::int64_t epochs = 1;
  std::int64_t batch_size = 32;
  LossKind loss = LossKind::softmax_ce;
  OptimizerConfig optimizer;
  Schedule schedule;
  Plateau plateau;             // reduce-on-plateau over the schedule (not with checkpoints)
  float l1 = 0.0f, l2 = 0.0f;  // penalties added to the loss on the parameters `penalize` picks
  // Which parameters the L1/L2 penalties apply to; unset: weights (parameters with 2+ dims),
  // not biases or norm scales. The study presets pick e.g. conv kernels only.
  std::function<bool(const NamedTensor&)> penalize;
  std::uint64_t init_seed = 1, order_seed = 1, dropout_seed = 1;
  // Instability studies (docs/determinism.md): nonzero moves one initial weight by one ulp
  // (toward +infinity) after initialisation; which one is drawn from this value
  // (nudged_element). Everything else stays as it was: a run that differs by one bit.
  std::uint64_t init_nudge = 0;
  // In-place augmentation of a training batch xb (B, ...), whose row b is training sample
  // rows[b], in epoch `epoch`. It must draw only from (its seed, epoch, sample index) so
  // that a run stays a pure function of its config (docs/determinism.md, "Randomness").
  std::function<void(Tensor& xb, const std::int64_t* rows, std::int64_t epoch)> augment;
  bool metrics = true;       // the BUTTER series and per-class accuracy each epoch
  bool step_hashes = false;  // record the weight hash after every step (divergence studies)
  bool shuffle = true;
  RunContext context;  // determinism level per op family
  // Where the steps run. Device::cuda: the model is initialised (or restored) on the host,
  // moved to the GPU for the run and moved back when fit returns; the data set stays on
  // the host, each batch is gathered (and augmented) there and copied over; the metrics
  // are computed on the host from the outputs copied back.
  Device device = Device::cpu;
  int threads = 1;
  // TensorFlow's CPU arithmetic: subnormal floats flushed to zero, as results (FTZ) and as
  // operands (DAZ), in every thread of the run (kernels/cpu/fpmode.h). CPU only.
  bool flush_subnormals = false;
  std::string checkpoint_path;        // empty: none
  std::int64_t checkpoint_every = 0;  // steps between checkpoints (0: at epoch ends only)
  // With checkpoint_every 0: an epoch end's checkpoint only this many seconds after the
  // last one (0: every epoch end); a stop (stop_after_steps) always writes one.
  double checkpoint_seconds = 0.0;
  // The caller's metadata written into each checkpoint (keys "caller.*";
  // save_training_checkpoint), given the result so far (the study runner's record so far:
  // nets/experiment.cpp).
  std::function<std::map<std::string, std::string>(const TrainResult&)> checkpoint_extra;
  std::int64_t stop_after_steps =
      -1;  // stop (after checkpointing) once this many steps are done (0: before the first)
  // Settings outside this config that decide the run's bits (the data set, the net, ...),
  // by experiment field: written into checkpoints with the config's own (engine/train_checkpoint.h)
  // and compared on resume.
  std::map<std::string, std::string> identity;
  // Called after every step (progress display); cheap callers only.
  std::function<void(const StepProgress&)> on_step;
  // Called after every step with the model (twin runs measure weight distances over steps).
  std::function<void(std::int64_t step, const Module& model)> on_step_model;
  // The training monitor (engine/monitor.h): probes at the ends of the epochs it names,
  // into EpochStats::monitor. Off by default; it never changes the run's bits.
  MonitorConfig monitor;
  // Asked after each epoch (after on_epoch): true stops the run there, after its checkpoint
  // (the training doctor stops a run it has diagnosed, as AutoTrainer does).
  std::function<bool(const EpochStats&)> stop_after_epoch;
};

// The element that TrainConfig::init_nudge moves: (parameter index, element index) in
// Module::parameters() order, drawn uniformly over all their elements from the nudge value.
std::pair<std::size_t, std::int64_t> nudged_element(const Module& model, std::uint64_t nudge);

using MetricValues = std::array<double, kMetricCount>;

// A model evaluated on one data set in eval mode.
struct EvalResult {
  float loss = 0.0f;
  float accuracy = 0.0f;
  MetricValues metrics{};                  // the BUTTER series (engine/metrics.h), if computed
  std::vector<double> per_class_accuracy;  // softmax-CE models: per class (NaN: no rows)
  std::vector<std::int32_t> predictions;   // softmax-CE models: argmax per row (for churn)
};

struct EpochStats {
  std::int64_t epoch = 0;  // 0-based
  // Keras's: each batch's loss (data + L1/L2 penalties) weighted by its rows, over the rows
  // (canonical sum of loss_b * rows_b, / rows); test and validation losses add the penalty.
  float train_loss = 0.0f;
  float train_accuracy = 0.0f;
  MetricValues train_metrics{};  // running means over the epoch's batches (Keras semantics)
  float test_loss = 0.0f;        // over the whole test set, eval mode
  float test_accuracy = 0.0f;
  EvalResult test;        // full evaluation of the test set (when one is given)
  EvalResult validation;  // and of the validation set (when one is given)
  bool has_test = false, has_validation = false;
  // Times (steady clock). The dl-variance study timed training plus validation (Keras's
  // fit with validation_data): its convergence time is the sum of train_seconds +
  // validation_seconds (variance/stats.h). seconds adds the test evaluation and the weight
  // hash; writing the record and the checkpoint after the epoch counts nowhere.
  double seconds = 0.0;             // the whole epoch end to end
  double train_seconds = 0.0;       // the epoch's steps only
  double validation_seconds = 0.0;  // evaluating the validation set (0 without one)
  double test_seconds = 0.0;        // evaluating the test set (0 without one)
  std::string weight_hash;
  // The monitor's probe at this epoch's end (TrainConfig::monitor), or null.
  std::shared_ptr<const MonitorStats> monitor;
};

// The held-out sets evaluated at each epoch end.
struct EvalSets {
  const Dataset* test = nullptr;
  const Dataset* validation = nullptr;
};

struct TrainResult {
  std::vector<EpochStats> epochs;
  std::int64_t steps = 0;
  std::string weight_hash;  // parameters and buffers, in the model's order
  bool stopped_early = false;
  bool stopped_after_epoch = false;  // by TrainConfig::stop_after_epoch (and stopped_early)
  // With TrainConfig::step_hashes: the hash after each step this call ran (a resumed run
  // starts at its checkpoint's step: first_step says which).
  std::vector<std::string> step_hashes;
  std::int64_t first_step = 0;
  bool resumed = false;  // restored from the checkpoint (at first_step)
  // Steps whose training loss was not finite (NaN/Inf): the run goes on, so that a study
  // sees a diverged run as one (its series say how many values are finite).
  std::int64_t nonfinite_loss_steps = 0;
};

// Weight hash of a module's parameters and buffers (engine/hash.h).
std::string weight_hash(const Module& m);

// Loss and accuracy of `model` on `data` in eval mode (no tape), batches of eval_batch.
std::pair<float, float> evaluate(Module& model, const Dataset& data, LossKind loss,
                                 std::int64_t eval_batch = 1000);

// The data loss of one batch as training computes it: out (N, K) the net's output (logits
// for softmax_ce / keras_ce, probabilities for bce), y the batch's targets (class labels
// (N) for the cross-entropies, (N, K) floats otherwise). The mean over rows, a scalar.
Tensor compute_loss(LossKind kind, const Tensor& out, const Tensor& y);

// Loss, accuracy and (with metrics) the BUTTER series, per-class accuracy and predictions.
// Runs on the model's device (Module::device()); `data` is on the host. The loss is the
// data loss's mean over the rows plus `penalty` (the trainer passes its L1/L2 penalty terms:
// Keras's evaluate reports the total loss, regularisation included, and the dl-variance
// best_loss criterion selected on that).
// The rows per batch of the epochs' held-out evaluations (the loss is each batch's mean
// weighted by its rows, so the size moves only rounding; fixed, so the bits are fixed too).
inline constexpr std::int64_t kEvalBatch = 1000;
EvalResult evaluate_full(Module& model, const Dataset& data, LossKind loss, bool metrics,
                         std::int64_t eval_batch = kEvalBatch, float penalty = 0.0f);

// evaluate_full's bookkeeping after the forward, batch by batch: a caller that computed a
// data set's outputs another way (the batched dense trainer, in SIMD lanes) scores them
// with the same code, so both report the same bits. Batches in row order, of evaluate_full's
// eval_batch rows (the loss is weighted per batch).
class EvalScorer {
 public:
  EvalScorer(LossKind loss, bool metrics) : loss_(loss), metrics_(metrics) {}
  // out (c, k): the net's output on the host for the next c rows; yb their targets;
  // batch_loss: compute_loss's value for them (the data loss's mean over the c rows);
  // probs: as record_batch's (softmax(out) for the class-label losses, or nullptr).
  void add(const Tensor& out, const Tensor& yb, float batch_loss, const float* probs = nullptr);
  // add() with its values computed elsewhere (the lane kernels of repetitions trained
  // together, kernels/cpu/lanes_loss.h) for the next c rows of k outputs: batch_loss as add's,
  // correct the rows count_correct counts, metric_values[m] (c) each metric's per-sample values
  // (read only with metrics), scores (c, k) the net's outputs (kept for class-label losses).
  void add_scored(std::int64_t c, std::int64_t k, float batch_loss, std::int64_t correct,
                  const float* const* metric_values, const float* scores);
  // The result over all rows added; `data` is the set scored (its labels give per-class
  // accuracy), `penalty` is added to the loss as evaluate_full adds it.
  EvalResult finish(const Dataset& data, float penalty) const;

 private:
  LossKind loss_;
  bool metrics_;
  std::vector<float> weighted_;  // each batch's loss x its rows
  std::int64_t correct_ = 0, k_ = 0;
  MetricAccumulator acc_;
  std::vector<float> scores_;  // class-label losses: every row's output, for per-class accuracy
};

// The pieces of a step and an epoch that Trainer and the batched dense trainer
// (nets/butter_batched.h) share, so that both report the same bits.

// Adds one training batch to the epoch so far: its total loss (data + penalties), its
// correct rows and (with `metrics`) the BUTTER series of its outputs before the update.
// out (N, K) the net's output on the host, y the batch's targets (as compute_loss's).
// probs: for the class-label losses, softmax(out) where the caller has it already (the
// loss kernel's `probs`), else nullptr and it is computed here.
void record_batch(LossKind kind, bool metrics, const Tensor& out, const Tensor& y, float total_loss,
                  EpochProgress& prog, const float* probs = nullptr);

// The L1/L2 penalty terms of `model` at its current weights, summed as the training step
// adds them (parameters in order, l1 then l2; 0 without penalties).
float penalty_value(const Module& model, const TrainConfig& cfg);

// An epoch's summary: the training series from `prog` (rows: the training set's size),
// then the held-out sets evaluated (`penalty` added to their losses), the times since
// `began` and the weight hash.
// test_done: the test set's evaluation where the caller made it already (its result and
// seconds), used in place of evaluating evals.test.
struct DoneEval {
  EvalResult result;
  double seconds = 0.0;
};
EpochStats summarize_epoch(Module& model, const TrainConfig& cfg, std::int64_t epoch,
                           std::int64_t rows, const EpochProgress& prog, const EvalSets& evals,
                           float penalty, std::chrono::steady_clock::time_point began,
                           const DoneEval* test_done = nullptr);

// Whether the L1/L2 penalties apply to p (cfg.penalize, or weights by default).
bool penalized(const TrainConfig& cfg, const NamedTensor& p);

// The rows of one epoch in training order (the order seed's permutation, or 0..n-1).
std::vector<std::int64_t> epoch_order(std::int64_t n, const TrainConfig& cfg, std::int64_t epoch);

// Initialises a model as a run of `cfg` starts (init_seed, then the init_nudge if any).
void initialize_for_run(Module& model, const TrainConfig& cfg);

class Trainer {
 public:
  Trainer(Module& model, TrainConfig cfg);

  // Initialises the model from init_seed, or restores model, optimizer and position from
  // cfg.checkpoint_path when `resume` is set and the file exists.
  TrainResult fit(const Dataset& train, const Dataset* test, bool resume = false,
                  const std::function<void(const EpochStats&)>& on_epoch = {});
  TrainResult fit(const Dataset& train, const EvalSets& evals, bool resume = false,
                  const std::function<void(const EpochStats&)>& on_epoch = {});

 private:
  // Initialises the model from init_seed (returns -1), or restores model, optimizer and the
  // epoch so far from the checkpoint (returns its step).
  std::int64_t start(bool resume, const Identity& id, const RunShape& shape, EpochProgress& prog);
  // One step on the `count` training rows `rows` (in epoch `epoch`): forward, loss,
  // penalties, backward, update; adds the batch to `prog`. Returns the data loss.
  float train_step(const Dataset& train, const std::int64_t* rows, std::int64_t count,
                   std::int64_t step, std::int64_t epoch, EpochProgress& prog);

  Module& model_;
  TrainConfig cfg_;
  Optimizer opt_;
  PlateauState plateau_;
};

}  // namespace detdl
