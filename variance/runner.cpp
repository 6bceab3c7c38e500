#include "variance/runner.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>

#include "engine/checkpoint.h"
#include "engine/hash.h"
#include "engine/train_checkpoint.h"
#include "kernels/cpu/parallel.h"
#include "nets/experiment.h"
#include "variance/pg_store.h"
#include "variance/store.h"

namespace detdl::variance {

namespace {

data::DataOptions data_options(const nets::Experiment& e) {
  data::DataOptions d;
  d.root = e.data_dir;
  d.study_split = e.study_split;
  d.preprocess = e.preprocess;
  d.split_seed = e.seeds.split;
  return d;
}

// A stored row's checkpoint goes, with the temporaries of writes that a kill interrupted
// (engine/atomic_file.h: "<file>.tmp.XXXXXX"); the row's claim keeps other writers away.
void remove_checkpoint(const std::string& dir, const std::string& key) {
  namespace fs = std::filesystem;
  std::error_code ignored;
  const fs::path file = checkpoint_path(dir, key);
  fs::remove(file, ignored);
  const std::string tmp = file.filename().string() + ".tmp.";
  for (auto it = fs::directory_iterator(dir, ignored); !ignored && it != fs::directory_iterator();
       it.increment(ignored))
    if (it->path().filename().string().rfind(tmp, 0) == 0) fs::remove(it->path(), ignored);
}

// Worker exit codes the parent tells apart.
constexpr int kExitStored = 0, kExitFailed = 2, kExitNotChild = 3, kExitAlreadyStored = 4;

void report(const PlanRow& row, const nets::RunOutput& out, double secs, bool duplicate) {
  const auto& last = out.result.epochs.empty() ? EpochStats{} : out.result.epochs.back();
  std::printf("  done  %-20s rep %3lld  key %s  hash %s  test_acc %.4f  test_loss %.6g  %.1fs%s\n",
              row.setting.c_str(), static_cast<long long>(row.repetition), row.key.c_str(),
              out.result.weight_hash.c_str(), last.test_accuracy, last.test_loss, secs,
              duplicate ? "  (another runner stored it first)" : "");
  std::fflush(stdout);
}

// The worker: one run, or several trained together, each stored in its own transaction,
// then _exit (no destructors of the parent's objects run in the child, and nothing is
// flushed twice). A worker that dies before storing leaves nothing of its runs.
[[noreturn]] void worker(const Study& study, const std::vector<const PlanRow*>& rows,
                         const std::string& store_path, const RunnerOptions& opt, pid_t parent) {
  // Die with the parent: a killed study leaves no orphans that keep running.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(kExitNotChild);
  int code = kExitStored;
  try {
    const nets::RunOptions ro = run_options(opt);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<nets::RunOutput> outs;
    // A row alone trains alone, unless it has a checkpoint to resume (a batch of one).
    const bool resumable =
        !opt.checkpoint_dir.empty() &&
        std::filesystem::exists(checkpoint_path(opt.checkpoint_dir, rows[0]->key)) &&
        nets::batch_refusal({rows[0]->experiment}).empty();
    if (rows.size() == 1 && !resumable) {
      // A run alone keeps the trainer's checkpoints with its record so far (not with the
      // plateau, which a checkpoint cannot hold).
      nets::RunOptions one = ro;
      if (!opt.checkpoint_dir.empty() && !rows[0]->experiment.plateau.on) {
        std::filesystem::create_directories(opt.checkpoint_dir);
        one.checkpoint_path = checkpoint_path(opt.checkpoint_dir, rows[0]->key);
        one.resume = true;  // where the file exists
        one.record_in_checkpoint = true;
        one.checkpoint_seconds = opt.checkpoint_seconds;
      }
      try {
        outs.push_back(nets::run_experiment(rows[0]->experiment, one));
      } catch (const std::runtime_error& e) {
        if (one.checkpoint_path.empty() || !std::filesystem::exists(one.checkpoint_path)) throw;
        throw std::runtime_error(std::string(e.what()) + " (delete " + one.checkpoint_path +
                                 " to train the run from the start)");
      }
      if (!opt.quiet && outs[0].result.resumed)
        std::printf("  resumed %s rep %lld at step %lld from %s\n", rows[0]->setting.c_str(),
                    static_cast<long long>(rows[0]->repetition),
                    static_cast<long long>(outs[0].record["resumed_from_step"].get<std::int64_t>()),
                    one.checkpoint_path.c_str());
    } else {
      std::vector<nets::Experiment> es;
      for (const PlanRow* row : rows) es.push_back(row->experiment);
      nets::BatchedCheckpoints ck;
      if (!opt.checkpoint_dir.empty()) {
        std::filesystem::create_directories(opt.checkpoint_dir);
        for (const PlanRow* row : rows)
          ck.paths.push_back(checkpoint_path(opt.checkpoint_dir, row->key));
        // The runner batches only rows at one checkpoint: the first's file says which.
        ck.resume = std::filesystem::exists(ck.paths[0]);
        ck.every_seconds = opt.checkpoint_seconds;
      }
      try {
        outs = nets::run_experiments_batched(es, ro, nets::BatchOrder::by_lanes,
                                             opt.checkpoint_dir.empty() ? nullptr : &ck);
      } catch (const std::runtime_error& e) {
        if (!ck.resume) throw;
        throw std::runtime_error(std::string(e.what()) + " (delete the batch's files in " +
                                 opt.checkpoint_dir + " to train its runs from the start)");
      }
      if (ck.resume && !opt.quiet)
        std::printf("  resumed %zu runs of %s at step %lld from %s\n", rows.size(),
                    rows[0]->setting.c_str(),
                    static_cast<long long>(outs[0].record["resumed_from_step"].get<std::int64_t>()),
                    opt.checkpoint_dir.c_str());
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto store = open_row_store(store_path, opt.claim_lease_seconds);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const PlanRow& row = *rows[i];
      const bool stored = store->put_run(row.key, study.name, row.setting, row.repetition,
                                         outs[i].record, outs[i].final_weights);
      if (!stored) code = kExitAlreadyStored;
      if (!opt.checkpoint_dir.empty()) remove_checkpoint(opt.checkpoint_dir, row.key);
      if (!opt.quiet) report(row, outs[i], secs, !stored);
    }
  } catch (const std::exception& e) {
    for (const PlanRow* row : rows)
      std::fprintf(stderr, "  FAILED %s rep %lld (key %s): %s\n", row->setting.c_str(),
                   static_cast<long long>(row->repetition), row->key.c_str(), e.what());
    code = kExitFailed;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  _exit(code);
}

}  // namespace

std::string checkpoint_path(const std::string& dir, const std::string& key) {
  return (std::filesystem::path(dir) / (key + ".safetensors")).string();
}

std::int64_t checkpoint_epochs(const std::string& path) {
  if (!std::filesystem::exists(path)) return -1;
  try {
    return metadata_int(path, load_safetensors(path), "caller.epochs_done");
  } catch (const std::exception&) {
    return -2;
  }
}

std::vector<const PlanRow*> plan_slice(const std::vector<PlanRow>& plan,
                                       const std::set<std::string>& only_settings,
                                       const std::set<std::int64_t>& only_repetitions) {
  std::set<std::string> settings;
  std::set<std::int64_t> repetitions;
  for (const auto& row : plan) {
    settings.insert(row.setting);
    repetitions.insert(row.repetition);
  }
  for (const auto& s : only_settings)
    if (!settings.count(s)) {
      std::string known;
      for (const auto& k : settings) known += (known.empty() ? "'" : ", '") + k + "'";
      throw std::invalid_argument("--only-setting: no setting '" + s + "' in the study (" + known +
                                  ")");
    }
  for (auto r : only_repetitions)
    if (!repetitions.count(r))
      throw std::invalid_argument("--only-repetition: no repetition " + std::to_string(r) +
                                  " in the plan (0 to " + std::to_string(*repetitions.rbegin()) +
                                  ")");
  std::vector<const PlanRow*> out;
  for (const auto& row : plan)
    if ((only_settings.empty() || only_settings.count(row.setting)) &&
        (only_repetitions.empty() || only_repetitions.count(row.repetition)))
      out.push_back(&row);
  return out;
}

nets::RunOptions run_options(const RunnerOptions& opt) {
  nets::RunOptions ro;
  ro.step_hashes = opt.step_hashes;
  ro.epoch_predictions = opt.epoch_predictions;
  ro.keep_weights_up_to = opt.keep_weights_up_to;
  ro.monitor.every = opt.monitor_every;
  return ro;
}

std::int64_t shard_of(const std::string& key, std::int64_t shards) {
  if (shards < 1) throw std::invalid_argument("shard_of: shards must be >= 1");
  Fnv1a64 h;
  h.update(key.data(), key.size());
  return static_cast<std::int64_t>(h.value() % static_cast<std::uint64_t>(shards));
}

std::pair<std::int64_t, std::int64_t> parse_shard(const std::string& text) {
  const auto bad = [&](const std::string& why) {
    return std::invalid_argument("--shard: '" + text + "' " + why +
                                 " (want I/N: shard I of N, 0 <= I < N)");
  };
  const auto slash = text.find('/');
  if (slash == std::string::npos) throw bad("has no '/'");
  const auto number = [&](const std::string& part) {
    if (part.empty() || part.size() > 9 ||
        part.find_first_not_of("0123456789") != std::string::npos)
      throw bad("is not two whole numbers");
    return std::stoll(part);
  };
  const std::int64_t i = number(text.substr(0, slash)), n = number(text.substr(slash + 1));
  if (n < 1) throw bad("has N < 1");
  if (i >= n) throw bad("has I >= N");
  return {i, n};
}

std::vector<const PlanRow*> runner_rows(const std::vector<PlanRow>& full,
                                        const RunnerOptions& opt) {
  if (opt.shard_count < 1 || opt.shard_index < 0 || opt.shard_index >= opt.shard_count)
    throw std::invalid_argument("--shard: want 0 <= I < N, got " + std::to_string(opt.shard_index) +
                                "/" + std::to_string(opt.shard_count));
  std::vector<const PlanRow*> plan = plan_slice(full, opt.only_settings, opt.only_repetitions);
  if (opt.shard_count > 1)
    std::erase_if(plan, [&](const PlanRow* row) {
      return shard_of(row->key, opt.shard_count) != opt.shard_index;
    });
  return plan;
}

RunnerSummary run_study(const Study& study, const std::string& store_path,
                        const RunnerOptions& opt) {
  if (opt.jobs < 1) throw std::invalid_argument("--jobs: must be at least 1");
  if (opt.batch < 1) throw std::invalid_argument("--batch: must be at least 1");
  const std::vector<PlanRow> full = make_plan(study);
  const std::vector<const PlanRow*> plan = runner_rows(full, opt);
  RunnerSummary sum;
  sum.planned = static_cast<std::int64_t>(plan.size());
  std::deque<const PlanRow*> pending;  // rows to claim, in plan order
  {
    // Every connection of the parent is closed before a fork: SQLite connections must not
    // cross a fork, so every worker opens its own (and the parent opens one per use).
    const auto store = open_row_store(store_path, opt.claim_lease_seconds);
    store->put_study(study.name, study.spec);
    const std::set<std::string> done = store->run_keys(study.name);
    for (const PlanRow* row : plan) {
      if (done.count(row->key)) {
        ++sum.stored;
      } else {
        pending.push_back(row);
      }
    }
  }
  if (!opt.quiet)
    std::printf(
        "study %s: %lld runs planned, %lld already stored, %zu to run (%d at a time) -> %s\n",
        study.name.c_str(), static_cast<long long>(sum.planned), static_cast<long long>(sum.stored),
        pending.size(), opt.jobs, store_path.c_str());
  std::fflush(stdout);
  if (pending.empty()) return sum;
  // A setting's rows trained together are split evenly over the jobs (30 rows, --jobs 2:
  // two batches of 15), so that batching never leaves a job idle that one-by-one runs
  // would have kept busy.
  std::map<std::string, std::int64_t> batch_cap;
  for (const PlanRow* row : pending) ++batch_cap[row->setting];
  for (auto& [setting, n] : batch_cap)
    n = opt.monitor_every > 0 ? 1 : std::min(opt.batch, (n + opt.jobs - 1) / opt.jobs);

  // Each pending row's checkpoint, by its epochs (rows batch only with rows at the same one;
  // unreadable files, -2, together: their worker names them).
  std::map<std::string, std::int64_t> saved;
  if (!opt.checkpoint_dir.empty()) {
    std::size_t with_file = 0;
    for (const PlanRow* row : pending) {
      saved[row->key] = checkpoint_epochs(checkpoint_path(opt.checkpoint_dir, row->key));
      with_file += saved[row->key] != -1;
    }
    if (with_file > 0 && !opt.quiet)
      std::printf("study %s: %zu of them resume from checkpoints in %s\n", study.name.c_str(),
                  with_file, opt.checkpoint_dir.c_str());
  }

  // Load every data set the pending runs need, once, here: the workers inherit it.
  for (const PlanRow* row : pending)
    data::load_data(row->experiment.data, data_options(row->experiment));

  // Workers are forked from this process: it must hold no pool threads (a child inherits
  // none of them, only their handles), so the parent runs single-threaded from here on.
  cpu::set_num_threads(1);
  const pid_t parent = getpid();
  const Claimant me = Claimant::self();
  std::map<pid_t, std::vector<const PlanRow*>> running;
  std::vector<const PlanRow*> held;  // rows other live runners hold: looked at again later
  using Clock = std::chrono::steady_clock;
  auto next_heartbeat = Clock::now() + std::chrono::seconds(opt.heartbeat_seconds);
  auto next_recheck = Clock::now();
  bool announced_wait = false;

  // The next rows this runner may run, claimed: one row, or the rows of one setting that
  // train together (RunnerOptions::batch); empty when none can be claimed now.
  auto claim_next = [&]() -> std::vector<const PlanRow*> {
    std::vector<const PlanRow*> rows;
    if (pending.empty()) return rows;
    const auto store = open_row_store(store_path, opt.claim_lease_seconds);  // closed again
                                                                             // before the fork
    // Whether `row` may join the rows claimed so far.
    auto joins = [&](const PlanRow* row) {
      if (rows.empty()) return true;
      const auto n = static_cast<std::int64_t>(rows.size());
      if (n >= batch_cap[rows[0]->setting] ||
          (opt.max_runs >= 0 && sum.started + n >= opt.max_runs) ||
          row->setting != rows[0]->setting || saved[row->key] != saved[rows[0]->key])
        return false;
      return nets::batch_refusal({rows[0]->experiment, row->experiment}).empty();
    };
    while (!pending.empty() && joins(pending.front())) {
      const PlanRow* row = pending.front();
      pending.pop_front();
      switch (store->claim(row->key, study.name, me)) {
        case ClaimResult::claimed: rows.push_back(row); break;
        case ClaimResult::stored: ++sum.by_others; break;
        case ClaimResult::held: held.push_back(row); break;
      }
    }
    return rows;
  };
  auto may_start = [&] { return opt.max_runs < 0 || sum.started < opt.max_runs; };

  for (;;) {
    while (static_cast<int>(running.size()) < opt.jobs && may_start()) {
      const std::vector<const PlanRow*> rows = claim_next();
      if (rows.empty()) break;
      std::fflush(stdout);
      std::fflush(stderr);
      const pid_t pid = fork();
      if (pid < 0) {
        for (const PlanRow* row : rows)
          open_row_store(store_path, opt.claim_lease_seconds)->release(row->key, me);
        throw std::runtime_error("study: fork failed");
      }
      if (pid == 0) worker(study, rows, store_path, opt, parent);
      running[pid] = rows;
      sum.started += static_cast<std::int64_t>(rows.size());
    }
    const bool others_hold = !held.empty() && opt.wait_for_others && may_start();
    if (running.empty() && (!may_start() || (pending.empty() && !others_hold))) break;
    // Rows another runner holds are looked at again once a second: it may have stored
    // them, or died (its claims are then stale and this runner takes them over).
    if (pending.empty() && others_hold && Clock::now() >= next_recheck) {
      if (running.empty() && !announced_wait && !opt.quiet) {
        std::printf("study %s: waiting for %zu runs that other runners hold\n", study.name.c_str(),
                    held.size());
        std::fflush(stdout);
        announced_wait = true;
      }
      pending.assign(held.begin(), held.end());
      held.clear();
      next_recheck = Clock::now() + std::chrono::seconds(1);
      continue;
    }
    if (!running.empty() && Clock::now() >= next_heartbeat) {
      open_row_store(store_path, opt.claim_lease_seconds)->heartbeat(me);
      next_heartbeat = Clock::now() + std::chrono::seconds(opt.heartbeat_seconds);
    }
    int status = 0;
    const pid_t pid = running.empty() ? 0 : waitpid(-1, &status, WNOHANG);
    if (pid < 0) throw std::runtime_error("study: waitpid failed");
    if (pid == 0) {
      // Polled rather than blocking: the heartbeat and the recheck need this process awake.
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    auto it = running.find(pid);
    if (it == running.end()) continue;
    const std::vector<const PlanRow*>& rows = it->second;
    const auto n = static_cast<std::int64_t>(rows.size());
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code == kExitStored) {
      sum.ran += n;
    } else {
      // The claims go, so that another runner (or this command run again) may try the rows.
      for (const PlanRow* row : rows)
        open_row_store(store_path, opt.claim_lease_seconds)->release(row->key, me);
      if (code == kExitAlreadyStored) {
        sum.duplicates += n;
      } else {
        sum.failed += n;
        if (WIFSIGNALED(status))
          for (const PlanRow* row : rows)
            std::fprintf(stderr, "  FAILED %s rep %lld: worker killed by signal %d\n",
                         row->setting.c_str(), static_cast<long long>(row->repetition),
                         WTERMSIG(status));
      }
    }
    running.erase(it);
  }
  open_row_store(store_path, opt.claim_lease_seconds)->finish();
  if (!opt.checkpoint_dir.empty()) {  // the folder goes when no checkpoint is left in it
    std::error_code ignored;
    if (std::filesystem::is_empty(opt.checkpoint_dir, ignored) && !ignored)
      std::filesystem::remove(opt.checkpoint_dir, ignored);
  }
  if (!opt.quiet) {
    // What the store holds of this plan, counted there (not from this runner's tallies).
    const std::set<std::string> keys =
        open_row_store(store_path, opt.claim_lease_seconds)->run_keys(study.name);
    std::int64_t stored = 0;
    for (const auto& row : plan) stored += keys.count(row->key);
    std::printf(
        "study %s: %lld ran, %lld failed, %lld stored by other runners, %lld of %lld stored\n",
        study.name.c_str(), static_cast<long long>(sum.ran), static_cast<long long>(sum.failed),
        static_cast<long long>(sum.by_others + sum.duplicates), static_cast<long long>(stored),
        static_cast<long long>(sum.planned));
  }
  return sum;
}

}  // namespace detdl::variance
