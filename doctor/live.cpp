#include "doctor/live.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace detdl::doctor {

EpochView epoch_view(const EpochStats& s) {
  EpochView v;
  v.epoch = s.epoch;
  v.train_loss = s.train_loss;
  v.train_acc = s.train_accuracy;
  const EvalResult& held = s.has_validation ? s.validation : s.test;
  v.held_loss = held.loss;
  v.held_acc = held.accuracy;
  v.probe = s.monitor.get();
  return v;
}

double best_held_accuracy(const TrainResult& r) {
  double best = 0.0;
  for (const auto& s : r.epochs) {
    const double a = s.has_validation ? s.validation.accuracy : s.test_accuracy;
    if (std::isfinite(a)) best = std::max(best, a);
  }
  return best;
}

LiveDoctor::LiveDoctor(const nets::Experiment& e, DoctorOptions o)
    : o_(o), doctor_(o.kind, e.epochs, o.params) {}

void LiveDoctor::attach(nets::RunOptions& ro) {
  ro.monitor = o_.params.monitor(o_.kind);
  auto before = std::move(ro.stop_after_epoch);
  ro.stop_after_epoch = [this, before](const EpochStats& s) {
    const bool stop_before = before && before(s);
    const bool found = doctor_.observe(epoch_view(s)).has_value();
    return stop_before || (found && o_.stop);
  };
}

nlohmann::json LiveDoctor::record_entry() const {
  nlohmann::json j{{"doctor", std::string(doctor_name(o_.kind))},
                   {"stop", o_.stop},
                   {"theta", o_.params.theta},
                   {"check_every", o_.params.check_every(o_.kind)},
                   {"probe_budget", o_.params.monitor(o_.kind).budget},
                   {"features", doctor_.features()}};
  j["diagnosis"] = diagnosis() ? to_json(*diagnosis(), o_.kind) : nlohmann::json(nullptr);
  return j;
}

}  // namespace detdl::doctor
