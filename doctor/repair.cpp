#include "doctor/repair.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "kernels/common/philox.h"

namespace detdl::doctor {
namespace {

using nets::Experiment;

// Keras's default optimizers (AutoTrainer passes names: every other setting is Keras's).
OptimizerConfig keras_optimizer(OptimizerConfig::Kind k) {
  OptimizerConfig o;
  o.kind = k;
  o.keras_form = true;
  o.eps = 1e-7f;
  if (k == OptimizerConfig::Kind::rmsprop) o.alpha = 0.9f;  // Keras's rho
  return o;
}
float keras_default_lr(OptimizerConfig::Kind k) {
  return k == OptimizerConfig::Kind::sgd ? 0.01f : 0.001f;
}

std::uint32_t solution_index(const std::string& name) {
  static const char* names[] = {"selu",    "relu",     "bn",   "gradient", "tanh",
                                "initial", "leaky",    "adam", "lr",       "ReduceLR",
                                "batch",   "momentum", "GN",   "optimizer"};
  for (std::uint32_t i = 0; i < sizeof names / sizeof names[0]; ++i)
    if (name == names[i]) return i;
  return 255;
}

// Draw `k` of a solution's try: uniform in [0, 1).
float draw(std::uint64_t seed, const std::string& sol, int j, int k) {
  return philox_uniform(seed, RandomStream::repair,
                        solution_index(sol) * 16 + static_cast<std::uint32_t>(j),
                        static_cast<std::uint64_t>(k));
}

bool same(const Experiment& a, const Experiment& b) { return nets::to_json(a) == nets::to_json(b); }

std::string fmt_float(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

std::vector<Solution> solutions_for(Problem p);

namespace {

// Every distinct solution of every problem (the most tries any list gives it), shuffled by
// a Fisher-Yates walk over Philox draws keyed by the repair seed and the round.
std::vector<Solution> random_order(std::uint64_t seed, int round) {
  std::vector<Solution> all;
  for (Problem p : {Problem::vanishing_gradient, Problem::exploding_gradient, Problem::dying_relu,
                    Problem::oscillating_loss, Problem::slow_convergence})
    for (const Solution& s : solutions_for(p)) {
      auto it =
          std::find_if(all.begin(), all.end(), [&](const Solution& a) { return a.name == s.name; });
      if (it == all.end())
        all.push_back(s);
      else
        it->tries = std::max(it->tries, s.tries);
    }
  for (std::size_t i = all.size(); i > 1; --i) {
    const float u =
        philox_uniform(seed, RandomStream::repair, 0xFFFF0000u + static_cast<std::uint32_t>(round),
                       static_cast<std::uint64_t>(i));
    const std::size_t k = std::min(i - 1, static_cast<std::size_t>(u * static_cast<float>(i)));
    std::swap(all[i - 1], all[k]);
  }
  return all;
}

}  // namespace

std::vector<Solution> solutions_for(Problem p) {
  switch (p) {
    case Problem::vanishing_gradient: return {{"selu", 1}, {"relu", 1}, {"bn", 1}};
    case Problem::exploding_gradient:
      return {{"selu", 1}, {"relu", 1}, {"gradient", 2}, {"tanh", 1}, {"bn", 1}};
    case Problem::dying_relu: return {{"selu", 1}, {"bn", 1}, {"initial", 3}, {"leaky", 3}};
    case Problem::oscillating_loss:
      return {{"adam", 1},     {"lr", 3}, {"ReduceLR", 1}, {"batch", 4},
              {"momentum", 3}, {"GN", 1}, {"initial", 3}};
    case Problem::slow_convergence: return {{"optimizer", 3}, {"lr", 3}, {"initial", 3}};
  }
  return {};
}

std::optional<Variant> apply_solution(const Experiment& e, Problem p, const std::string& name,
                                      int j, std::uint64_t seed) {
  Variant v{e, ""};
  Experiment& x = v.experiment;
  auto set_activation = [&](const char* act, const char* kernel, const char* bias) {
    x.edits.activation = act;
    x.edits.alpha = std::numeric_limits<float>::quiet_NaN();
    x.edits.kernel_init = kernel;
    x.edits.bias_init = bias;
  };
  static const char* kInits[] = {"he_uniform",     "lecun_uniform", "glorot_normal",
                                 "glorot_uniform", "he_normal",     "lecun_normal"};
  if (name == "selu") {
    set_activation("selu", "lecun_uniform", "lecun_uniform");
    v.describe = "SELU activations, lecun_uniform kernels and biases";
  } else if (name == "relu") {
    set_activation("relu", "he_uniform", "zeros");
    v.describe = "ReLU activations, he_uniform kernels, zero biases";
  } else if (name == "tanh") {
    set_activation("tanh", "he_uniform", "zeros");
    v.describe = "tanh activations, he_uniform kernels, zero biases";
  } else if (name == "bn") {
    x.edits.batch_norm = true;
    v.describe = "batch norm after each hidden layer";
  } else if (name == "leaky") {
    static const char* kLeaky[] = {"leaky_relu", "elu", "thresholded_relu"};
    x.edits.activation = kLeaky[std::clamp(j, 0, 2)];
    x.edits.alpha = std::numeric_limits<float>::quiet_NaN();
    v.describe = std::string(kLeaky[std::clamp(j, 0, 2)]) + " activations (Keras's defaults)";
  } else if (name == "initial") {
    const char* bias = kInits[static_cast<int>(draw(seed, name, j, 0) * 6.0f) % 6];
    const char* kernel = kInits[static_cast<int>(draw(seed, name, j, 1) * 6.0f) % 6];
    x.edits.kernel_init = kernel;
    x.edits.bias_init = bias;
    v.describe = std::string(kernel) + " kernels, " + bias + " biases";
  } else if (name == "gradient") {
    if (e.optimizer.clip_value > 0.0f) return std::nullopt;
    // round(U(9, 10), 2)
    const float c = std::round((9.0f + draw(seed, name, j, 0)) * 100.0f) / 100.0f;
    x.optimizer.clip_value = c;
    v.describe = "gradient clipping by value " + fmt_float(c);
  } else if (name == "adam") {
    if (e.optimizer.kind == OptimizerConfig::Kind::adam) return std::nullopt;
    x.optimizer = keras_optimizer(OptimizerConfig::Kind::adam);
    x.schedule = Schedule{};
    x.schedule.base_lr = keras_default_lr(OptimizerConfig::Kind::adam);
    v.describe = "Adam with Keras's defaults (lr 0.001)";
  } else if (name == "lr") {
    const bool sgd = e.optimizer.kind == OptimizerConfig::Kind::sgd;
    const double base = sgd ? 0.01 : 0.001;
    const double lr =
        p == Problem::slow_convergence ? base * std::pow(10.0, j) : base * std::pow(0.1, j);
    if (static_cast<float>(lr) == e.schedule.base_lr) return std::nullopt;
    x.schedule.base_lr = static_cast<float>(lr);
    v.describe = "learning rate " + fmt_float(static_cast<float>(lr));
  } else if (name == "ReduceLR") {
    if (e.plateau.on) return std::nullopt;
    x.plateau = Plateau{};
    x.plateau.on = true;
    v.describe = "reduce on plateau (held-out loss, factor 0.2, patience 5, min_lr 0.001)";
  } else if (name == "batch") {
    const std::int64_t b = 32LL << j;
    if (b == e.batch_size) return std::nullopt;
    x.batch_size = b;
    v.describe = "batch size " + std::to_string(b);
  } else if (name == "momentum") {
    const float m = std::round((0.01f + 0.89f * draw(seed, name, j, 0)) * 100.0f) / 100.0f;
    x.optimizer = keras_optimizer(OptimizerConfig::Kind::sgd);
    x.optimizer.momentum = m;
    x.schedule = Schedule{};
    x.schedule.base_lr = keras_default_lr(OptimizerConfig::Kind::sgd);
    v.describe = "SGD with momentum " + fmt_float(m) + " (lr 0.01)";
  } else if (name == "GN") {
    if (e.edits.input_noise > 0.0f) return std::nullopt;
    x.edits.input_noise = 0.1f;
    v.describe = "Gaussian input noise, stddev 0.1";
  } else if (name == "optimizer") {
    std::vector<OptimizerConfig::Kind> others;
    for (auto k :
         {OptimizerConfig::Kind::sgd, OptimizerConfig::Kind::adam, OptimizerConfig::Kind::rmsprop})
      if (k != e.optimizer.kind) others.push_back(k);
    const auto k = others[static_cast<std::size_t>(draw(seed, name, j, 0) *
                                                   static_cast<float>(others.size())) %
                          others.size()];
    x.optimizer = keras_optimizer(k);
    x.schedule = Schedule{};
    x.schedule.base_lr = keras_default_lr(k);
    v.describe = std::string(optimizer_name(k)) + " with Keras's defaults (lr " +
                 fmt_float(x.schedule.base_lr) + ")";
  } else {
    throw std::invalid_argument("doctor: unknown solution '" + name + "'");
  }
  if (same(x, e)) return std::nullopt;
  return v;
}

RepairResult repair(const Experiment& e, const RepairOptions& o) {
  RepairResult r;
  DoctorOptions dopt = o.doctor;
  dopt.stop = true;
  auto run = [&](const Experiment& x, RepairTry* t) {
    LiveDoctor live(x, dopt);
    nets::RunOptions ro;
    live.attach(ro);
    nets::RunOutput out = nets::run_experiment(x, ro);
    out.record["doctor"] = live.record_entry();
    if (t != nullptr) {
      t->diagnosis = live.diagnosis();
      t->best_held_accuracy = best_held_accuracy(out.result);
      t->last_test_accuracy =
          out.result.epochs.empty() ? 0.0 : out.result.epochs.back().test_accuracy;
      t->epochs = static_cast<std::int64_t>(out.result.epochs.size());
      t->weight_hash = out.result.weight_hash;
    }
    if (o.on_run) o.on_run(t, out);
    return std::make_pair(live.diagnosis(), best_held_accuracy(out.result));
  };
  if (o.known_initial) {
    r.initial = o.known_initial;
    r.initial_best_held_accuracy = o.known_initial_accuracy;
  } else {
    const auto [first, first_acc] = run(e, nullptr);
    r.initial = first;
    r.initial_best_held_accuracy = first_acc;
  }
  if (!r.initial) return r;
  const auto& first = r.initial;

  Experiment base = e;
  Problem problem = first->problems.front();
  // The random baseline's order is drawn per experiment (FNV-1a of its JSON form, mixed with
  // the repair seed): every case gets its own order, and the same case the same one.
  std::uint64_t random_key = 1469598103934665603ull;
  for (unsigned char ch : nets::to_json(e).dump())
    random_key = (random_key ^ ch) * 1099511628211ull;
  random_key ^= o.repair_seed * 0x9E3779B97F4A7C15ull;
  std::map<Problem, std::vector<Solution>> remaining;
  std::set<Problem> attempted;
  for (int round = 1; round <= o.max_rounds; ++round) {
    r.rounds = round;
    attempted.insert(problem);
    if (!remaining.count(problem))
      remaining[problem] = o.random ? random_order(random_key, round) : solutions_for(problem);
    auto& sols = remaining[problem];
    const std::size_t take =
        std::min<std::size_t>(sols.size(), static_cast<std::size_t>(o.max_solutions));
    std::vector<Solution> now(sols.begin(), sols.begin() + static_cast<std::ptrdiff_t>(take));
    sols.erase(sols.begin(), sols.begin() + static_cast<std::ptrdiff_t>(take));  // used up
    std::optional<std::size_t> candidate;
    for (const Solution& s : now) {
      for (int j = 0; j < s.tries; ++j) {
        auto v = apply_solution(base, problem, s.name, j, o.repair_seed);
        if (!v) break;  // already in place: the solution's later tries too
        RepairTry t;
        t.round = round;
        t.problem = problem;
        t.solution = s.name;
        t.attempt = j;
        t.describe = v->describe;
        t.experiment = v->experiment;
        run(v->experiment, &t);
        if (!t.diagnosis) {
          t.outcome = "solved";
          r.tries.push_back(t);
          r.solved = true;
          r.repaired = t.experiment;
          return r;
        }
        const bool other = t.diagnosis->problems.front() != problem;
        t.outcome = other ? "other_problem" : "same_problem";
        r.tries.push_back(t);
        if (other && (!candidate || r.tries[*candidate].best_held_accuracy < t.best_held_accuracy))
          candidate = r.tries.size() - 1;
      }
    }
    if (!candidate) return r;
    const RepairTry& c = r.tries[*candidate];
    if (attempted.count(c.diagnosis->problems.front())) return r;
    base = c.experiment;
    problem = c.diagnosis->problems.front();
  }
  return r;
}

nlohmann::json to_json(const RepairResult& r) {
  nlohmann::json tries = nlohmann::json::array();
  for (const auto& t : r.tries) {
    nlohmann::json d =
        t.diagnosis ? to_json(*t.diagnosis, DoctorKind::detdl) : nlohmann::json(nullptr);
    if (t.diagnosis) d.erase("doctor");
    tries.push_back({{"round", t.round},
                     {"problem", std::string(problem_name(t.problem))},
                     {"solution", t.solution},
                     {"try", t.attempt},
                     {"describe", t.describe},
                     {"outcome", t.outcome},
                     {"diagnosis", d},
                     {"best_held_accuracy", t.best_held_accuracy},
                     {"last_test_accuracy", t.last_test_accuracy},
                     {"epochs", t.epochs},
                     {"weight_hash", t.weight_hash},
                     {"experiment", nets::to_json(t.experiment)}});
  }
  nlohmann::json init =
      r.initial ? to_json(*r.initial, DoctorKind::detdl) : nlohmann::json(nullptr);
  if (r.initial) init.erase("doctor");
  return {{"initial", init},
          {"initial_best_held_accuracy", r.initial_best_held_accuracy},
          {"solved", r.solved},
          {"rounds", r.rounds},
          {"tries", tries},
          {"repaired", r.repaired ? nets::to_json(*r.repaired) : nlohmann::json(nullptr)}};
}

}  // namespace detdl::doctor
