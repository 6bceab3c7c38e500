#include "variance/twin.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <stdexcept>

namespace detdl::variance {

std::vector<std::int64_t> log_spaced_steps(std::int64_t total, int per_decade) {
  if (total < 0) throw std::invalid_argument("log_spaced_steps: negative step count");
  if (per_decade < 1) throw std::invalid_argument("twin: --per-decade must be at least 1");
  std::vector<std::int64_t> out;
  for (std::int64_t s = 0; s <= std::min<std::int64_t>(total, 10); ++s) out.push_back(s);
  for (int i = 1;; ++i) {
    const double v = 10.0 * std::pow(10.0, static_cast<double>(i) / per_decade);
    const auto s = static_cast<std::int64_t>(std::llround(v));
    if (s >= total) break;
    if (s > out.back()) out.push_back(s);
  }
  if (out.back() != total) out.push_back(total);
  return out;
}

namespace {

// Every parameter, concatenated in model order, on the host.
std::vector<float> flat_weights(const Module& m) {
  std::vector<float> w;
  for (const auto& p : m.parameters()) {
    const std::vector<float> v = p.tensor.to_vector();
    w.insert(w.end(), v.begin(), v.end());
  }
  return w;
}

struct Recorded {
  std::map<std::int64_t, std::vector<float>> at;  // step -> weights
  nets::RunOutput out;
};

Recorded record(const nets::Experiment& e, const std::vector<std::int64_t>& steps,
                std::int64_t max_floats) {
  Recorded r;
  std::size_t next = 0;
  nets::RunOptions o;
  o.on_step_model = [&](std::int64_t step, const Module& m) {
    while (next < steps.size() && steps[next] < step) ++next;
    if (next == steps.size() || steps[next] != step) return;
    r.at[step] = flat_weights(m);
    if (static_cast<std::int64_t>(r.at.size() * r.at[step].size()) > max_floats)
      throw std::invalid_argument("twin: the weight snapshots would exceed " +
                                  std::to_string(max_floats) +
                                  " floats; lower --per-decade or train fewer steps");
  };
  o.keep_weights_up_to = max_floats;  // the final weights, whatever the step list holds
  r.out = nets::run_experiment(e, o);
  if (!r.out.final_weights.empty()) r.at[r.out.result.steps] = r.out.final_weights;
  return r;
}

}  // namespace

TwinResult run_twin(const nets::Experiment& a, const nets::Experiment& b, int per_decade,
                    std::int64_t max_floats) {
  const auto t0 = std::chrono::steady_clock::now();
  // The step count is known only once the data set is loaded: measure on every step the
  // first run reaches (a bounded, log-spaced set), the second at the same steps.
  std::vector<std::int64_t> steps = log_spaced_steps(std::int64_t{1} << 40, per_decade);
  Recorded ra = record(a, steps, max_floats);
  steps = log_spaced_steps(ra.out.result.steps, per_decade);
  Recorded rb = record(b, steps, max_floats);
  if (ra.out.result.steps != rb.out.result.steps)
    throw std::invalid_argument("twin: the two runs train " + std::to_string(ra.out.result.steps) +
                                " and " + std::to_string(rb.out.result.steps) +
                                " steps; twins must differ in one thing only");
  if (ra.out.parameters != rb.out.parameters)
    throw std::invalid_argument("twin: the two runs have " + std::to_string(ra.out.parameters) +
                                " and " + std::to_string(rb.out.parameters) + " parameters");
  TwinResult t;
  t.parameters = ra.out.parameters;
  for (std::int64_t s : steps) {
    const auto ia = ra.at.find(s), ib = rb.at.find(s);
    if (ia == ra.at.end() || ib == rb.at.end()) continue;
    const auto& wa = ia->second;
    const auto& wb = ib->second;
    TwinPoint p;
    p.step = s;
    double sq = 0.0, na = 0.0;
    for (std::size_t i = 0; i < wa.size(); ++i) {
      const double d = static_cast<double>(wa[i]) - static_cast<double>(wb[i]);
      sq += d * d;
      na += static_cast<double>(wa[i]) * wa[i];
      p.max_abs = std::max(p.max_abs, std::fabs(d));
      if (std::memcmp(&wa[i], &wb[i], sizeof(float)) != 0) ++p.differing;
    }
    p.l2 = std::sqrt(sq);
    p.relative = na > 0.0 ? p.l2 / std::sqrt(na) : 0.0;
    if (p.differing > 0 && t.first_differing_step < 0) t.first_differing_step = s;
    t.points.push_back(p);
  }
  const auto& ea = ra.out.result.epochs;
  const auto& eb = rb.out.result.epochs;
  if (!ea.empty() && !eb.empty()) {
    t.test_accuracy_a = ea.back().test_accuracy;
    t.test_accuracy_b = eb.back().test_accuracy;
    const auto& pa = ea.back().test.predictions;
    const auto& pb = eb.back().test.predictions;
    t.test_rows = static_cast<std::int64_t>(std::min(pa.size(), pb.size()));
    for (std::int64_t i = 0; i < t.test_rows; ++i) t.test_disagreements += pa[i] != pb[i];
  }
  t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return t;
}

}  // namespace detdl::variance
