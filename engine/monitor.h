// The training monitor: what a model's layers are doing at an epoch end, measured on one
// fixed probe batch, for the training doctor (doctor/) and the reports.
//
// AutoTrainer (ICSE 2021; ../shared/design/DOCTOR.md) computed the gradients of every
// trainable weight on the first batch_size training rows in inference mode, every 3 epochs
// (after epochs 1, 4, 7, ...: Keras's 0-based epoch % 3 == 0). The probe does the same, and
// adds what its known weaknesses ask for: per-layer weight norms, the share of dead units
// of each activation layer measured on its outputs, and update-to-weight ratios over the
// epoch.
//
// A probe changes nothing the run computes: the forward runs in evaluation mode (batch
// norm uses its running statistics and updates none, dropout is off), the gradients are
// dropped afterwards, and the next step starts as it would have. A run with the monitor on
// has the weight hash of the same run with it off (tests/engine/test_monitor.cpp).
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/dataset.h"
#include "engine/nn.h"

namespace detdl {

struct TrainConfig;

struct MonitorConfig {
  // Probe at the end of 0-based epoch e when e % every == 0 (AutoTrainer: 3); 0: off.
  std::int64_t every = 0;
  // Probe rows: the first this many training rows in stored order (0: the batch size,
  // AutoTrainer's choice). At most the training set.
  std::int64_t rows = 0;
  // Rows for the dead-unit count: the first max(this, probe rows) training rows, in
  // forwards of their own (no gradient) in pieces of the probe's size. A unit silent on one
  // small batch may live on the others; 256 rows keep the count honest.
  std::int64_t dead_rows = 256;
  // > 0: the probes' cost is held under this share of the training, by spacing them to
  // every max(every, ceil(probe_steps(batch) / (budget x steps per epoch))) epochs: at
  // 0.02, BUTTER's 16-step epochs of 256 rows are probed every 5th epoch, a 100-step epoch
  // of 32 rows every 2nd, MNIST's 469 steps of 128 every epoch. A function of the run's
  // shape, never of its timing, so a doctored run's bits stay fixed.
  double budget = 0.0;
  bool on() const { return every > 0; }
  // A probe's cost in training steps of `batch` rows: the gradient on the probe rows (a
  // step's work per row), the dead-unit forwards (about a third of a step's work per row)
  // and the norms and weight snapshot (about a fifth of a step): 1.5 steps at batch 256
  // (measured, bench/RESULTS.md "The training monitor's cost"), 3.9 at batch 32.
  double probe_steps(std::int64_t batch) const {
    const double b = static_cast<double>(batch > 0 ? batch : 1);
    const double grad = static_cast<double>(rows > 0 ? rows : batch);
    const double dead = dead_rows > grad ? static_cast<double>(dead_rows) : grad;
    return (grad + dead / 3.0) / b + 0.2;
  }
  // The epochs between probes for a run of `steps_per_epoch` steps of `batch` rows (0: off).
  std::int64_t spacing(std::int64_t steps_per_epoch, std::int64_t batch) const {
    if (every <= 0) return 0;
    if (!(budget > 0.0) || steps_per_epoch <= 0) return every;
    const double need =
        std::ceil(probe_steps(batch) / (budget * static_cast<double>(steps_per_epoch)));
    return need > static_cast<double>(every) ? static_cast<std::int64_t>(need) : every;
  }
  bool probes(std::int64_t epoch, std::int64_t steps_per_epoch, std::int64_t batch) const {
    const std::int64_t s = spacing(steps_per_epoch, batch);
    return s > 0 && epoch % s == 0;
  }
};

struct ParamProbe {
  std::string name;  // the module's dotted name ("0.weight")
  std::int64_t size = 0;
  std::int64_t dims = 0;     // its number of dimensions (2+: a kernel; 1: a bias or norm scale)
  double grad_norm = 0.0;    // L2 norm of the probe batch's gradient (0: no gradient reached it)
  double weight_norm = 0.0;  // L2 norm of the parameter now
  double zero_grad = 0.0;    // share of gradient entries exactly 0
  // ||W_now - W_epoch_start|| / ||W_epoch_start|| over the probed epoch; NaN where the
  // epoch's start is unknown (a resumed epoch) or W_epoch_start is 0.
  double update_ratio = 0.0;
};

struct ActivationProbe {
  std::int64_t index = 0;  // among the model's activation layers, in forward order
  std::string kind;        // "relu", "tanh", ...
  std::int64_t units = 0;  // features: dim 1 of the output (channels for images)
  // Share of units whose output is exactly 0 for every dead-count row (and every position):
  // dead ReLUs. Other activations are exactly 0 only by accident, so this is ~0 there.
  double dead = 0.0;
};

struct MonitorStats {
  std::int64_t epoch = 0;      // 0-based
  std::int64_t rows = 0;       // probe rows
  std::int64_t dead_rows = 0;  // rows of the dead-unit count
  double loss = 0.0;  // the probe batch's loss, data + L1/L2 penalties (Keras's total_loss)
  double zero_grad_share = 0.0;  // over every gradient entry (AutoTrainer's dying-ReLU signal)
  bool nonfinite_grad = false, nonfinite_weight = false;
  std::vector<ParamProbe> params;  // Module::parameters() order
  std::vector<ActivationProbe> activations;
  double seconds = 0.0;  // the probe's own time
};

// Copies of the parameters (host), taken at an epoch's start for the update ratios.
std::vector<std::vector<float>> snapshot_parameters(const Module& model);

// Probes `model` at the end of `epoch` (cfg: the loss and penalties; train: the probe rows'
// source; start: snapshot_parameters at the epoch's start, or empty). The model keeps its
// mode, weights, buffers and the absence of gradients.
MonitorStats probe_model(Module& model, const TrainConfig& cfg, const MonitorConfig& mon,
                         const Dataset& train, std::int64_t epoch,
                         const std::vector<std::vector<float>>& start);

// The record form (docs/cli.md, "Run records": an epoch's "monitor"); non-finite numbers
// are written as null and read back as NaN. from_json throws std::invalid_argument naming
// the field for a malformed object.
nlohmann::json to_json(const MonitorStats& m);
MonitorStats monitor_from_json(const nlohmann::json& j);

}  // namespace detdl
