// The doctor's benchmark (studies/doctor/): problem-inducing and healthy configurations,
// each with its expected diagnosis, judged on exact twin runs.
//
// Per case: one undoctored run to the full epoch budget with the monitor probing every
// epoch and both doctors watching. Watching changes no bit, so this run is the twin of
// every doctored run, and each doctor's diagnosis is the one it makes live (a doctored run
// is this run cut at the diagnosis). Then, per doctor that diagnosed something, its repair
// loop (doctor/repair.h), and the random-repair baseline after AutoTrainer's diagnosis.
//
// Judging (the rules): a diagnosis is a false positive when the twin reaches the
// accuracy target (best held-out accuracy >= theta); a repair counts when the twin fails
// and the repaired run reaches it (the solving run's best held-out accuracy, or when
// unsolved the best of the tries: AutoTrainer's "improved model").
//
// A case's result is written to OUT/cases/NAME.json as soon as it is done (atomically);
// a rerun skips the cases already there, so a benchmark resumes after it dies.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nets/experiment.h"

namespace detdl::doctor {

struct BenchCase {
  std::string name;    // unique, [A-Za-z0-9._-]+ (a file name)
  std::string expect;  // a problem name (doctor/detect.h) or "healthy"
  std::string note;    // why it should show that
  double theta = 0.0;  // this case's accuracy target (0: the benchmark's)
  nets::Experiment experiment;
};

struct Bench {
  std::string name;
  double theta = 0.7;
  std::uint64_t repair_seed = 1;
  int max_rounds = 10;
  std::vector<BenchCase> cases;
};

// A benchmark file (TOML or JSON): name, theta, repair_seed, max_rounds, [experiment]
// defaults, and [[case]] entries with name, expect, note and [case.experiment]. Errors name
// the file and the field.
Bench load_bench(const std::string& path);

// Arms: "autotrainer", "detdl", "random" (the random-repair baseline, after AutoTrainer's
// detection); repairs off skips every repair loop (detection and twins only).
struct BenchOptions {
  std::vector<std::string> arms{"autotrainer", "detdl", "random"};
  bool repairs = true;
  std::function<void(const std::string& line)> log;
};

// Runs one case and returns its result (docs/doctor.md, "Benchmark results").
nlohmann::json run_bench_case(const Bench& b, const BenchCase& c, const BenchOptions& o);

// Runs the cases not yet in out_dir/cases, then writes out_dir/summary.json, summary.md,
// cases.csv (one row per case) and tries.csv (one row per repair run) from every case
// result there. Returns the summary.
nlohmann::json run_bench(const Bench& b, const std::string& out_dir, const BenchOptions& o);

// The summary of case results: per arm, detection per expected problem, false positives
// (twin-judged), repairs that count, accuracy before and after, runs spent.
nlohmann::json summarize_bench(const Bench& b, const std::vector<nlohmann::json>& results);
std::string summary_markdown(const nlohmann::json& summary);

}  // namespace detdl::doctor
