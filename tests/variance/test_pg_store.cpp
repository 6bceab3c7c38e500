// PostgreSQL stores (variance/pg_store.h) against a throwaway server that
// scripts/pg-temp-server.sh starts in a temporary directory (as the postgres user when the
// test runs as root): a study's SQLite store moved into PostgreSQL and back is the same
// store row for row (records, final weights, and the seeds with their SQLite types);
// merging again keeps identical rows once; a conflicting row is refused by name with
// nothing written; `study table` reads a database. `study run --store postgresql://...`:
// runners share a study in the database; one SIGKILLed mid-study leaves a claim that
// expires, the others take its row over, and the database ends with the single-process
// study's rows. Skipped where the build has no libpq or no PostgreSQL server is installed.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iterator>
#include <thread>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/cli_run.h"
#include "tests/variance/study_rows.h"
#include "variance/pg_store.h"
#include "variance/runner.h"

namespace detdl::variance {
namespace {
namespace fs = std::filesystem;

const char* kStudy =
    "name = \"pg\"\nrepetitions = 3\n[experiment]\nnet = \"mlp:8\"\ndata = \"blobs\"\n"
    "epochs = 2\nbatch_size = 32\n[[setting]]\nname = \"fixed\"\n[[setting]]\nname = "
    "\"varied\"\nvary = [\"all\"]\n";

std::map<std::string, std::string> rows(const std::string& store) {
  return test_util::study_rows(store, "pg");
}

// Every run's seed columns as SQLite holds them: type and value.
std::string seeds(const std::string& store) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(store.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db,
                     "SELECT key, typeof(seed_init), seed_init, typeof(seed_split), seed_split, "
                     "typeof(seed_impl) FROM runs ORDER BY key",
                     -1, &st, nullptr);
  std::string out;
  while (sqlite3_step(st) == SQLITE_ROW)
    for (int c = 0; c < 6; ++c) {
      const auto* t = sqlite3_column_text(st, c);
      out += (t ? reinterpret_cast<const char*>(t) : "NULL") + std::string(c == 5 ? "\n" : " ");
    }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int st = pclose(p);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) out = "exit " + std::to_string(st) + ": " + out;
  return out;
}

// A throwaway server for one test: started in `dir`; when this goes, the server is stopped
// and then `dir` removed (in that order: pg_ctl stop needs the data directory, so a test
// that removed `dir` itself would leave its server running).
struct Server {
  std::string url, stop_cmd;
  bool skipped = false;
  std::string error;
  fs::path dir;
  explicit Server(const fs::path& d) : dir(d) {
    const std::string server = (dir / "server").string();
    const std::string port =
        std::to_string(20000 + (::getpid() * 7 + int(dir.string().size())) % 20000);
    const std::string script = DETDL_SOURCE_DIR "/scripts/pg-temp-server.sh";
    const int started = std::system(("bash " + script + " start " + server + " " + port + " > " +
                                     (dir / "url").string() + " 2> " + (dir / "start.log").string())
                                        .c_str());
    if (WIFEXITED(started) && WEXITSTATUS(started) == 77) {
      skipped = true;
      return;
    }
    stop_cmd = "bash " + script + " stop " + server;
    if (started != 0) {
      std::ifstream log(dir / "start.log");
      error.assign(std::istreambuf_iterator<char>(log), std::istreambuf_iterator<char>());
      return;
    }
    std::getline(std::ifstream(dir / "url"), url);
  }
  ~Server() {
    if (!stop_cmd.empty()) std::system(stop_cmd.c_str());
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

TEST(PgStore, SqliteToPostgresAndBackIsTheSameStore) {
  if (!postgres_available()) GTEST_SKIP() << "this build has no libpq";
  const fs::path dir = fs::temp_directory_path() / ("detdl_pg_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  Server pg(dir);
  if (pg.skipped) GTEST_SKIP() << "no PostgreSQL server";
  ASSERT_TRUE(pg.error.empty()) << pg.error;
  const std::string url = pg.url;
  ASSERT_TRUE(is_postgres_url(url)) << url;

  std::ofstream(dir / "s.toml") << kStudy;
  const Study s = load_study((dir / "s.toml").string());
  RunnerOptions opt;
  opt.quiet = true;
  const std::string single = (dir / "single.sqlite").string();
  ASSERT_EQ(run_study(s, single, opt).ran, 6);
  const auto want = rows(single);

  auto in = merge_sqlite_into_postgres(single, url);
  EXPECT_EQ(in.added, 6);
  in = merge_sqlite_into_postgres(single, url);  // again: identical rows kept once
  EXPECT_EQ(in.added, 0);
  EXPECT_EQ(in.identical, 6);
  const std::string back = (dir / "back.sqlite").string();
  const auto out = merge_postgres_into_sqlite(url, back);
  EXPECT_EQ(out.added, 6);
  EXPECT_EQ(rows(back), want);
  EXPECT_EQ(seeds(back), seeds(single));  // seeds past INT64_MAX stay text, the rest integers
  EXPECT_NE(seeds(single).find(" text "), std::string::npos) << "no seed past INT64_MAX";

  // A conflicting row: refused naming the database, the SQLite store and the key; nothing
  // of that merge is written.
  const std::string bad = (dir / "bad.sqlite").string();
  fs::copy_file(single, bad);
  const std::string key = want.begin()->first;
  {
    sqlite3* db = nullptr;
    sqlite3_open(bad.c_str(), &db);
    sqlite3_exec(
        db, ("UPDATE runs SET weight_hash = '0000000000000000' WHERE key = '" + key + "'").c_str(),
        nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
  try {
    merge_sqlite_into_postgres(bad, url);
    ADD_FAILURE() << "a conflicting row was merged";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(key), std::string::npos) << msg;
    EXPECT_NE(msg.find(bad), std::string::npos) << msg;
    EXPECT_NE(msg.find(url), std::string::npos) << msg;
  }
  const std::string again = (dir / "again.sqlite").string();
  merge_postgres_into_sqlite(url, again);
  EXPECT_EQ(rows(again), want);

  // The command line: study merge either way, study table on the database, study run into
  // it refused, an unreachable server named.
  const std::string bin = DETDL_BINARY_DIR "/detdl";
  const std::string via_cli = (dir / "cli.sqlite").string();
  EXPECT_NE(run(bin + " study merge " + via_cli + " '" + url + "' 2>&1").find("6 run(s) added"),
            std::string::npos);
  EXPECT_EQ(rows(via_cli), want);
  const std::string table = run(bin + " study table '" + url + "' 2>&1");
  EXPECT_NE(table.find("study pg: 6 runs"), std::string::npos) << table;
  // The study run again into the database: every row is there already.
  const std::string again_run =
      run(bin + " study run " + (dir / "s.toml").string() + " --store '" + url + "' 2>&1");
  EXPECT_NE(again_run.find("6 already stored"), std::string::npos) << again_run;
  const std::string plan =
      run(bin + " study plan " + (dir / "s.toml").string() + " --store '" + url + "' 2>&1");
  EXPECT_EQ(plan.find("todo"), std::string::npos) << plan;
  EXPECT_NE(plan.find("stored"), std::string::npos) << plan;
  auto r = test_util::run_detdl("study merge " + via_cli + " 'postgresql://nobody@/x?host=" +
                                (dir / "nowhere").string() + "&port=1'");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("cannot connect"), std::string::npos) << r.output;
}

std::int64_t count(const std::string& url, const std::string& table) {
  const std::string out =
      run("psql '" + url + "' -Atc \"SELECT count(*) FROM " + table + "\" 2>&1");
  try {
    return std::stoll(out);
  } catch (...) {
    return -1;  // not there yet
  }
}

// A stored row keeps no claim: storing it drops its claim in the same transaction (a kill
// between the commit and a later delete left the claim for good: nobody takes a stored row
// over, so nobody dropped it; CI saw this once), and a claim found on a stored row (left by
// an older version) goes when a runner next asks for the row.
TEST(PgStore, AStoredRowKeepsNoClaim) {
  if (!postgres_available()) GTEST_SKIP() << "this build has no libpq";
  const fs::path dir = fs::temp_directory_path() / ("detdl_pgclaim_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  Server pg(dir);
  if (pg.skipped) GTEST_SKIP() << "no PostgreSQL server";
  ASSERT_TRUE(pg.error.empty()) << pg.error;
  std::ofstream(dir / "s.toml") << kStudy;
  RunnerOptions opt;
  opt.quiet = true;
  const std::string single = (dir / "single.sqlite").string();
  ASSERT_EQ(run_study(load_study((dir / "s.toml").string()), single, opt).ran, 6);
  const auto want = rows(single);
  const std::string k0 = want.begin()->first, k1 = std::next(want.begin())->first;

  const auto store = open_row_store(pg.url, 600);
  const Claimant me = Claimant::self();
  ASSERT_EQ(store->claim(k0, "pg", me), ClaimResult::claimed);
  ASSERT_EQ(store->claim(k1, "pg", me), ClaimResult::claimed);
  ASSERT_EQ(count(pg.url, "claims"), 2);
  EXPECT_EQ(merge_sqlite_into_postgres(single, pg.url).added, 6);
  EXPECT_EQ(count(pg.url, "claims"), 0) << "storing the rows dropped their claims";

  // A claim left on a stored row by hand, as a kill used to leave it.
  const std::string insert = run("psql '" + pg.url +
                                 "' -Atc \"INSERT INTO claims(key, study, worker, lease_until) "
                                 "VALUES ('" +
                                 k0 + "', 'pg', 'gone/x/1/1', now() + interval '1 hour')\" 2>&1");
  ASSERT_EQ(count(pg.url, "claims"), 1) << insert;
  EXPECT_EQ(store->claim(k0, "pg", me), ClaimResult::stored);
  EXPECT_EQ(count(pg.url, "claims"), 0);
}

pid_t start(const std::string& cmd) {
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

TEST(PgStore, RunnersShareAStudyAndAKilledRunnersRowIsTakenOver) {
  if (!postgres_available()) GTEST_SKIP() << "this build has no libpq";
  const fs::path dir = fs::temp_directory_path() / ("detdl_pgrun_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  Server pg(dir);
  if (pg.skipped) GTEST_SKIP() << "no PostgreSQL server";
  ASSERT_TRUE(pg.error.empty()) << pg.error;
  const std::string study =
      "name = \"pgrun\"\nrepetitions = 4\n[experiment]\nnet = \"mlp:32\"\ndata = \"blobs\"\n"
      "epochs = 200\nbatch_size = 32\n[[setting]]\nname = \"fixed\"\n[[setting]]\nname = "
      "\"varied\"\nvary = [\"all\"]\n[[setting]]\nname = \"init\"\nvary = [\"init\"]\n";
  std::ofstream(dir / "s.toml") << study;
  const Study s = load_study((dir / "s.toml").string());
  RunnerOptions opt;
  opt.quiet = true;
  const std::string single = (dir / "single.sqlite").string();
  ASSERT_EQ(run_study(s, single, opt).ran, 12);
  const auto want = test_util::study_rows(single, "pgrun");

  const std::string run_cmd = "exec " + std::string(DETDL_BINARY_DIR) + "/detdl study run " +
                              (dir / "s.toml").string() + " --store '" + pg.url +
                              "' --claim-lease 10 --quiet";
  // Runners A and B share the study; A is SIGKILLed (with its worker) once rows are stored
  // and it holds a claim (seen while A is stopped).
  const pid_t a = start(run_cmd + " > /dev/null 2>&1");
  const pid_t b = start(run_cmd + " > " + (dir / "b.log").string() + " 2>&1");
  const std::string held_by_a = "claims WHERE worker LIKE '%/" + std::to_string(a) +
                                "/%'";  // worker_id: host/machine/pid/start
  bool killed = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    const auto stored = count(pg.url, "runs");
    if (stored >= static_cast<std::int64_t>(want.size())) break;
    if (stored >= 1) {
      // Stop A before looking at its claim: a running A may store its row and drop the
      // claim between the look and the kill, leaving nothing to take over. A stopped A
      // cannot commit, so what the look sees is what the kill leaves.
      kill(-a, SIGSTOP);
      if (count(pg.url, held_by_a) >= 1) {
        killed = kill(-a, SIGKILL) == 0;
        break;
      }
      kill(-a, SIGCONT);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  int status = 0;
  waitpid(a, &status, 0);
  const auto left = count(pg.url, held_by_a);
  int sb = 0;
  waitpid(b, &sb, 0);  // B waits out A's lease (10 s) and runs A's row
  if (!killed) GTEST_SKIP() << "the study finished before runner A could be killed";
  EXPECT_GE(left, 1) << "the killed runner's claim";
  EXPECT_TRUE(WIFEXITED(sb) && WEXITSTATUS(sb) == 0) << std::ifstream(dir / "b.log").rdbuf();
  EXPECT_EQ(count(pg.url, "claims"), 0);
  const std::string back = (dir / "back.sqlite").string();
  merge_postgres_into_sqlite(pg.url, back);
  EXPECT_EQ(test_util::study_rows(back, "pgrun"), want);
}

}  // namespace
}  // namespace detdl::variance
