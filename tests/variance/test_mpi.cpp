// The MPI runner (`mpirun -np N detdl study run --mpi`, variance/mpi_runner.h), run as a user
// runs it: its store equals the single-process study's row for row (3, 2 and 1 ranks); a worker rank SIGKILLed
// mid-study ends the job with every finished row stored and none twice, and the same command
// again completes the study to the same rows. Skipped where this build has no MPI or no
// mpirun is on PATH (CI installs both: scripts/setup.sh).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "tests/cli_run.h"
#include "tests/variance/study_rows.h"
#include "variance/mpi_runner.h"
#include "variance/runner.h"

namespace detdl::variance {
namespace {
namespace fs = std::filesystem;

fs::path temp_dir() {
  const fs::path d = fs::temp_directory_path() / ("detdl_mpi_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

bool have_mpirun() { return std::system("command -v mpirun > /dev/null 2>&1") == 0; }

// mpirun as root needs --allow-run-as-root; 2-core machines need --oversubscribe.
std::string mpirun(int ranks) {
  return "mpirun -np " + std::to_string(ranks) + " --allow-run-as-root --oversubscribe ";
}

std::string study_text(int epochs) {
  return "name = \"mpi\"\nrepetitions = 4\n[experiment]\nnet = \"mlp:32\"\ndata = \"blobs\"\n"
         "epochs = " +
         std::to_string(epochs) +
         "\nbatch_size = 32\n[[setting]]\nname = \"fixed\"\n[[setting]]\nname = \"varied\"\n"
         "vary = [\"all\"]\n[[setting]]\nname = \"two-threads\"\nthreads = 2\nvary = [\"init\"]\n";
}

std::map<std::string, std::string> rows(const std::string& store) {
  return test_util::study_rows(store, "mpi");
}

// The pid of the process whose environment holds both `tag` and OMPI_COMM_WORLD_RANK=rank;
// -1 when none does (yet).
pid_t find_rank(const std::string& tag, int rank) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "environ", std::ios::binary);
    std::stringstream env;
    env << in.rdbuf();
    const std::string s = env.str();
    if (s.find(tag) != std::string::npos &&
        s.find("OMPI_COMM_WORLD_RANK=" + std::to_string(rank) + '\0') != std::string::npos)
      return static_cast<pid_t>(std::stol(name));
  }
  return -1;
}

TEST(MpiRunner, StoreEqualsTheSingleProcessStudy) {
  if (!mpi_available() || !have_mpirun()) GTEST_SKIP() << "no MPI in this build or no mpirun";
  const fs::path dir = temp_dir();
  std::ofstream(dir / "s.toml") << study_text(2);
  const Study s = load_study((dir / "s.toml").string());
  const std::string single = (dir / "single.sqlite").string(), mpi = (dir / "mpi.sqlite").string();
  fs::remove(single), fs::remove(mpi);
  RunnerOptions opt;
  opt.quiet = true;
  ASSERT_EQ(run_study(s, single, opt).ran, 12);
  const std::string cmd = mpirun(3) + DETDL_BINARY_DIR "/detdl study run " +
                          (dir / "s.toml").string() + " --mpi --quiet --store " + mpi + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  EXPECT_EQ(rows(mpi), rows(single));
  // One rank: rank 0 runs the rows itself; a finished store runs nothing again.
  const std::string one = (dir / "one.sqlite").string();
  fs::remove(one);
  const std::string cmd1 = mpirun(1) + DETDL_BINARY_DIR "/detdl study run " +
                           (dir / "s.toml").string() + " --mpi --quiet --store " + one + " 2>&1";
  ASSERT_EQ(std::system(cmd1.c_str()), 0) << cmd1;
  EXPECT_EQ(rows(one), rows(single));
  // Two ranks: one worker.
  const std::string two = (dir / "two.sqlite").string();
  fs::remove(two);
  const std::string cmd2 = mpirun(2) + DETDL_BINARY_DIR "/detdl study run " +
                           (dir / "s.toml").string() + " --mpi --quiet --store " + two + " 2>&1";
  ASSERT_EQ(std::system(cmd2.c_str()), 0) << cmd2;
  EXPECT_EQ(rows(two), rows(single));
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  EXPECT_EQ(rows(mpi), rows(single));
  // Options that do not apply under --mpi are refused by name.
  const auto r = test_util::run_detdl("study run " + (dir / "s.toml").string() +
                                      " --mpi --jobs 2 --store " + mpi);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--mpi"), std::string::npos) << r.output;
  fs::remove_all(dir);
}

TEST(MpiRunner, KilledRankLosesOnlyItsRowAndTheStudyResumes) {
  if (!mpi_available() || !have_mpirun()) GTEST_SKIP() << "no MPI in this build or no mpirun";
  const fs::path dir = temp_dir() / "kill";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "s.toml") << study_text(30);  // runs long enough to kill one mid-way
  const Study s = load_study((dir / "s.toml").string());
  const std::string single = (dir / "single.sqlite").string(), mpi = (dir / "mpi.sqlite").string();
  RunnerOptions opt;
  opt.quiet = true;
  ASSERT_EQ(run_study(s, single, opt).ran, 12);
  const auto want = rows(single);

  const std::string tag = "DETDL_MPI_TEST_TAG=" + std::to_string(::getpid());
  const std::string cmd = "env " + tag + " " + mpirun(3) + DETDL_BINARY_DIR "/detdl study run " +
                          (dir / "s.toml").string() + " --mpi --quiet --store " + mpi + " > " +
                          (dir / "first.log").string() + " 2>&1";
  const pid_t job = fork();
  ASSERT_GE(job, 0);
  if (job == 0) {
    setpgid(0, 0);
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Once some rows are stored, SIGKILL worker rank 1.
  pid_t victim = -1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(mpi) && rows(mpi).size() >= 2) {
      victim = find_rank(tag, 1);
      if (victim > 0) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const bool killed = victim > 0 && rows(mpi).size() < want.size() && kill(victim, SIGKILL) == 0;
  int status = 0;
  waitpid(job, &status, 0);
  kill(-job, SIGKILL);  // anything of the job still alive
  if (!killed) GTEST_SKIP() << "the study finished before a rank could be killed";
  EXPECT_FALSE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "mpirun reported success";
  const auto partial = rows(mpi);
  EXPECT_LT(partial.size(), want.size());
  for (const auto& [key, row] : partial) EXPECT_EQ(want.at(key), row) << key;

  // The same command again: the rows the store lacks, nothing twice.
  const std::string again = mpirun(3) + DETDL_BINARY_DIR "/detdl study run " +
                            (dir / "s.toml").string() + " --mpi --quiet --store " + mpi + " 2>&1";
  ASSERT_EQ(std::system(again.c_str()), 0) << again;
  EXPECT_EQ(rows(mpi), want);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace detdl::variance
