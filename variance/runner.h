// Runs a study's plan on one machine: every row not yet in the store, `jobs` at a time, each
// in its own worker process forked from a parent that has loaded the data sets, so the data
// is in memory once (shared copy-on-write) however many runs go at once. A worker stores its
// run in one transaction and exits; a run that dies leaves nothing, so running the same
// command again finishes the study with exactly the rows an uninterrupted one would have.
//
// Why processes and not threads: the CPU thread pool is one per process and each run
// chooses its own thread count; a process per run also isolates a crash to its run.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "variance/study.h"

namespace detdl::variance {

struct RunnerOptions {
  int jobs = 1;                 // runs at once
  bool step_hashes = true;      // record each step's weight hash (first-divergence statistics)
  std::int64_t keep_weights_up_to = 4'000'000;  // store final weights of nets this small (distances)
  bool quiet = false;           // no per-run lines
  std::int64_t max_runs = -1;   // stop after starting this many (tests); -1: all
};

struct RunnerSummary {
  std::int64_t planned = 0;   // rows in the plan
  std::int64_t stored = 0;    // already in the store before this call
  std::int64_t ran = 0;       // finished and stored by this call
  std::int64_t failed = 0;    // workers that exited with an error (their rows stay missing)
};

// Runs the plan of `study` into the SQLite store at `store_path` (created if missing).
RunnerSummary run_study(const Study& study, const std::string& store_path, const RunnerOptions& opt = {});

}  // namespace detdl::variance
