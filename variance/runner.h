// Runs a study's plan on one machine: every row not yet in the store, `jobs` at a time, each
// in its own worker process forked from a parent that has loaded the data sets, so the data
// is in memory once (shared copy-on-write) however many runs go at once. A worker stores its
// run in one transaction and exits; a run that dies leaves nothing, so running the same
// command again finishes the study with exactly the rows an uninterrupted one would have.
//
// Why processes and not threads: the CPU thread pool is one per process and each run
// chooses its own thread count; a process per run also isolates a crash to its run.
//
// Several runners, on one machine or on machines sharing the store, can feed one study:
// each claims a row in the store before forking its worker (variance/claims.h), skips rows
// that a live runner holds, and takes over the rows of a runner that died. A runner with
// nothing left to claim waits for the rows other runners hold (they may die), so when
// `study run` returns every row is stored or has failed.
#pragma once
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "nets/experiment.h"
#include "variance/study.h"

namespace detdl::variance {

struct RunnerOptions {
  int jobs = 1;             // runs at once
  bool step_hashes = true;  // record each step's weight hash (first-divergence statistics)
  // Record each epoch's test predictions (per-epoch churn, selection by epoch); BUTTER's
  // long runs on large test sets leave them out (mnist: 14,000 per epoch).
  bool epoch_predictions = true;
  std::int64_t keep_weights_up_to =
      4'000'000;               // store final weights of nets this small (distances)
  bool quiet = false;          // no per-run lines
  std::int64_t max_runs = -1;  // stop after starting this many (tests); -1: all
  // A claim of another machine whose heartbeat is older than this is taken over. The
  // runner renews its own every heartbeat_seconds; the lease must be a good deal longer.
  std::int64_t claim_lease_seconds = 300;
  std::int64_t heartbeat_seconds = 30;
  bool wait_for_others = true;  // wait for rows that other live runners hold (see above)
  // A slice of the plan (--only-setting, --only-repetition): when not empty, only rows of
  // these settings / repetitions run. Keys are the plan's, so a slice's runs are the very
  // runs the whole study would store. A name or repetition that matches no row is an error.
  std::set<std::string> only_settings;
  std::set<std::int64_t> only_repetitions;
  // A shard of the plan (--shard I/N): only rows with shard_of(key, shard_count) ==
  // shard_index run. N runners with I = 0..N-1 (a Slurm array) cover the plan exactly once,
  // each into its own store; `detdl study merge` joins the stores.
  std::int64_t shard_index = 0, shard_count = 1;
  // Repetitions trained together (nets::run_experiments_batched): consecutive rows of one
  // setting that differ only in their seeds and that batch_refusal allows (BUTTER nets on
  // the CPU at portable or repeatable) run as one batched computation of at most this many
  // runs, in one worker; each is still its own row, stored with the bits it has alone.
  // A setting's rows are split evenly over the jobs (with --jobs 2, 30 rows make two
  // batches of 15). 1: every run alone.
  std::int64_t batch = 64;
  // The training monitor (engine/monitor.h) every this many epochs into each record (0:
  // off). Runs with it go alone (not batched); it changes no bit of a run.
  std::int64_t monitor_every = 0;
  // Checkpoints (docs/studies.md): every run keeps its training state and its record so far
  // in checkpoint_dir/<key>.safetensors (a batch's rows: nets::BatchedCheckpoints; a run
  // alone: nets::RunOptions::record_in_checkpoint), written at the first epoch end
  // checkpoint_seconds after the last (0: every epoch end). A run that dies (a killed runner,
  // a machine taken back) resumes there when the study runs again, with the bits and record
  // of a run never stopped; a row's file goes once the row is stored. Rows join a batch only
  // with rows at the same checkpoint (or none); a batchable row left alone that has a file
  // resumes from it as a batch of one. Empty: no checkpoints.
  std::string checkpoint_dir;
  double checkpoint_seconds = 600.0;
};

// The checkpoint file of the run with this key in `dir` (RunnerOptions::checkpoint_dir).
std::string checkpoint_path(const std::string& dir, const std::string& key);

// The epochs a run's checkpoint file holds (`study plan`'s status): -1 without a file, -2
// for a file that cannot be read or was not written by a batch.
std::int64_t checkpoint_epochs(const std::string& path);

// The rows of `plan` in the slice (all rows when both sets are empty). Throws
// std::invalid_argument naming a setting or repetition that matches no row.
std::vector<const PlanRow*> plan_slice(const std::vector<PlanRow>& plan,
                                       const std::set<std::string>& only_settings,
                                       const std::set<std::int64_t>& only_repetitions);

// The rows `opt` asks for: the slice (plan_slice), then the shard (shard_of). Throws
// std::invalid_argument naming the option for a bad slice or shard.
std::vector<const PlanRow*> runner_rows(const std::vector<PlanRow>& plan, const RunnerOptions& opt);

// What a run records and keeps, from the runner's options (both runners' workers use it).
nets::RunOptions run_options(const RunnerOptions& opt);

// The shard of a run key among `shards` (>= 1): FNV-1a 64 of the key modulo shards, the same
// on every machine and for every plan the key is in.
std::int64_t shard_of(const std::string& key, std::int64_t shards);

// Parses "I/N" (0 <= I < N), the --shard option's value; throws std::invalid_argument
// naming the option otherwise.
std::pair<std::int64_t, std::int64_t> parse_shard(const std::string& text);

struct RunnerSummary {
  std::int64_t planned = 0;    // rows in the plan
  std::int64_t stored = 0;     // already in the store before this call
  std::int64_t ran = 0;        // finished and stored by this call
  std::int64_t failed = 0;     // workers that exited with an error (their rows stay missing)
  std::int64_t started = 0;    // workers this call forked (ran + failed + duplicates)
  std::int64_t by_others = 0;  // rows another runner stored while this one ran
  // Runs finished here but found already stored by another runner (0 unless a claim was
  // taken over from a runner that was only slow, not dead).
  std::int64_t duplicates = 0;
};

// Runs the plan of `study` into the SQLite store at `store_path` (created if missing).
RunnerSummary run_study(const Study& study, const std::string& store_path,
                        const RunnerOptions& opt = {});

}  // namespace detdl::variance
