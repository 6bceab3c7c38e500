// The study runner: every row stored once; a study stopped part way (by --max-runs, or by
// SIGKILL to the `detdl study run` process) and run again ends with exactly the rows of an
// uninterrupted study, and nothing is run twice.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

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
  return "name = \"resume\"\nrepetitions = 3\n[experiment]\nnet = \"mlp:16\"\ndata = \"blobs\"\nepochs = " +
         std::to_string(epochs) +
         "\nbatch_size = 32\n[[setting]]\nname = \"fixed\"\n[[setting]]\nname = \"varied\"\nvary = [\"all\"]\n"
         "[[setting]]\nname = \"two-threads\"\nthreads = 2\nvary = [\"init\"]\n";
}

std::map<std::string, std::string> rows(const std::string& store) {
  std::map<std::string, std::string> out;
  for (const auto& r : Store(store).runs("resume")) out[r.key] = r.setting + "/" + std::to_string(r.repetition) + "/" + r.weight_hash;
  return out;
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
}

TEST(Runner, KilledStudyResumesToTheSameRows) {
  const fs::path dir = temp_dir();
  const fs::path file = dir / "k.toml";
  std::ofstream(file) << study_text(30);  // runs long enough to be killed in the middle
  const std::string full = (dir / "kfull.sqlite").string(), killed = (dir / "killed.sqlite").string();
  fs::remove(full);
  fs::remove(killed);
  const std::string exe = std::string(DETDL_BINARY_DIR) + "/detdl";
  ASSERT_EQ(std::system((exe + " study run " + file.string() + " --store " + full + " --quiet").c_str()), 0);

  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl(exe.c_str(), exe.c_str(), "study", "run", file.c_str(), "--store", killed.c_str(), "--quiet", "--jobs", "2",
          static_cast<char*>(nullptr));
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

  ASSERT_EQ(std::system((exe + " study run " + file.string() + " --store " + killed + " --quiet").c_str()), 0);
  EXPECT_EQ(rows(killed), rows(full));
}

}  // namespace
}  // namespace detdl::variance
