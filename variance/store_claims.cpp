// The store's claims table (variance/claims.h): one row per claimed, not yet stored run.
#include <ctime>

#include "variance/store.h"
#include "variance/store_sql.h"

namespace detdl::variance {

namespace {

using store_sql::Statement;
using store_sql::Transaction;

Claim claim_of(const Statement& st) {
  // columns: key, study, pid, host, machine, start_time, claimed_at, heartbeat_at
  Claim c;
  c.key = st.text(0);
  c.study = st.text(1);
  c.by.pid = st.int64(2);
  c.by.host = st.text(3);
  c.by.machine = st.text(4);
  c.by.start_time = st.int64(5);
  c.claimed_at = st.int64(6);
  c.heartbeat_at = st.int64(7);
  return c;
}

const char* kColumns = "key, study, pid, host, machine, start_time, claimed_at, heartbeat_at";

bool same_claimant(const Claimant& a, const Claimant& b) {
  return a.pid == b.pid && a.start_time == b.start_time && a.same_machine(b);
}

}  // namespace

ClaimResult Store::claim_run(const std::string& key, const std::string& study, const Claimant& by,
                             std::int64_t lease_seconds) {
  sqlite3* db = db_.get();
  Transaction tx(db, path_);  // the write lock: no one claims or stores `key` until commit
  if (has_run(key)) return ClaimResult::stored;
  const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  {
    Statement st(db, std::string("SELECT ") + kColumns + " FROM claims WHERE key = ?", path_);
    st.bind(1, key);
    if (st.step()) {
      const Claim held = claim_of(st);
      if (!same_claimant(held.by, by) && !claim_is_stale(held, by, now, lease_seconds))
        return ClaimResult::held;
    }
  }
  Statement st(
      db, std::string("INSERT OR REPLACE INTO claims(") + kColumns + ") VALUES (?,?,?,?,?,?,?,?)",
      path_);
  st.bind(1, key);
  st.bind(2, study);
  st.bind(3, by.pid);
  st.bind(4, by.host);
  st.bind(5, by.machine);
  st.bind(6, by.start_time);
  st.bind(7, now);
  st.bind(8, now);
  st.run();
  tx.commit();
  return ClaimResult::claimed;
}

void Store::release_claim(const std::string& key, const Claimant& by) {
  Transaction tx(db_.get(), path_);
  Statement st(db_.get(),
               "DELETE FROM claims WHERE key = ? AND pid = ? AND start_time = ? AND host = ? AND "
               "machine = ?",
               path_);
  st.bind(1, key);
  st.bind(2, by.pid);
  st.bind(3, by.start_time);
  st.bind(4, by.host);
  st.bind(5, by.machine);
  st.run();
  tx.commit();
}

void Store::heartbeat(const Claimant& by) {
  Transaction tx(db_.get(), path_);
  Statement st(db_.get(),
               "UPDATE claims SET heartbeat_at = ? WHERE pid = ? AND start_time = ? AND host = ? "
               "AND machine = ?",
               path_);
  st.bind(1, static_cast<std::int64_t>(std::time(nullptr)));
  st.bind(2, by.pid);
  st.bind(3, by.start_time);
  st.bind(4, by.host);
  st.bind(5, by.machine);
  st.run();
  tx.commit();
}

std::vector<Claim> Store::claims(const std::string& study) const {
  Statement st(db_.get(),
               std::string("SELECT ") + kColumns + " FROM claims WHERE study = ? ORDER BY key",
               path_);
  st.bind(1, study);
  std::vector<Claim> out;
  while (st.step()) out.push_back(claim_of(st));
  return out;
}

}  // namespace detdl::variance
