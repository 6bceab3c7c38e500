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

// "constant", "step", "multistep", "piecewise", "cosine": the JSON form's schedule.kind.
std::string_view schedule_kind_name(Schedule::Kind k);

}  // namespace detdl
