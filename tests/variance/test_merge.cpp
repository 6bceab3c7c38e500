// Shards and merging (`study run --shard I/N`, `study merge`): N shards cover the plan once;
// their stores merged equal the single-process study's row for row; merging again changes
// nothing; a conflicting row (same key, another weight hash) is refused with both stores and
// the row named, and nothing of that merge is written; bad input is refused by name.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>

#include "tests/cli_run.h"
#include "tests/variance/study_rows.h"
#include "variance/runner.h"
#include "variance/store.h"

namespace detdl::variance {
namespace {
namespace fs = std::filesystem;

fs::path temp_dir() {
  const fs::path d = fs::temp_directory_path() / ("detdl_merge_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

// Portable runs: every run's bits are fixed, so rows compare whole.
const char* kStudy =
    "name = \"shards\"\nrepetitions = 3\n[experiment]\nnet = \"mlp:8\"\ndata = \"blobs\"\n"
    "epochs = 1\nbatch_size = 32\n[[setting]]\nname = \"fixed\"\n[[setting]]\nname = "
    "\"varied\"\nvary = [\"all\"]\n[[setting]]\nname = \"init\"\nvary = [\"init\"]\n";

std::map<std::string, std::string> rows(const std::string& store) {
  return test_util::study_rows(store, "shards");
}

void sql(const std::string& path, const std::string& statement) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, statement.c_str(), nullptr, nullptr, &err);
  const std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << msg;
}

TEST(Shard, ParsesIOfNAndRefusesTheRestByName) {
  EXPECT_EQ(parse_shard("0/1"), std::make_pair(std::int64_t{0}, std::int64_t{1}));
  EXPECT_EQ(parse_shard("3/4"), std::make_pair(std::int64_t{3}, std::int64_t{4}));
  for (const char* bad : {"", "1", "4/4", "5/4", "-1/4", "1/0", "a/2", "1/2/3", "1/", "/2"}) {
    try {
      parse_shard(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("--shard"), std::string::npos) << e.what();
    }
  }
}

TEST(Shard, ShardsPartitionThePlan) {
  const fs::path dir = temp_dir();
  std::ofstream(dir / "s.toml") << kStudy;
  const Study s = load_study((dir / "s.toml").string());
  const auto plan = make_plan(s);
  for (std::int64_t n : {1, 2, 3, 7}) {
    std::map<std::string, int> seen;
    for (std::int64_t i = 0; i < n; ++i)
      for (const auto& row : plan)
        if (shard_of(row.key, n) == i) ++seen[row.key];
    EXPECT_EQ(seen.size(), plan.size()) << n;
    for (const auto& [key, count] : seen) EXPECT_EQ(count, 1) << key;
  }
  // The shard depends on the key alone: the same key, the same shard, in any plan.
  EXPECT_EQ(shard_of(plan[0].key, 5), shard_of(std::string(plan[0].key), 5));
  EXPECT_THROW(shard_of(plan[0].key, 0), std::invalid_argument);
}

TEST(Merge, ShardStoresMergeToTheSingleProcessStudy) {
  const fs::path dir = temp_dir();
  std::ofstream(dir / "s.toml") << kStudy;
  const Study s = load_study((dir / "s.toml").string());
  RunnerOptions opt;
  opt.quiet = true;
  const std::string single = (dir / "single.sqlite").string();
  fs::remove(single);
  EXPECT_EQ(run_study(s, single, opt).ran, 9);
  const auto want = rows(single);
  ASSERT_EQ(want.size(), 9u);

  // Three shards, each into its own store; together the plan, once.
  std::vector<std::string> shards;
  std::int64_t planned = 0;
  for (int i = 0; i < 3; ++i) {
    const std::string path = (dir / ("shard" + std::to_string(i) + ".sqlite")).string();
    fs::remove(path);
    opt.shard_index = i, opt.shard_count = 3;
    const auto sum = run_study(s, path, opt);
    EXPECT_EQ(sum.ran, sum.planned);
    planned += sum.planned;
    shards.push_back(path);
  }
  EXPECT_EQ(planned, 9);
  opt.shard_index = 3;  // I >= N
  EXPECT_THROW(run_study(s, shards[0], opt), std::invalid_argument);

  const std::string merged = (dir / "merged.sqlite").string();
  fs::remove(merged);
  std::int64_t added = 0;
  {
    Store out(merged);
    for (const auto& path : shards) {
      const auto got = out.merge_from(path);
      EXPECT_EQ(got.identical, 0);
      added += got.added;
    }
  }
  EXPECT_EQ(added, 9);
  EXPECT_EQ(rows(merged), want);
  EXPECT_EQ(Store(merged).study_spec("shards"), Store(single).study_spec("shards"));

  // Merging again, or the single store into the merged one: identical rows, kept once.
  {
    Store out(merged);
    const auto again = out.merge_from(shards[1]);
    EXPECT_EQ(again.added, 0);
    EXPECT_GT(again.identical, 0);
    const auto whole = out.merge_from(single);
    EXPECT_EQ(whole.added, 0);
    EXPECT_EQ(whole.identical, 9);
  }
  EXPECT_EQ(rows(merged), want);

  // A conflicting row: the same key with another weight hash. Refused, naming both stores
  // and the key; nothing of that merge is written (the other rows of the shard included).
  // The key is one of shard 0's, and bad also holds the rows of shards 1 and 2.
  const std::string bad = (dir / "bad.sqlite").string();
  fs::copy_file(single, bad, fs::copy_options::overwrite_existing);
  const std::string key = rows(shards[0]).begin()->first;
  sql(bad, "UPDATE runs SET weight_hash = '0000000000000000' WHERE key = '" + key + "'");
  const std::string partial = (dir / "partial.sqlite").string();
  fs::remove(partial);
  {
    Store out(partial);
    out.merge_from(shards[0]);
    const auto before = rows(partial);
    ASSERT_LT(before.size(), want.size());
    try {
      out.merge_from(bad);
      ADD_FAILURE() << "a conflicting row was merged";
    } catch (const std::runtime_error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(key), std::string::npos) << msg;
      EXPECT_NE(msg.find(bad), std::string::npos) << msg;
      EXPECT_NE(msg.find(partial), std::string::npos) << msg;
      EXPECT_NE(msg.find("0000000000000000"), std::string::npos) << msg;
    }
    EXPECT_EQ(rows(partial), before);  // nothing of the refused merge
    out.merge_from(single);            // the store still works: the rest merges
  }
  EXPECT_EQ(rows(partial), want);

  // Not a store: refused, naming the file; the output is untouched.
  const std::string junk = (dir / "junk.sqlite").string();
  std::ofstream(junk) << "not a database";
  try {
    Store(merged).merge_from(junk);
    ADD_FAILURE() << "merged a file that is not a store";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(junk), std::string::npos) << e.what();
  }
  EXPECT_EQ(rows(merged), want);
  fs::remove_all(dir);
}

// The Slurm scripts end to end, with a stand-in `sbatch` that runs an array's tasks one
// after another (SLURM_ARRAY_TASK_ID / _COUNT set as Slurm sets them) and a dependent job
// after them: submit-study.sh queues 4 shards and the merge; the merged store equals the
// single-process study's. Then the command line's refusals, by name.
TEST(Merge, SlurmArrayScriptsAndCommandLine) {
  const fs::path dir = temp_dir() / "slurm";
  fs::remove_all(dir);
  fs::create_directories(dir / "bin");
  std::ofstream(dir / "s.toml") << kStudy;
  {
    std::ofstream sb(dir / "bin" / "sbatch");
    sb << R"(#!/bin/bash
# stand-in for Slurm's sbatch: runs the job now; an array's tasks one after another
set -e
array=""
while [ $# -gt 0 ]; do
  case $1 in
    --array=*) array=${1#--array=} ;;
    --parsable | --dependency=*) ;;
    -*) echo "sbatch stand-in: unexpected option $1" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
script=$1; shift
if [ -n "$array" ]; then
  last=${array#0-}
  for i in $(seq 0 "$last"); do
    SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_TASK_COUNT=$((last + 1)) SLURM_ARRAY_TASK_MAX=$last       bash "$script" "$@" > /dev/null
  done
  echo 101
else
  bash "$script" "$@" >&2
  echo 102
fi
)";
  }
  fs::permissions(dir / "bin" / "sbatch", fs::perms::owner_all);
  const std::string single = (dir / "single.sqlite").string();
  {
    const Study s = load_study((dir / "s.toml").string());
    RunnerOptions opt;
    opt.quiet = true;
    run_study(s, single, opt);
  }
  const std::string src = DETDL_SOURCE_DIR, bin = DETDL_BINARY_DIR;
  const std::string merged = (dir / "merged.sqlite").string();
  const std::string cmd = "cd " + src + " && PATH=" + (dir / "bin").string() +
                          ":$PATH DETDL=" + bin + "/detdl bash scripts/slurm/submit-study.sh 4 " +
                          (dir / "s.toml").string() + " " + (dir / "shards").string() + " " +
                          merged + " 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  int shard_files = 0;
  for (const auto& e : fs::directory_iterator(dir / "shards"))
    shard_files += e.path().extension() == ".sqlite";
  EXPECT_EQ(shard_files, 4);
  EXPECT_EQ(rows(merged), rows(single));

  // The command line: bad --shard values and missing stores are refused by name.
  using test_util::run_detdl;
  const std::string study = (dir / "s.toml").string();
  auto r = run_detdl("study run " + study + " --shard 4/4 --store " + (dir / "x.sqlite").string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--shard"), std::string::npos) << r.output;
  r = run_detdl("study merge " + merged + " " + (dir / "missing.sqlite").string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("missing.sqlite"), std::string::npos) << r.output;
  r = run_detdl("study merge " + merged + " " + merged);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("output store itself"), std::string::npos) << r.output;
  r = run_detdl("study plan " + study + " --shard 1/2 --store " + merged);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("stored"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("todo"), std::string::npos) << r.output;
  fs::remove_all(dir);
}

// A real one-node Slurm cluster (munge, slurmctld, slurmd), started by
// scripts/slurm/one-node-check.sh in a temporary directory: a 4-task array of a tiny study
// and the merge give the local run's rows. Skipped (exit 77) where Slurm cannot start within
// a minute or the test is not root.
TEST(Merge, OneNodeSlurmClusterRunsTheArrayAndTheMerge) {
  const std::string cmd = "bash " DETDL_SOURCE_DIR "/scripts/slurm/one-node-check.sh " +
                          std::string(DETDL_BINARY_DIR) + "/detdl > /tmp/detdl-slurm-check-" +
                          std::to_string(::getpid()) + ".log 2>&1";
  const int st = std::system(cmd.c_str());
  const std::string log = "/tmp/detdl-slurm-check-" + std::to_string(::getpid()) + ".log";
  std::ifstream in(log);
  const std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  fs::remove(log);
  if (WIFEXITED(st) && WEXITSTATUS(st) == 77) GTEST_SKIP() << out;
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out;
  EXPECT_NE(out.find("merged store = local run"), std::string::npos) << out;
}

}  // namespace
}  // namespace detdl::variance
