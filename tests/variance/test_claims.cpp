// Claims on rows of a study store (variance/claims.h): a row is claimed by one live runner
// at a time; storing the run drops the claim; a claim whose process is gone (dead, zombie,
// pid reused) is taken over at once on the same machine, after the lease from elsewhere.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "variance/store.h"

namespace detdl::variance {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

fs::path temp_store() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const fs::path d = fs::temp_directory_path() /
                     ("detdl_claims_" + std::to_string(::getpid()) + "_" + info->name());
  fs::remove_all(d);
  fs::create_directories(d);
  return d / "s.sqlite";
}

json tiny_record() {
  json ep{{"epoch", 1},
          {"seconds", 0.1},
          {"weight_hash", "h1"},
          {"train", {{"loss", 1.0}}},
          {"test", {{"loss", 1.0}}}};
  return json{{"record_version", 1},
              {"experiment", json::object()},
              {"epochs", json::array({ep})},
              {"weight_hash", "h1"}};
}

// A child that sleeps until killed: a live process other than this one.
pid_t sleeper() {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::pause();
    ::_exit(0);
  }
  return pid;
}

Claimant claimant_of(pid_t pid) {
  Claimant c = Claimant::self();
  c.pid = pid;
  c.start_time = process_start_time(pid);
  return c;
}

void exec_sql(const fs::path& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
}

TEST(Claims, OneLiveClaimantAtATimeAndStoringDropsTheClaim) {
  const fs::path path = temp_store();
  Store s(path.string());
  s.put_study("st", json::object());
  const Claimant me = Claimant::self();
  const pid_t other_pid = sleeper();
  const Claimant other = claimant_of(other_pid);
  ASSERT_GT(other.start_time, 0);
  EXPECT_EQ(s.claim_run("k", "st", other, 300), ClaimResult::claimed);
  EXPECT_EQ(s.claim_run("k", "st", me, 300), ClaimResult::held);        // the other is alive
  EXPECT_EQ(s.claim_run("k", "st", other, 300), ClaimResult::claimed);  // its own claim again
  // Release only drops the releaser's own claim.
  s.release_claim("k", me);
  ASSERT_EQ(s.claims("st").size(), 1u);
  EXPECT_EQ(s.claims("st")[0].by.pid, other_pid);
  s.release_claim("k", other);
  EXPECT_TRUE(s.claims("st").empty());
  EXPECT_EQ(s.claim_run("k", "st", me, 300), ClaimResult::claimed);
  // put_run drops the claim in the transaction that stores the run; later claims see it stored.
  ASSERT_TRUE(s.put_run("k", "st", "a", 0, tiny_record()));
  EXPECT_TRUE(s.claims("st").empty());
  EXPECT_EQ(s.claim_run("k", "st", other, 300), ClaimResult::stored);
  ::kill(other_pid, SIGKILL);
  ::waitpid(other_pid, nullptr, 0);
}

TEST(Claims, DeadZombieAndReusedPidClaimsAreTakenOver) {
  const fs::path path = temp_store();
  Store s(path.string());
  s.put_study("st", json::object());
  const Claimant me = Claimant::self();

  // A zombie (killed, not yet reaped): kill(pid, 0) still succeeds, yet it runs nothing.
  const pid_t z = sleeper();
  const Claimant zombie = claimant_of(z);
  EXPECT_EQ(s.claim_run("kz", "st", zombie, 300), ClaimResult::claimed);
  EXPECT_EQ(s.claim_run("kz", "st", me, 300), ClaimResult::held);
  ::kill(z, SIGKILL);
  for (int i = 0; i < 200 && process_alive(z, zombie.start_time); ++i) ::usleep(10'000);
  EXPECT_EQ(::kill(z, 0), 0);  // still there as a zombie
  EXPECT_EQ(s.claim_run("kz", "st", me, 300), ClaimResult::claimed);

  // Dead and reaped.
  ::waitpid(z, nullptr, 0);
  EXPECT_FALSE(process_alive(z, zombie.start_time));
  exec_sql(path, "UPDATE claims SET pid = " + std::to_string(z) +
                     ", start_time = " + std::to_string(zombie.start_time) + " WHERE key = 'kz'");
  EXPECT_EQ(s.claim_run("kz", "st", me, 300), ClaimResult::claimed);
  EXPECT_EQ(s.claims("st")[0].by.pid, me.pid);

  // A live pid whose process started at another time: the claimant's pid was reused.
  Claimant reused = me;
  reused.start_time = me.start_time - 1;
  const pid_t p = sleeper();
  Claimant live = claimant_of(p);
  EXPECT_EQ(s.claim_run("kr", "st", reused, 300), ClaimResult::claimed);
  EXPECT_EQ(s.claim_run("kr", "st", live, 300), ClaimResult::claimed);
  ::kill(p, SIGKILL);
  ::waitpid(p, nullptr, 0);
}

TEST(Claims, AnotherMachinesClaimLastsItsLease) {
  const fs::path path = temp_store();
  Store s(path.string());
  s.put_study("st", json::object());
  Claimant elsewhere = Claimant::self();
  elsewhere.host = "elsewhere";
  elsewhere.pid = 1;  // says nothing here: only its heartbeat counts
  EXPECT_EQ(s.claim_run("k", "st", elsewhere, 300), ClaimResult::claimed);
  const Claimant me = Claimant::self();
  EXPECT_EQ(s.claim_run("k", "st", me, 300), ClaimResult::held);
  // Ten minutes without a heartbeat: past a 300 s lease.
  exec_sql(path, "UPDATE claims SET heartbeat_at = heartbeat_at - 600");
  s.heartbeat(me);  // someone else's heartbeat renews nothing of it
  EXPECT_EQ(s.claim_run("k", "st", me, 900), ClaimResult::held);  // within a longer lease
  EXPECT_EQ(s.claim_run("k", "st", me, 300), ClaimResult::claimed);
  // Its heartbeat keeps a claim alive: the elsewhere runner claims another row and beats.
  EXPECT_EQ(s.claim_run("k2", "st", elsewhere, 300), ClaimResult::claimed);
  exec_sql(path, "UPDATE claims SET heartbeat_at = heartbeat_at - 600 WHERE key = 'k2'");
  s.heartbeat(elsewhere);
  EXPECT_EQ(s.claim_run("k2", "st", me, 300), ClaimResult::held);
  // Same host name, another boot: also another machine.
  Claimant rebooted = me;
  rebooted.machine = "another-boot";
  EXPECT_FALSE(claim_is_stale(Claim{"x", "st", rebooted, 0, 1000}, me, 1200, 300));
  EXPECT_TRUE(claim_is_stale(Claim{"x", "st", rebooted, 0, 1000}, me, 1301, 300));
}

}  // namespace
}  // namespace detdl::variance
