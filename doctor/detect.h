// The training doctor's detectors: AutoTrainer's five problems (ICSE 2021;
// ../shared/design/DOCTOR.md) decided from a run's epoch series and the monitor's probes
// (engine/monitor.h). Two rule sets:
//
//   autotrainer  the published rules as its code (shiningrain/AUTOTRAINER, utils/monitor.py)
//                computes them: a check after 0-based epochs 0, 3, 6, ...; the gradient
//                ratio of the first to the last *even-indexed* trainable array (Keras lists
//                kernel, bias, kernel, bias, ...); the share of exactly-zero gradient entries
//                over all arrays; "oscillation" counted on the training accuracy; signals
//                that stick once seen; the accuracy-gated decision only after 30% of the
//                epochs; NaN / Inf reported at the next check.
//   detdl        the engine's: a check every epoch; per-layer gradient chain on relative
//                gradients (||g_l|| / ||W_l|| of every weight tensor, so that wide or large
//                layers do not look exploding), pointing at the layer where the chain breaks;
//                dead units per ReLU layer measured on its outputs; oscillation of the
//                training loss; certain signals (NaN / Inf at once; a ReLU layer with every
//                unit dead at two checks in a row) reported without the 30% gate.
//
// Both are pure functions of the epochs fed to them: a record replayed after the fact
// (`detdl doctor`) gives the diagnosis the live run gave.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/monitor.h"

namespace detdl::doctor {

enum class Problem {
  vanishing_gradient,
  exploding_gradient,
  dying_relu,
  oscillating_loss,
  slow_convergence
};
// "vanishing_gradient", ...; AutoTrainer's own names are vanish, explode, relu, unstable
// and not_converge.
std::string_view problem_name(Problem p);
std::string_view problem_code(Problem p);                  // VG, EG, DR, OL, SC
std::optional<Problem> parse_problem(std::string_view s);  // a name or a code

enum class DoctorKind { autotrainer, detdl };
std::string_view doctor_name(DoctorKind k);
std::optional<DoctorKind> parse_doctor(std::string_view s);

// AutoTrainer's default_param (utils/utils.py) and its judgment point.
struct DoctorParams {
  double beta1 = 1e-3;  // VG: gradient ratio below
  double beta2 = 1e-4;  // VG: and the first layer's gradient norm below
  double beta3 = 70.0;  // EG: gradient ratio above
  double gamma = 0.7;   // DR: zero-gradient share (autotrainer) / dead-unit share (detdl) at least
  double zeta = 0.03;   // OL: a local maximum and minimum at least this far apart
  double eta = 0.2;     // OL: at least eta * epochs such pairs
  double delta = 0.01;  // SC: the largest epoch-to-epoch accuracy gain below, train and test
  double theta = 0.7;   // the accuracy target
  double judgment_point = 0.3;  // share of the epoch budget before the gated decisions
  double loss_limit = 1e5;      // a held-out loss this large counts as exploding
  // Epochs between checks (0: the kind's own, 3 for autotrainer and 1 for detdl).
  std::int64_t every = 0;
  std::int64_t check_every(DoctorKind k) const {
    return every > 0 ? every : k == DoctorKind::autotrainer ? 3 : 1;
  }
  // detdl's probes cost at most this share of the training (MonitorConfig::budget): on
  // short epochs (BUTTER's 16 steps) they are spaced out, while the loss and accuracy rules
  // still check every epoch. AutoTrainer's doctor probes at its own checks (every third
  // epoch) as published; so does an explicit `every`.
  double probe_budget = 0.02;
  // The monitor that feeds a doctor of kind k.
  MonitorConfig monitor(DoctorKind k) const {
    MonitorConfig m;
    m.every = check_every(k);
    m.rows = 0;  // AutoTrainer's: the first batch_size training rows
    m.budget = k == DoctorKind::detdl && every == 0 ? probe_budget : 0.0;
    return m;
  }
};

// One epoch as the doctor sees it. held_*: the validation set's (or the test set's when the
// run has none: AutoTrainer's "val" was whatever fit's validation_data was).
struct EpochView {
  std::int64_t epoch = 0;  // 0-based
  double train_loss = 0.0, train_acc = 0.0;
  double held_loss = 0.0, held_acc = 0.0;
  const MonitorStats* probe = nullptr;  // this epoch's probe, or null
};

struct Diagnosis {
  std::vector<Problem> problems;  // after AutoTrainer's priority filter: one
  std::int64_t epoch = -1;        // 0-based epoch at whose end the check made it
  std::string reason;             // the deciding signals in words
  std::string layer;              // detdl: the parameter or activation layer it points at
};

class Doctor {
 public:
  Doctor(DoctorKind kind, std::int64_t total_epochs, DoctorParams params = {});
  // Feeds the next epoch (in order). Returns the diagnosis when this epoch's check makes
  // one; after that the doctor stays silent (the run stops for repair).
  std::optional<Diagnosis> observe(const EpochView& e);
  const std::optional<Diagnosis>& diagnosis() const { return diagnosis_; }
  DoctorKind kind() const { return kind_; }
  // The sticky features so far (AutoTrainer's feature dictionary, plus detdl's layer names).
  nlohmann::json features() const;

 private:
  std::optional<Diagnosis> check_autotrainer(const EpochView& e);
  std::optional<Diagnosis> check_detdl(const EpochView& e);
  void loss_features(std::int64_t epochs_seen);
  // NaN / Inf in a training or held-out loss, or a held-out loss past the limit.
  bool losses_blew_up() const;
  // EG for the NaN / Inf signals seen (d unchanged when none).
  void report_nonfinite(Diagnosis& d) const;
  // monitor.py's determine, shared: when not converged or slow, the first of DR, EG, VG, SC
  // seen; otherwise OL if oscillating. Only when d holds no problem yet.
  void decide_gated(Diagnosis& d) const;

  DoctorKind kind_;
  std::int64_t total_epochs_;
  DoctorParams p_;
  std::vector<double> train_loss_, train_acc_, held_loss_, held_acc_;
  // Sticky signals.
  bool nan_loss_ = false, nan_grad_ = false, nan_weight_ = false;
  int vanish_ = 0, explode_ = 0, relu_ = 0;
  bool unstable_ = false, not_converge_ = false, slow_ = false;
  std::string vanish_why_, explode_why_, relu_why_, vanish_layer_, explode_layer_, relu_layer_;
  bool relu_certain_ = false;
  bool relu_dead_before_ = false;  // a ReLU layer fully dead at the previous check
  std::optional<Diagnosis> diagnosis_;
};

// AutoTrainer's ol_judge: local maxima and minima of `series` (non-strict, interior points),
// paired by index, counted where max - min >= zeta (relative: (max - min) / |max| >= zeta).
std::int64_t oscillation_pairs(const std::vector<double>& series, double zeta, bool relative);
// AutoTrainer's max_delta_acc: the largest rise from one epoch to the next (0 if none).
double max_rise(const std::vector<double>& series);

// The epochs of a run record (docs/cli.md, "Run records") as the doctor sees them; the
// probes are read into `probes` (which the views point into). Throws std::invalid_argument
// naming the record for one without epochs or with a malformed monitor entry.
std::vector<EpochView> record_epochs(const nlohmann::json& record,
                                     std::vector<MonitorStats>& probes, const std::string& where);
// Replays a record through a doctor: the diagnosis it would have made (none: nullopt).
std::optional<Diagnosis> diagnose_record(const nlohmann::json& record, DoctorKind kind,
                                         const DoctorParams& params, const std::string& where);

nlohmann::json to_json(const Diagnosis& d, DoctorKind kind);

}  // namespace detdl::doctor
