// The training doctor attached to a run as it trains (`detdl train --doctor KIND`): the
// monitor probes the epochs the doctor checks (engine/monitor.h), each epoch is fed to the
// detectors (doctor/detect.h), and a diagnosis stops the run there, as AutoTrainer stops
// training to repair it, unless the doctor only watches. A watched run is bit for bit the
// run without the doctor (the probes change nothing), which is what twin judging needs.
#pragma once
#include <optional>

#include <nlohmann/json.hpp>

#include "doctor/detect.h"
#include "nets/experiment.h"

namespace detdl::doctor {

struct DoctorOptions {
  DoctorKind kind = DoctorKind::autotrainer;
  DoctorParams params;
  bool stop = true;  // stop the run at the diagnosis (false: watch only, train to the end)
};

// An epoch's statistics as the doctor sees them (held-out: validation, else test).
EpochView epoch_view(const EpochStats& s);
// AutoTrainer's train_result: the best held-out accuracy over a run's epochs (NaN skipped).
double best_held_accuracy(const TrainResult& r);

class LiveDoctor {
 public:
  LiveDoctor(const nets::Experiment& e, DoctorOptions o);
  // Sets ro.monitor and ro.stop_after_epoch (keeping any stop_after_epoch already there).
  // The LiveDoctor must outlive the run.
  void attach(nets::RunOptions& ro);
  const std::optional<Diagnosis>& diagnosis() const { return doctor_.diagnosis(); }
  // The record's "doctor" object: the options, the diagnosis (null: none) and the features.
  nlohmann::json record_entry() const;

 private:
  DoctorOptions o_;
  Doctor doctor_;
};

}  // namespace detdl::doctor
