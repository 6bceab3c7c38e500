// Learning-rate schedules, evaluated once per step on the host and passed to the
// optimizer kernels as a float (the contract: host scalars are computed once). Epoch-based
// like Keras/PyTorch schedulers: the rate for epoch e (0-based).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace detdl {

struct Schedule {
  enum class Kind { constant, step, multistep, piecewise, cosine } kind = Kind::constant;
  float base_lr = 0.01f;
  std::int64_t step_size = 1;            // step: decay every step_size epochs
  std::vector<std::int64_t> milestones;  // multistep: decay at these epochs (sorted)
  float gamma = 0.1f;                    // step, multistep: factor per decay
  std::vector<double> factors;           // piecewise: base_lr * factors[i] from milestones[i] on
                                         // (Keras-style lr_schedule functions)
  std::int64_t t_max = 1;                // cosine: epochs of the half period
  float eta_min = 0.0f;                  // cosine: the floor

  float lr(std::int64_t epoch) const;
  std::string describe() const;
};

// Keras's ReduceLROnPlateau (one of AutoTrainer's repairs: monitor val_loss, factor 0.2,
// patience 5, min_lr 0.001), on top of the schedule: after each epoch the held-out loss
// (validation, else test, else training) is compared with the best so far; below
// best - min_delta it becomes the best, otherwise `wait` grows, and at `patience` the rate
// becomes max(rate * factor, min_lr) if it was above min_lr, and wait starts over. The rate
// of an epoch is min(schedule's, plateau's).
struct Plateau {
  bool on = false;
  float factor = 0.2f;
  std::int64_t patience = 5;
  float min_lr = 0.001f;
  float min_delta = 1e-4f;
};

// The plateau's state over a run (Trainer keeps one).
struct PlateauState {
  float lr = 0.0f;  // 0: not reduced yet (the schedule's rate applies)
  double best = 0.0;
  bool seen = false;
  std::int64_t wait = 0;
  // After an epoch whose rate was `epoch_lr` and held-out loss `loss`.
  void update(const Plateau& p, float epoch_lr, double loss);
  float apply(float schedule_lr) const { return lr > 0.0f && lr < schedule_lr ? lr : schedule_lr; }
};

// "constant", "step", "multistep", "piecewise", "cosine": the JSON form's schedule.kind.
std::string_view schedule_kind_name(Schedule::Kind k);

}  // namespace detdl
