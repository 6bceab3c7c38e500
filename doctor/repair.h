// The training doctor's repairs: AutoTrainer's solution lists (utils/repair.py,
// repair_strategy('balance')) as changes of the experiment, and its repair loop
// (utils/modules.py, Repair_Module), so that every repaired run is an ordinary,
// reproducible run with its own record.
//
// Stated choices where detdl differs from the original:
// - Start: every repaired run starts from a fresh initialisation of the edited net (the
//   experiment's init seed), not from the weights the diagnosed run had reached (the
//   original's, which made "another initializer" nearly useless).
// - Random choices (the initialisers of `initial`, the clip value of `gradient`, the
//   momentum of `momentum`, the optimizer of `optimizer`) are drawn from Philox keyed by
//   the repair seed, the solution and the try, instead of numpy's unseeded generator: the
//   same repair seed gives the same repairs.
// - Optimizers: AutoTrainer's `optimizer` draws from SGD, Adam, Nadam, Adamax and RMSprop;
//   detdl has SGD, Adam and RMSprop (Keras's forms and defaults).
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "doctor/detect.h"
#include "doctor/live.h"
#include "nets/experiment.h"

namespace detdl::doctor {

// One entry of a solution list: name and how many tries ("lr_3": lr, 3).
struct Solution {
  std::string name;
  int tries = 1;
};
// AutoTrainer's 'balance' lists: VG selu, relu, bn; EG selu, relu, gradient x2, tanh, bn;
// DR selu, bn, initial x3, leaky x3; OL adam, lr x3, ReduceLR, batch x4, momentum x3, GN,
// initial x3; SC optimizer x3, lr x3, initial x3.
std::vector<Solution> solutions_for(Problem p);

// Try j (0-based) of solution `name` for problem p applied to e, and a sentence saying
// what it changed; nullopt when it would change nothing (AutoTrainer's "already used":
// the try is skipped, and so are the solution's later tries).
struct Variant {
  nets::Experiment experiment;
  std::string describe;
};
std::optional<Variant> apply_solution(const nets::Experiment& e, Problem p, const std::string& name,
                                      int j, std::uint64_t repair_seed);

struct RepairTry {
  int round = 0;
  Problem problem;       // the problem this try repairs
  std::string solution;  // "lr", "selu", ...
  int attempt = 0;       // 0-based try of the solution
  std::string describe;
  nets::Experiment experiment;
  std::optional<Diagnosis> diagnosis;  // the retrained run's (none: solved)
  double best_held_accuracy = 0.0;     // AutoTrainer's train_result: its best held-out accuracy
  double last_test_accuracy = 0.0;
  std::int64_t epochs = 0;  // trained before a diagnosis stopped it (or all)
  std::string weight_hash;
  // solved, other_problem (a different problem: a candidate starting point) or same_problem
  std::string outcome;
};

struct RepairResult {
  std::optional<Diagnosis> initial;  // the original run's diagnosis (none: nothing to repair)
  double initial_best_held_accuracy = 0.0;
  std::vector<RepairTry> tries;
  bool solved = false;
  int rounds = 0;
  std::optional<nets::Experiment> repaired;  // the solving variant
};

struct RepairOptions {
  DoctorOptions doctor;  // its `stop` is ignored: every run stops at its diagnosis
  std::uint64_t repair_seed = 1;
  int max_rounds = 10;
  int max_solutions = 10;  // per round (issue_repair's max_try)
  // The random-repair baseline (the independent study's): each round tries the solutions
  // of every problem, each with its tries, in an order drawn from the repair seed and the
  // experiment (each case its own order), instead of the diagnosed problem's list.
  bool random = false;
  // The original run's diagnosis when already known (a benchmark's twin run): the loop
  // starts with the repairs. Its accuracy is initial_best_held_accuracy.
  std::optional<Diagnosis> known_initial;
  double known_initial_accuracy = 0.0;
  // Called after each run (the original first, with try == nullptr).
  std::function<void(const RepairTry* t, const nets::RunOutput& out)> on_run;
};

// Trains e with the doctor; on a diagnosis, tries the problem's solutions in order, each a
// fresh run with a fresh doctor: the first run the doctor stays silent on solves it; a run
// showing another problem is a candidate, and when a round's solutions are spent the
// candidate with the best held-out accuracy starts the next round (a problem already
// repaired ends the loop, as in Repair_Module.solve); at most max_rounds rounds.
RepairResult repair(const nets::Experiment& e, const RepairOptions& o);

nlohmann::json to_json(const RepairResult& r);

}  // namespace detdl::doctor
