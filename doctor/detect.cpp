#include "doctor/detect.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <limits>
#include <stdexcept>

namespace detdl::doctor {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// printf-style, checked by the compiler: a count of %-conversions that differs from the
// arguments is a build warning, not garbage in a diagnosis.
__attribute__((format(printf, 1, 2))) std::string fmt(const char* f, ...) {
  char buf[256];
  va_list args;
  va_start(args, f);
  std::vsnprintf(buf, sizeof buf, f, args);
  va_end(args);
  return buf;
}

bool any_nonfinite(const std::vector<double>& v) {
  return std::any_of(v.begin(), v.end(), [](double x) { return !std::isfinite(x); });
}

// A kernel: two or more dimensions (Linear's and Conv2d's weights; not biases or batch
// norm's scales). The detdl rules chain these.
bool is_kernel(const ParamProbe& p) { return p.dims >= 2; }

double number(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return kNaN;
  const auto& v = j.at(key);
  return v.is_number() ? v.get<double>() : kNaN;  // null: a NaN written by the record
}

}  // namespace

std::string_view problem_name(Problem p) {
  switch (p) {
    case Problem::vanishing_gradient: return "vanishing_gradient";
    case Problem::exploding_gradient: return "exploding_gradient";
    case Problem::dying_relu: return "dying_relu";
    case Problem::oscillating_loss: return "oscillating_loss";
    case Problem::slow_convergence: return "slow_convergence";
  }
  return "?";
}

std::string_view problem_code(Problem p) {
  switch (p) {
    case Problem::vanishing_gradient: return "VG";
    case Problem::exploding_gradient: return "EG";
    case Problem::dying_relu: return "DR";
    case Problem::oscillating_loss: return "OL";
    case Problem::slow_convergence: return "SC";
  }
  return "?";
}

std::optional<Problem> parse_problem(std::string_view s) {
  for (Problem p : {Problem::vanishing_gradient, Problem::exploding_gradient, Problem::dying_relu,
                    Problem::oscillating_loss, Problem::slow_convergence})
    if (s == problem_name(p) || s == problem_code(p)) return p;
  return std::nullopt;
}

std::string_view doctor_name(DoctorKind k) {
  return k == DoctorKind::autotrainer ? "autotrainer" : "detdl";
}

std::optional<DoctorKind> parse_doctor(std::string_view s) {
  if (s == "autotrainer") return DoctorKind::autotrainer;
  if (s == "detdl") return DoctorKind::detdl;
  return std::nullopt;
}

std::int64_t oscillation_pairs(const std::vector<double>& a, double zeta, bool relative) {
  std::vector<double> maxima, minima;
  for (std::size_t i = 1; i + 1 < a.size(); ++i) {
    if (a[i] - a[i - 1] >= 0 && a[i] - a[i + 1] >= 0) maxima.push_back(a[i]);
    if (a[i] - a[i - 1] <= 0 && a[i] - a[i + 1] <= 0) minima.push_back(a[i]);
  }
  std::int64_t count = 0;
  for (std::size_t i = 0; i < std::min(maxima.size(), minima.size()); ++i) {
    const double d = maxima[i] - minima[i];
    const double scale = relative ? std::fabs(maxima[i]) : 1.0;
    if (scale > 0.0 && d / scale >= zeta) ++count;
  }
  return count;
}

double max_rise(const std::vector<double>& a) {
  double best = 0.0;
  for (std::size_t i = 0; i + 1 < a.size(); ++i) best = std::max(best, a[i + 1] - a[i]);
  return best;
}

Doctor::Doctor(DoctorKind kind, std::int64_t total_epochs, DoctorParams params)
    : kind_(kind), total_epochs_(total_epochs), p_(params) {
  if (total_epochs < 1) throw std::invalid_argument("doctor: the epoch budget must be at least 1");
}

std::optional<Diagnosis> Doctor::observe(const EpochView& e) {
  train_loss_.push_back(e.train_loss);
  train_acc_.push_back(e.train_acc);
  held_loss_.push_back(e.held_loss);
  held_acc_.push_back(e.held_acc);
  if (diagnosis_) return std::nullopt;
  if (e.epoch % p_.check_every(kind_) != 0) return std::nullopt;
  std::optional<Diagnosis> d =
      kind_ == DoctorKind::autotrainer ? check_autotrainer(e) : check_detdl(e);
  if (d) {
    d->epoch = e.epoch;
    diagnosis_ = d;
  }
  return d;
}

// monitor.py's loss_issue, after its NaN test: the gated features.
void Doctor::loss_features(std::int64_t epochs_seen) {
  if (static_cast<double>(epochs_seen) < p_.judgment_point * static_cast<double>(total_epochs_))
    return;
  const bool on_loss = kind_ == DoctorKind::detdl;
  const auto& series = on_loss ? train_loss_ : train_acc_;
  if (static_cast<double>(oscillation_pairs(series, p_.zeta, on_loss)) >=
      p_.eta * static_cast<double>(series.size()))
    unstable_ = true;
  const double best_held = *std::max_element(held_acc_.begin(), held_acc_.end());
  const double best_train = *std::max_element(train_acc_.begin(), train_acc_.end());
  if (best_held < p_.theta || best_train < p_.theta) not_converge_ = true;
  // detdl judges a stall over two epoch-to-epoch changes at least: AutoTrainer, checking
  // every third epoch, never sees fewer, but detdl checks every epoch, and one change is not
  // a trend (an oscillation's first swing, a 15-point fall, has no rise at all).
  const bool enough = kind_ == DoctorKind::autotrainer || epochs_seen >= 3;
  if (enough && max_rise(held_acc_) < p_.delta && max_rise(train_acc_) < p_.delta) slow_ = true;
}

std::optional<Diagnosis> Doctor::check_autotrainer(const EpochView& e) {
  const MonitorStats* m = e.probe;
  // gradient_issue: NaN in a gradient stops the gradient tests.
  if (m != nullptr) {
    if (m->nonfinite_grad) {
      nan_grad_ = true;
    } else {
      std::vector<double> kernel;  // even-indexed arrays: Keras's kernels
      for (std::size_t i = 0; i < m->params.size(); i += 2)
        kernel.push_back(m->params[i].grad_norm);
      if (!kernel.empty()) {
        const double ratio = kernel.front() / kernel.back();  // IEEE, as numpy: x/0 = inf
        if (ratio < p_.beta1 && kernel.front() < p_.beta2) {
          if (vanish_++ == 0)
            vanish_why_ = fmt("gradient ratio %.3g < %.3g and first gradient norm %.3g < %.3g",
                              ratio, p_.beta1, kernel.front(), p_.beta2);
        }
        if (ratio > p_.beta3 && explode_++ == 0)
          explode_why_ = fmt("gradient ratio %.3g > %.3g", ratio, p_.beta3);
      }
      if (m->zero_grad_share >= p_.gamma && relu_++ == 0)
        relu_why_ = fmt("zero-gradient share %.3f >= %.3g", m->zero_grad_share, p_.gamma);
    }
    if (m->nonfinite_weight) nan_weight_ = true;
  }
  // loss_issue: NaN anywhere in the losses, or a held-out loss past the limit.
  const auto epochs_seen = static_cast<std::int64_t>(train_loss_.size());
  if (losses_blew_up())
    nan_loss_ = true;
  else
    loss_features(epochs_seen);

  // determine, then filtered_issue (the first problem of the highest priority).
  Diagnosis d;
  report_nonfinite(d);
  decide_gated(d);
  if (d.problems.empty()) return std::nullopt;
  return d;
}

bool Doctor::losses_blew_up() const {
  return any_nonfinite(held_loss_) || any_nonfinite(train_loss_) ||
         held_loss_.back() >= p_.loss_limit;
}

void Doctor::report_nonfinite(Diagnosis& d) const {
  if (!nan_loss_ && !nan_grad_ && !nan_weight_) return;
  d.problems.push_back(Problem::exploding_gradient);
  d.reason = nan_loss_   ? "NaN/Inf loss or held-out loss >= limit"
             : nan_grad_ ? "NaN/Inf gradient"
                         : "NaN/Inf weight";
}

void Doctor::decide_gated(Diagnosis& d) const {
  if (!d.problems.empty()) return;  // filtered_issue keeps the first of equal priority
  const bool at = kind_ == DoctorKind::autotrainer;
  auto pick = [&](Problem p, std::string why, const std::string& layer) {
    d.problems.push_back(p);
    d.reason = std::move(why);
    d.layer = layer;  // detdl's only: AutoTrainer's signals name no layer
  };
  if (not_converge_ || slow_) {
    const std::string gate =
        not_converge_ ? fmt("best accuracy under %.3g", p_.theta) : std::string("slow convergence");
    const std::string sc =
        fmt("largest accuracy gain under %.3g on train and held-out data", p_.delta);
    if (relu_ >= 1)
      pick(Problem::dying_relu, relu_why_ + "; " + gate, relu_layer_);
    else if (explode_ >= 1)
      pick(Problem::exploding_gradient, explode_why_ + "; " + gate, explode_layer_);
    else if (vanish_ >= 1)
      pick(Problem::vanishing_gradient, vanish_why_ + "; " + gate, vanish_layer_);
    else if (slow_)
      pick(Problem::slow_convergence, at ? sc + "; " + gate : sc, "");
  } else if (unstable_) {
    pick(Problem::oscillating_loss,
         at ? fmt("training accuracy oscillates (pairs >= %.3g apart in >= %.3g of the epochs)",
                  p_.zeta, p_.eta)
            : fmt("training loss oscillates (pairs >= %.3g relative in >= %.3g of the epochs)",
                  p_.zeta, p_.eta),
         "");
  }
}

std::optional<Diagnosis> Doctor::check_detdl(const EpochView& e) {
  const MonitorStats* m = e.probe;
  Diagnosis d;
  // Certain: NaN / Inf anywhere, reported at once.
  if (losses_blew_up()) nan_loss_ = true;
  if (m != nullptr && (m->nonfinite_grad || !std::isfinite(m->loss))) nan_grad_ = true;
  if (m != nullptr && m->nonfinite_weight) nan_weight_ = true;
  report_nonfinite(d);
  if (!d.problems.empty()) return d;
  if (m != nullptr) {
    // Dead units on the ReLU layers' outputs. A layer with every unit dead passes no
    // gradient, so nothing below it moves: dead at two checks in a row (momentum spent) it
    // stays dead.
    bool fully_dead = false;
    for (const auto& a : m->activations) {
      if (a.kind != "relu" || !(a.dead >= p_.gamma)) continue;
      const bool all = a.dead >= 1.0;
      if (relu_++ == 0 || (all && relu_dead_before_ && !relu_certain_)) {
        relu_why_ =
            fmt("%.0f%% of the units of ReLU layer %.0f dead on the first %.0f rows",
                100.0 * a.dead, static_cast<double>(a.index), static_cast<double>(m->dead_rows));
        relu_layer_ = "activation " + std::to_string(a.index) + " (" + a.kind + ")";
      }
      if (all && relu_dead_before_) relu_certain_ = true;
      fully_dead = fully_dead || all;
    }
    relu_dead_before_ = fully_dead;
    // The gradient chain on relative gradients r_l = ||g_l|| / ||W_l|| of the weight tensors.
    std::vector<std::pair<std::string, double>> r;
    for (const auto& p : m->params)
      if (is_kernel(p) && p.weight_norm > 0.0) r.emplace_back(p.name, p.grad_norm / p.weight_norm);
    if (r.size() >= 2 && r.back().second > 0.0) {
      const double last = r.back().second;
      for (std::size_t l = 0; l + 1 < r.size(); ++l) {
        const double ratio = r[l].second / last;
        if (ratio < p_.beta1 && vanish_++ == 0) {
          vanish_why_ = "relative gradient of " + r[l].first +
                        fmt(" is %.3g of the last layer's (< %.3g)", ratio, p_.beta1);
          vanish_layer_ = r[l].first;
        }
        if (ratio > p_.beta3 && explode_++ == 0) {
          explode_why_ = "relative gradient of " + r[l].first +
                         fmt(" is %.3g times the last layer's (> %.3g)", ratio, p_.beta3);
          explode_layer_ = r[l].first;
        }
      }
    }
  }
  if (relu_certain_) {
    d.problems.push_back(Problem::dying_relu);
    d.reason = relu_why_ + " at two checks in a row (certain: reported without the gate)";
    d.layer = relu_layer_;
    return d;
  }
  loss_features(static_cast<std::int64_t>(train_loss_.size()));
  decide_gated(d);
  if (d.problems.empty()) return std::nullopt;
  return d;
}

nlohmann::json Doctor::features() const {
  return {
      {"nan_loss", nan_loss_},      {"nan_gradient", nan_grad_},     {"nan_weight", nan_weight_},
      {"vanish_gradient", vanish_}, {"explode_gradient", explode_},  {"died_relu", relu_},
      {"unstable_loss", unstable_}, {"not_converge", not_converge_}, {"sc_accuracy", slow_}};
}

std::vector<EpochView> record_epochs(const nlohmann::json& record,
                                     std::vector<MonitorStats>& probes, const std::string& where) {
  if (!record.is_object() || !record.contains("epochs") || !record.at("epochs").is_array())
    throw std::invalid_argument(where + ": not a run record (no \"epochs\" array)");
  const auto& epochs = record.at("epochs");
  if (epochs.empty()) throw std::invalid_argument(where + ": the record has no epochs");
  probes.clear();
  probes.reserve(epochs.size());
  std::vector<std::ptrdiff_t> probe_of;
  std::vector<EpochView> out;
  for (std::size_t i = 0; i < epochs.size(); ++i) {
    const auto& ep = epochs[i];
    EpochView v;
    v.epoch = ep.value("epoch", static_cast<std::int64_t>(i + 1)) - 1;
    v.train_loss = number(ep.value("train", nlohmann::json{}), "loss");
    v.train_acc = number(ep.value("train", nlohmann::json{}), "accuracy");
    const char* held = ep.contains("validation") ? "validation" : "test";
    v.held_loss = number(ep.value(held, nlohmann::json{}), "loss");
    v.held_acc = number(ep.value(held, nlohmann::json{}), "accuracy");
    if (ep.contains("monitor")) {
      try {
        probes.push_back(monitor_from_json(ep.at("monitor")));
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(where + ": epoch " + std::to_string(v.epoch + 1) + ": " +
                                    e.what());
      }
      probes.back().epoch = v.epoch;
      probe_of.push_back(static_cast<std::ptrdiff_t>(probes.size()) - 1);
    } else {
      probe_of.push_back(-1);
    }
    out.push_back(v);
  }
  for (std::size_t i = 0; i < out.size(); ++i)
    if (probe_of[i] >= 0) out[i].probe = &probes[static_cast<std::size_t>(probe_of[i])];
  return out;
}

std::optional<Diagnosis> diagnose_record(const nlohmann::json& record, DoctorKind kind,
                                         const DoctorParams& params, const std::string& where) {
  std::vector<MonitorStats> probes;
  const auto views = record_epochs(record, probes, where);
  std::int64_t total = static_cast<std::int64_t>(views.size());
  if (record.contains("experiment") && record.at("experiment").is_object())
    total = std::max(total, record.at("experiment").value("epochs", total));
  Doctor doc(kind, total, params);
  for (const auto& v : views)
    if (auto d = doc.observe(v)) return d;
  return std::nullopt;
}

nlohmann::json to_json(const Diagnosis& d, DoctorKind kind) {
  nlohmann::json problems = nlohmann::json::array();
  for (Problem p : d.problems) problems.push_back(std::string(problem_name(p)));
  nlohmann::json j{{"doctor", std::string(doctor_name(kind))},
                   {"problems", problems},
                   {"epoch", d.epoch + 1},
                   {"reason", d.reason}};
  if (!d.layer.empty()) j["layer"] = d.layer;
  return j;
}

}  // namespace detdl::doctor
