#include "variance/runner.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <stdexcept>

#include "kernels/cpu/parallel.h"
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

// The worker: one run, stored in one transaction, then _exit (no destructors of the
// parent's objects run in the child, and nothing is flushed twice).
[[noreturn]] void worker(const Study& study, const PlanRow& row, const std::string& store_path,
                         const RunnerOptions& opt, pid_t parent) {
  // Die with the parent: a killed study leaves no orphans that keep running.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(3);
  int code = 0;
  try {
    nets::RunOptions ro;
    ro.step_hashes = opt.step_hashes;
    ro.epoch_predictions = true;
    ro.keep_weights_up_to = opt.keep_weights_up_to;
    const auto t0 = std::chrono::steady_clock::now();
    const nets::RunOutput out = nets::run_experiment(row.experiment, ro);
    Store store(store_path);
    store.put_run(row.key, study.name, row.setting, row.repetition, out.record, out.final_weights);
    if (!opt.quiet) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const auto& last = out.result.epochs.empty() ? EpochStats{} : out.result.epochs.back();
      std::printf("  done  %-20s rep %3lld  key %s  hash %s  test_acc %.4f  %.1fs\n", row.setting.c_str(),
                  static_cast<long long>(row.repetition), row.key.c_str(), out.result.weight_hash.c_str(),
                  last.test_accuracy, secs);
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "  FAILED %s rep %lld (key %s): %s\n", row.setting.c_str(),
                 static_cast<long long>(row.repetition), row.key.c_str(), e.what());
    code = 2;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  _exit(code);
}

}  // namespace

RunnerSummary run_study(const Study& study, const std::string& store_path, const RunnerOptions& opt) {
  if (opt.jobs < 1) throw std::invalid_argument("--jobs: must be at least 1");
  const std::vector<PlanRow> plan = make_plan(study);
  RunnerSummary sum;
  sum.planned = static_cast<std::int64_t>(plan.size());
  std::vector<const PlanRow*> todo;
  {
    // The parent's connection is closed before any fork: SQLite connections must not
    // cross a fork, so every worker opens its own.
    Store store(store_path);
    store.put_study(study.name, study.spec);
    const std::set<std::string> done = store.run_keys(study.name);
    for (const auto& row : plan) {
      if (done.count(row.key)) {
        ++sum.stored;
      } else {
        todo.push_back(&row);
      }
    }
  }
  if (!opt.quiet)
    std::printf("study %s: %lld runs planned, %lld already stored, %zu to run (%d at a time) -> %s\n",
                study.name.c_str(), static_cast<long long>(sum.planned), static_cast<long long>(sum.stored),
                todo.size(), opt.jobs, store_path.c_str());
  std::fflush(stdout);
  if (todo.empty()) return sum;

  // Load every data set the pending runs need, once, here: the workers inherit it.
  for (const PlanRow* row : todo) data::load_data(row->experiment.data, data_options(row->experiment));

  // Workers are forked from this process: it must hold no pool threads (a child inherits
  // none of them, only their handles), so the parent runs single-threaded from here on.
  cpu::set_num_threads(1);
  const pid_t parent = getpid();
  std::map<pid_t, const PlanRow*> running;
  std::size_t next = 0;
  std::int64_t started = 0;
  auto can_start = [&] { return next < todo.size() && (opt.max_runs < 0 || started < opt.max_runs); };
  while (can_start() || !running.empty()) {
    while (can_start() && static_cast<int>(running.size()) < opt.jobs) {
      const PlanRow* row = todo[next++];
      std::fflush(stdout);
      std::fflush(stderr);
      const pid_t pid = fork();
      if (pid < 0) throw std::runtime_error("study: fork failed");
      if (pid == 0) worker(study, *row, store_path, opt, parent);
      running[pid] = row;
      ++started;
    }
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) throw std::runtime_error("study: waitpid failed");
    auto it = running.find(pid);
    if (it == running.end()) continue;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      ++sum.ran;
    } else {
      ++sum.failed;
      if (WIFSIGNALED(status))
        std::fprintf(stderr, "  FAILED %s rep %lld: worker killed by signal %d\n", it->second->setting.c_str(),
                     static_cast<long long>(it->second->repetition), WTERMSIG(status));
    }
    running.erase(it);
  }
  if (!opt.quiet)
    std::printf("study %s: %lld ran, %lld failed, %lld of %lld stored\n", study.name.c_str(),
                static_cast<long long>(sum.ran), static_cast<long long>(sum.failed),
                static_cast<long long>(sum.stored + sum.ran), static_cast<long long>(sum.planned));
  return sum;
}

}  // namespace detdl::variance
