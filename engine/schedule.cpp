#include "engine/schedule.h"

#include <algorithm>
#include <sstream>

#include "kernels/common/detmath.h"

namespace detdl {

std::string_view schedule_kind_name(Schedule::Kind k) {
  switch (k) {
    case Schedule::Kind::constant: return "constant";
    case Schedule::Kind::step: return "step";
    case Schedule::Kind::multistep: return "multistep";
    case Schedule::Kind::piecewise: return "piecewise";
    case Schedule::Kind::cosine: return "cosine";
  }
  return "?";
}

float Schedule::lr(std::int64_t epoch) const {
  // gamma^k by repeated multiplication in double (exactly reproducible, unlike pow from
  // whichever libm), rounded once to float.
  auto decay = [&](std::int64_t k) {
    double f = 1.0;
    for (std::int64_t i = 0; i < k; ++i) f *= gamma;
    return static_cast<float>(static_cast<double>(base_lr) * f);
  };
  switch (kind) {
    case Kind::constant: return base_lr;
    case Kind::step: return decay(epoch / std::max<std::int64_t>(step_size, 1));
    case Kind::multistep:
      return decay(std::count_if(milestones.begin(), milestones.end(),
                                 [&](std::int64_t m) { return epoch >= m; }));
    case Kind::piecewise: {
      double f = 1.0;
      for (std::size_t i = 0; i < milestones.size() && i < factors.size(); ++i)
        if (epoch >= milestones[i]) f = factors[i];
      return static_cast<float>(static_cast<double>(base_lr) * f);
    }
    case Kind::cosine: {
      // eta_min + (base - eta_min) * (1 + cos(pi * e / T)) / 2, with the engine's cos so
      // the value is the same on every machine.
      const std::int64_t e = std::min<std::int64_t>(epoch, t_max);
      const float phase =
          3.14159265358979323846f * static_cast<float>(e) / static_cast<float>(t_max);
      return eta_min + (base_lr - eta_min) * (1.0f + det_cosf(phase)) * 0.5f;
    }
  }
  return base_lr;
}

std::string Schedule::describe() const {
  std::ostringstream o;
  switch (kind) {
    case Kind::constant: o << "constant(" << base_lr << ")"; break;
    case Kind::step:
      o << "step(" << base_lr << ", every " << step_size << ", x" << gamma << ")";
      break;
    case Kind::multistep: {
      o << "multistep(" << base_lr << ", at";
      for (auto m : milestones) o << ' ' << m;
      o << ", x" << gamma << ")";
      break;
    }
    case Kind::piecewise: {
      o << "piecewise(" << base_lr;
      for (std::size_t i = 0; i < milestones.size() && i < factors.size(); ++i)
        o << ", x" << factors[i] << " from " << milestones[i];
      o << ")";
      break;
    }
    case Kind::cosine:
      o << "cosine(" << base_lr << " -> " << eta_min << " over " << t_max << ")";
      break;
  }
  return o.str();
}

void PlateauState::update(const Plateau& p, float epoch_lr, double loss) {
  if (!p.on) return;
  // Keras: monitor_op = np.less(current, best - min_delta); NaN never improves.
  if (!seen || loss < best - static_cast<double>(p.min_delta)) {
    best = loss;
    seen = true;
    wait = 0;
    return;
  }
  if (++wait >= p.patience) {
    if (epoch_lr > p.min_lr) lr = std::max(epoch_lr * p.factor, p.min_lr);
    wait = 0;
  }
}

}  // namespace detdl
