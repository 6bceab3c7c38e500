// The study runner: every row stored once; a study stopped part way (by --max-runs, or by
// SIGKILL to the `detdl study run` process) and run again ends with exactly the rows of an
// uninterrupted study, and nothing is run twice; two runners on one store share the plan
// through claims, and a killed runner's claims are taken over (variance/claims.h).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "nets/experiment.h"
#include "tests/cli_run.h"
#include "variance/runner.h"
#include "variance/store.h"

namespace detdl::variance {
namespace {
namespace fs = std::filesystem;

fs::path temp_dir() {
  const fs::path d = fs::temp_directory_path() / ("detdl_runner_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

// Portable settings only: every run's bits are fixed, so whole rows can be compared.
std::string study_text(int epochs) {
  return "name = \"resume\"\nrepetitions = 3\n[experiment]\nnet = \"mlp:16\"\ndata = "
         "\"blobs\"\nepochs = " +
         std::to_string(epochs) +
         "\nbatch_size = 32\n[[setting]]\nname = \"fixed\"\n[[setting]]\nname = \"varied\"\nvary = "
         "[\"all\"]\n"
         "[[setting]]\nname = \"two-threads\"\nthreads = 2\nvary = [\"init\"]\n";
}

std::map<std::string, std::string> rows(const std::string& store) {
  std::map<std::string, std::string> out;
  for (const auto& r : Store(store).runs("resume"))
    out[r.key] = r.setting + "/" + std::to_string(r.repetition) + "/" + r.weight_hash;
  return out;
}

// A study of one varied setting: BUTTER's rectangle net on wine_quality_white, every row
// batchable.
std::string butter_study(int repetitions, int epochs) {
  return "name = \"resume\"\nrepetitions = " + std::to_string(repetitions) +
         "\n[experiment]\nnet = \"butter:rectangle:3:512\"\ndata = \"wine_quality_white\"\n"
         "data_dir = \"" DETDL_SHARED_DIR "/data\"\nepochs = " +
         std::to_string(epochs) +
         "\nbatch_size = 256\n[[setting]]\nname = \"varied\"\nvary = [\"all\"]\n";
}

// A record without what says when and how long, how it was batched and where it resumed.
nlohmann::json without_times(nlohmann::json j) {
  for (const char* k : {"timings", "started_at", "batched", "resumed_from_step"}) j.erase(k);
  for (auto& ep : j["epochs"])
    for (const char* k : {"seconds", "train_seconds", "validation_seconds", "test_seconds"})
      ep.erase(k);
  return j;
}

TEST(Runner, StoresEveryRowOnceAndSkipsStoredOnes) {
  const fs::path dir = temp_dir();
  const fs::path file = dir / "s.toml";
  std::ofstream(file) << study_text(2);
  const Study s = load_study(file.string());
  RunnerOptions opt;
  opt.jobs = 2;
  opt.quiet = true;
  const std::string full = (dir / "full.sqlite").string();
  fs::remove(full);
  auto sum = run_study(s, full, opt);
  EXPECT_EQ(sum.planned, 9);
  EXPECT_EQ(sum.ran, 9);
  EXPECT_EQ(sum.failed, 0);
  // The runner checkpoints the store's log when it ends (the workers' closes do not): the
  // .sqlite file alone holds every run, so a copy of it without its -wal loses nothing.
  EXPECT_FALSE(fs::exists(full + "-wal"));
  const std::string copy = (dir / "copy.sqlite").string();
  fs::copy_file(full, copy, fs::copy_options::overwrite_existing);
  EXPECT_EQ(Store(copy).runs("resume").size(), 9u);
  sum = run_study(s, full, opt);  // again: nothing to do
  EXPECT_EQ(sum.stored, 9);
  EXPECT_EQ(sum.ran, 0);
  const auto want = rows(full);
  ASSERT_EQ(want.size(), 9u);
  // The fixed setting: three bit-identical runs; the record keeps every step's hash.
  const auto runs = Store(full).runs("resume");
  std::set<std::string> fixed_hashes;
  for (const auto& r : runs)
    if (r.setting == "fixed") fixed_hashes.insert(r.weight_hash);
  EXPECT_EQ(fixed_hashes.size(), 1u);
  EXPECT_TRUE(Store(full).record(runs[0].key).contains("step_hashes"));

  // Stopped after 4 runs, then resumed: the same rows.
  const std::string part = (dir / "part.sqlite").string();
  fs::remove(part);
  opt.max_runs = 4;
  sum = run_study(s, part, opt);
  EXPECT_EQ(sum.ran, 4);
  EXPECT_EQ(rows(part).size(), 4u);
  opt.max_runs = -1;
  sum = run_study(s, part, opt);
  EXPECT_EQ(sum.stored, 4);
  EXPECT_EQ(sum.ran, 5);
  EXPECT_EQ(rows(part), want);

  // A slice (--only-setting / --only-repetition): only its rows, the very rows (same keys,
  // same bits) the whole study stores; names that match nothing are refused.
  const std::string sliced = (dir / "slice.sqlite").string();
  fs::remove(sliced);
  opt.only_settings = {"varied"};
  opt.only_repetitions = {0, 2};
  sum = run_study(s, sliced, opt);
  EXPECT_EQ(sum.planned, 2);
  EXPECT_EQ(sum.ran, 2);
  const auto got = rows(sliced);
  ASSERT_EQ(got.size(), 2u);
  for (const auto& [key, row] : got) {
    EXPECT_EQ(want.at(key), row);
    EXPECT_EQ(row.rfind("varied/", 0), 0u) << row;
    EXPECT_EQ(row.find("/1/"), std::string::npos) << row;
  }
  opt.only_settings = {"no-such"};
  EXPECT_THROW(run_study(s, sliced, opt), std::invalid_argument);
  opt.only_settings.clear();
  opt.only_repetitions = {3};  // repetitions are 0..2
  EXPECT_THROW(run_study(s, sliced, opt), std::invalid_argument);
  const auto plan = make_plan(s);
  EXPECT_EQ(plan_slice(plan, {}, {}).size(), plan.size());
  EXPECT_EQ(plan_slice(plan, {"fixed", "two-threads"}, {1}).size(), 2u);
}

// BUTTER repetitions are trained together by default (RunnerOptions::batch): the rows,
// their hashes and their records (timings aside) are those of running every run alone; a
// --max-runs stop inside a setting and a resume give the same rows too.
TEST(Runner, BatchedRepetitionsStoreTheRowsOfRunsAlone) {
  const fs::path dir = temp_dir();
  const fs::path file = dir / "b.toml";
  std::ofstream(file) << "name = \"resume\"\nrepetitions = 4\n[experiment]\nnet = "
                         "\"butter:rectangle_residual:4:1024\"\ndata = \"wine_quality_white\"\n"
                         "data_dir = \"" DETDL_SHARED_DIR
                         "/data\"\nepochs = 2\nbatch_size = 256\n"
                         "label_noise = 0.05\n[[setting]]\nname = \"varied\"\nvary = [\"all\"]\n"
                         "[[setting]]\nname = \"fixed\"\n";
  const Study s = load_study(file.string());
  RunnerOptions opt;
  opt.quiet = true;
  opt.batch = 1;
  const std::string alone = (dir / "alone.sqlite").string(),
                    together = (dir / "tog.sqlite").string();
  fs::remove(alone);
  fs::remove(together);
  EXPECT_EQ(run_study(s, alone, opt).ran, 8);
  opt.batch = 64;
  opt.max_runs = 3;  // stops inside the first setting: a group of 3
  EXPECT_EQ(run_study(s, together, opt).ran, 3);
  opt.max_runs = -1;
  EXPECT_EQ(run_study(s, together, opt).ran, 5);
  EXPECT_EQ(rows(together), rows(alone));
  std::set<std::string> varied;
  for (const auto& [key, row] : rows(alone))
    if (row.rfind("varied/", 0) == 0) varied.insert(row.substr(row.rfind('/')));
  EXPECT_EQ(varied.size(), 4u);
  int batched = 0;  // 3 + 4: the resumed varied repetition 3 is a group of one
  for (const auto& r : Store(together).runs("resume")) {
    const nlohmann::json a = Store(alone).record(r.key), t = Store(together).record(r.key);
    batched += t.contains("batched");
    EXPECT_FALSE(a.contains("batched"));
    EXPECT_FALSE(t.contains("resumed_from_step") && !t["resumed_from_step"].is_null());
    EXPECT_EQ(without_times(a), without_times(t)) << r.key;
  }
  EXPECT_EQ(batched, 7);

  // Two jobs: each setting's 4 rows go to two workers, 2 each.
  const std::string two = (dir / "two.sqlite").string();
  fs::remove(two);
  opt.jobs = 2;
  EXPECT_EQ(run_study(s, two, opt).ran, 8);
  EXPECT_EQ(rows(two), rows(alone));
  for (const auto& r : Store(two).runs("resume"))
    EXPECT_EQ(Store(two).record(r.key)["batched"]["repetitions"], 2) << r.key;
}

// A batch that died resumes from its checkpoints (RunnerOptions::checkpoint_dir): the rows
// stored are those of a study never stopped, each resumed row says where it resumed, rows
// batch only with rows at the same checkpoint (a row alone with a file resumes as a batch
// of one; one without trains alone), and a stored row's file goes.
TEST(Runner, BatchesResumeFromTheirCheckpoints) {
  const fs::path dir = temp_dir();
  const fs::path file = dir / "ck.toml";
  std::ofstream(file) << butter_study(5, 4);
  const Study s = load_study(file.string());
  RunnerOptions opt;
  opt.quiet = true;
  const std::string whole = (dir / "ck-whole.sqlite").string(),
                    resumed = (dir / "ck-resumed.sqlite").string();
  const fs::path ck = dir / "ck-files";
  fs::remove(whole);
  fs::remove(resumed);
  fs::remove_all(ck);
  ASSERT_EQ(run_study(s, whole, opt).ran, 5);

  // Repetitions 0-2 died after epoch 2 together, repetition 3 after epoch 1 alone.
  const std::vector<PlanRow> plan = make_plan(s);
  ASSERT_EQ(plan.size(), 5u);
  nets::RunOptions ro = run_options(opt);
  auto die_after = [&](std::vector<std::size_t> idx, std::int64_t epochs) {
    std::vector<nets::Experiment> es;
    nets::BatchedCheckpoints c;
    for (std::size_t i : idx) {
      es.push_back(plan[i].experiment);
      c.paths.push_back(checkpoint_path(ck.string(), plan[i].key));
    }
    c.stop_after_epochs = epochs;
    fs::create_directories(ck);
    ASSERT_TRUE(nets::run_experiments_batched(es, ro, nets::BatchOrder::by_lanes, &c).empty());
  };
  die_after({0, 1, 2}, 2);
  die_after({3}, 1);
  opt.checkpoint_dir = ck.string();
  opt.checkpoint_seconds = 1e9;
  ASSERT_EQ(run_study(s, resumed, opt).ran, 5);

  EXPECT_EQ(rows(resumed), rows(whole));
  const std::int64_t spe = Store(whole).record(plan[0].key)["steps"].get<std::int64_t>() / 4;
  const std::vector<nlohmann::json> from = {2 * spe, 2 * spe, 2 * spe, spe, nullptr};
  const std::vector<nlohmann::json> batch = {3, 3, 3, 1, nullptr};
  for (std::size_t i = 0; i < plan.size(); ++i) {
    SCOPED_TRACE("repetition " + std::to_string(i));
    const nlohmann::json a = Store(whole).record(plan[i].key),
                         t = Store(resumed).record(plan[i].key);
    EXPECT_EQ(t["resumed_from_step"], from[i]);
    EXPECT_EQ(t.contains("batched") ? t["batched"]["repetitions"] : nlohmann::json(), batch[i]);
    EXPECT_EQ(without_times(a), without_times(t));
  }
  EXPECT_FALSE(fs::exists(ck));  // every row stored: no file left, and the folder gone
}

TEST(Runner, KilledStudyResumesToTheSameRows) {
  const fs::path dir = temp_dir();
  const fs::path file = dir / "k.toml";
  std::ofstream(file) << study_text(30);  // runs long enough to be killed in the middle
  const std::string full = (dir / "kfull.sqlite").string(),
                    killed = (dir / "killed.sqlite").string();
  fs::remove(full);
  fs::remove(killed);
  const std::string exe = std::string(DETDL_BINARY_DIR) + "/detdl";
  ASSERT_EQ(
      std::system((exe + " study run " + file.string() + " --store " + full + " --quiet").c_str()),
      0);

  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl(exe.c_str(), exe.c_str(), "study", "run", file.c_str(), "--store", killed.c_str(),
          "--quiet", "--jobs", "2", static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until some runs are stored, then kill the study without warning.
  std::size_t seen = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (!fs::exists(killed)) continue;
    try {
      seen = Store(killed).run_keys("resume").size();
    } catch (const std::exception&) {
      continue;  // the file is being created
    }
    if (seen >= 2) break;
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  const std::size_t after_kill = rows(killed).size();
  EXPECT_GE(after_kill, 2u);
  EXPECT_LT(after_kill, 9u) << "the study finished before it was killed: make the runs longer";
  // The workers died with it: nothing more arrives.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(rows(killed).size(), after_kill);

  ASSERT_EQ(std::system(
                (exe + " study run " + file.string() + " --store " + killed + " --quiet").c_str()),
            0);
  EXPECT_EQ(rows(killed), rows(full));
}

// A run alone resumes from its trainer checkpoint with its record so far (written by the
// runner's workers every --checkpoint-every seconds; here made by stopping one inside an
// epoch): the study's rows are those of one never stopped, and its file goes once stored.
TEST(Runner, RunsAloneResumeFromTheirCheckpoints) {
  const fs::path dir = temp_dir();
  const fs::path file = dir / "alone-ck.toml";
  std::ofstream(file) << study_text(3);
  const Study s = load_study(file.string());
  RunnerOptions opt;
  opt.quiet = true;
  const std::string whole = (dir / "alone-ck-whole.sqlite").string(),
                    resumed = (dir / "alone-ck-resumed.sqlite").string();
  const fs::path ck = dir / "alone-ck-files";
  fs::remove(whole);
  fs::remove(resumed);
  fs::remove_all(ck);
  ASSERT_EQ(run_study(s, whole, opt).ran, 9);
  const std::vector<PlanRow> plan = make_plan(s);
  const PlanRow& row = plan[4];  // "varied", repetition 1
  nets::RunOptions ro = run_options(opt);
  ro.checkpoint_path = checkpoint_path(ck.string(), row.key);
  ro.record_in_checkpoint = true;
  ro.stop_after_steps = 70;  // inside the second epoch (63 steps each)
  fs::create_directories(ck);
  ASSERT_TRUE(nets::run_experiment(row.experiment, ro).result.stopped_early);
  opt.checkpoint_dir = ck.string();
  ASSERT_EQ(run_study(s, resumed, opt).ran, 9);
  EXPECT_EQ(rows(resumed), rows(whole));
  for (const PlanRow& r : plan) {
    const nlohmann::json t = Store(resumed).record(r.key);
    EXPECT_EQ(t["resumed_from_step"], r.key == row.key ? nlohmann::json(70) : nlohmann::json())
        << r.key;
    EXPECT_EQ(without_times(Store(whole).record(r.key)), without_times(t)) << r.key;
  }
  EXPECT_FALSE(fs::exists(ck));
}

// `detdl study run` killed in the middle of a batch (SIGKILL: no clean-up) and run again
// resumes the batch from its checkpoints (written at every epoch end here) and stores the
// rows of a study never stopped.
TEST(Runner, KilledBatchResumesFromItsCheckpoints) {
  const fs::path dir = temp_dir();
  const fs::path file = dir / "kb.toml";
  std::ofstream(file) << butter_study(4, 300);
  const std::string full = (dir / "kb-full.sqlite").string(),
                    killed = (dir / "kb-killed.sqlite").string();
  const fs::path ck = killed + ".checkpoints";
  fs::remove(full);
  fs::remove(killed);
  fs::remove_all(ck);
  const std::string exe = std::string(DETDL_BINARY_DIR) + "/detdl";
  const std::string flags = " --quiet --no-step-hashes --no-epoch-predictions";
  ASSERT_EQ(std::system((exe + " study run " + file.string() + " --store " + full + flags +
                         " --no-checkpoints")
                            .c_str()),
            0);
  EXPECT_FALSE(fs::exists(full + ".checkpoints"));

  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl(exe.c_str(), exe.c_str(), "study", "run", file.c_str(), "--store", killed.c_str(),
          "--quiet", "--no-step-hashes", "--no-epoch-predictions", "--checkpoint-every", "0",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  // Kill it once every run has a checkpoint a few epochs in.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  bool written = false;
  while (!written && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::size_t files = 0;
    std::error_code ec;
    for (auto it = fs::directory_iterator(ck, ec); !ec && it != fs::directory_iterator(); ++it)
      files += it->path().extension() == ".safetensors";
    written = files == 4;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(written) << "no checkpoints appeared";
  ASSERT_TRUE(rows(killed).empty()) << "the batch finished before it was killed: make it longer";
  // `study plan` shows each row's checkpoint: "todo@E" (or "claimed@E": the killed runner's
  // claims are stale only after their lease).
  const test_util::CliResult plan =
      test_util::run_detdl("study plan " + file.string() + " --store " + killed);
  ASSERT_EQ(plan.status, 0) << plan.output;
  std::size_t at = 0;
  for (std::size_t pos = plan.output.find('@'); pos != std::string::npos;
       pos = plan.output.find('@', pos + 1))
    at += std::isdigit(static_cast<unsigned char>(plan.output[pos + 1])) != 0;
  EXPECT_EQ(at, 4u) << plan.output;

  // Not quiet: it says what resumes.
  const test_util::CliResult again =
      test_util::run_detdl("study run " + file.string() + " --store " + killed +
                           " --no-step-hashes --no-epoch-predictions --checkpoint-every 0");
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_NE(again.output.find("4 of them resume from checkpoints in " + ck.string()),
            std::string::npos)
      << again.output;
  // Four runs resume: as one batch, or as two where the kill fell between the batch's
  // files of one epoch's end (each run's file is written in turn: rows batch only with rows
  // at the same checkpoint).
  int resumed_runs = 0;
  for (std::size_t pos = again.output.find("  resumed "); pos != std::string::npos;
       pos = again.output.find("  resumed ", pos + 1))
    resumed_runs += std::atoi(again.output.c_str() + pos + 10);
  EXPECT_EQ(resumed_runs, 4) << again.output;
  EXPECT_EQ(rows(killed), rows(full));
  for (const auto& r : Store(killed).runs("resume")) {
    const nlohmann::json t = Store(killed).record(r.key);
    EXPECT_GT(t["resumed_from_step"].get<std::int64_t>(), 0) << r.key;
    EXPECT_EQ(t["epochs"].size(), 300u);
    // Every epoch's series (those before the kill included), hashes and predictions.
    EXPECT_EQ(without_times(Store(full).record(r.key)), without_times(t)) << r.key;
  }
  EXPECT_FALSE(fs::exists(ck));
}

// Issue 9 (11): two runners started together on one store share the plan: every row is
// stored once, and between them they start each row once (no run is done twice).
TEST(Runner, TwoConcurrentRunnersRunEachRowOnce) {
  const fs::path dir = temp_dir();
  const fs::path file = dir / "c.toml";
  std::ofstream(file) << study_text(12);
  const Study s = load_study(file.string());
  const std::string store = (dir / "concurrent.sqlite").string();
  fs::remove(store);
  { Store(store).put_study(s.name, s.spec); }  // the file exists before both start
  const int kRunners = 2;
  pid_t pids[kRunners];
  for (int i = 0; i < kRunners; ++i) {
    pids[i] = fork();
    ASSERT_GE(pids[i], 0);
    if (pids[i] == 0) {
      int code = 1;
      try {
        RunnerOptions opt;
        opt.quiet = true;
        const RunnerSummary sum = run_study(s, store, opt);
        std::ofstream((dir / ("runner" + std::to_string(i))).string())
            << sum.started << " " << sum.ran << " " << sum.failed << " " << sum.duplicates << "\n";
        code = 0;
      } catch (...) {
      }
      _exit(code);
    }
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::int64_t started = 0, ran = 0;
  for (int i = 0; i < kRunners; ++i) {
    std::int64_t st = 0, r = 0, failed = -1, dup = -1;
    std::ifstream((dir / ("runner" + std::to_string(i))).string()) >> st >> r >> failed >> dup;
    EXPECT_EQ(failed, 0) << i;
    EXPECT_EQ(dup, 0) << i;
    EXPECT_EQ(st, r) << i;
    EXPECT_GT(r, 0) << "runner " << i << " ran nothing: the two did not overlap";
    started += st;
    ran += r;
  }
  EXPECT_EQ(started, 9);  // each of the 9 rows started by exactly one runner
  EXPECT_EQ(ran, 9);
  EXPECT_EQ(rows(store).size(), 9u);
  EXPECT_TRUE(Store(store).claims(s.name).empty());
}

// A runner killed with SIGKILL leaves its claim; the next runner takes it over at once
// (same machine: the claimant's pid is dead) and finishes the study.
TEST(Runner, ClaimOfAKilledRunnerIsTakenOver) {
  const fs::path dir = temp_dir();
  const fs::path file = dir / "t.toml";
  std::ofstream(file) << study_text(60);  // long runs: the kill lands in the middle of one
  const std::string store = (dir / "takeover.sqlite").string();
  fs::remove(store);
  const std::string exe = std::string(DETDL_BINARY_DIR) + "/detdl";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setpgid(0, 0);
    execl(exe.c_str(), exe.c_str(), "study", "run", file.c_str(), "--store", store.c_str(),
          "--quiet", static_cast<char*>(nullptr));
    _exit(127);
  }
  // Once a claim shows, it is read again with the runner stopped, and the kill follows: a
  // running runner may store its row and drop the claim between a look and the kill.
  const auto claims = [&] {
    try {
      return Store(store).claims("resume");
    } catch (const std::exception&) {
      return std::vector<Claim>{};
    }
  };
  std::vector<Claim> held;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (held.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (!fs::exists(store) || claims().empty()) continue;
    kill(-pid, SIGSTOP);
    held = claims();
    if (held.empty()) kill(-pid, SIGCONT);
  }
  kill(-pid, SIGKILL);  // the runner and its worker
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].by.pid, pid);
  waitpid(pid, nullptr, 0);
  const auto left = Store(store).claims("resume");
  ASSERT_EQ(left.size(), 1u) << "the killed runner's claim stays in the store";
  EXPECT_FALSE(process_alive(left[0].by.pid, left[0].by.start_time));
  RunnerOptions opt;
  opt.quiet = true;
  opt.jobs = 2;
  const RunnerSummary sum = run_study(load_study(file.string()), store, opt);
  EXPECT_EQ(sum.failed, 0);
  EXPECT_EQ(sum.stored + sum.ran, 9);
  EXPECT_EQ(rows(store).size(), 9u);
  EXPECT_TRUE(Store(store).has_run(left[0].key));  // the taken-over row
  EXPECT_TRUE(Store(store).claims("resume").empty());
}

// The kill campaign in its CI form (scripts/kill-campaign.sh): 10 SIGKILLs of two runners
// sharing one store, resumed each time; the store ends equal to an uninterrupted one.
TEST(Runner, KillCampaignTenKills) {
  const std::string cmd = "bash " + std::string(DETDL_SOURCE_DIR) + "/scripts/kill-campaign.sh " +
                          std::string(DETDL_BINARY_DIR) + "/detdl 10 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  EXPECT_NE(out.find("kill campaign: 10 kills, "), std::string::npos) << out;
  EXPECT_NE(out.find(" of 40 rows, 0 lost, 0 duplicated, all hashes equal, 0 claims left"),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace detdl::variance
