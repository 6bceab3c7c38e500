// PostgreSQL stores (libpq from Debian's libpq-dev): a database holding the SQLite store's
// tables, with the same names, columns and keys (its schema is generated from the SQLite
// schema: TEXT -> TEXT, INTEGER -> BIGINT, REAL -> DOUBLE PRECISION, BLOB -> BYTEA, an
// untyped column (the seeds: integers, or text past INT64_MAX) -> TEXT, read back with its
// SQLite type). A database is named by a URL, postgresql://... or postgres://... (libpq's
// connection URI).
//
// `study run --store URL` runs a study straight into a database (RowStore below: rows
// claimed with leases); `study merge` moves rows between SQLite and PostgreSQL either way,
// with its rules (variance/store.h, Store::merge_from); `study table` and `report` read a
// database through a local SQLite copy.
#pragma once
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "variance/store.h"

namespace detdl::variance {

// postgresql://... or postgres://...
bool is_postgres_url(const std::string& s);

// True when this build has libpq.
bool postgres_available();

// Copies into the database at `url` (tables created if missing) every study and run of the
// SQLite store `from` that the database lacks, each run with its epochs, class accuracies,
// final weights and per-epoch predictions, in one transaction. A run already there with
// the same weight hash is left as it is; one with another weight hash, or a study of the
// same name with another spec, throws std::runtime_error naming both stores and the row,
// and nothing is written. Throws std::runtime_error naming the URL when the database cannot
// be reached, and when the build has no libpq.
Store::MergeResult merge_sqlite_into_postgres(const std::string& from, const std::string& url);

// Copies the database's studies and runs into the SQLite store `to` (created if missing),
// with Store::merge_from's rules.
Store::MergeResult merge_postgres_into_sqlite(const std::string& url, const std::string& to);

// The store operations the study runner uses (variance/runner.cpp), on an SQLite store or a
// PostgreSQL database. Each call opens its own connection, so none crosses the runner's
// forks. On PostgreSQL a row is claimed in the `claims` table: a new row is inserted, or an
// existing one whose lease has expired (or that this runner already holds) is taken with
// SELECT ... FOR UPDATE SKIP LOCKED, so two runners never claim a row at once and a claim a
// runner holds while it decides is skipped, not waited for; a runner renews its leases by
// heartbeat, and a row whose runner died goes back to the others when its lease expires.
class RowStore {
 public:
  virtual ~RowStore() = default;
  virtual void put_study(const std::string& name, const nlohmann::json& spec) = 0;
  virtual std::set<std::string> run_keys(const std::string& study) = 0;
  virtual ClaimResult claim(const std::string& key, const std::string& study,
                            const Claimant& by) = 0;
  virtual void release(const std::string& key, const Claimant& by) = 0;
  virtual void heartbeat(const Claimant& by) = 0;
  // Stores a run and drops its claim; false when the key was stored already.
  virtual bool put_run(const std::string& key, const std::string& study, const std::string& setting,
                       std::int64_t repetition, const nlohmann::json& record,
                       const std::vector<float>& weights) = 0;
  // The runner is done with the store (SQLite: its log checkpointed into the file).
  virtual void finish() {}
};

// An SQLite path or a PostgreSQL URL; `lease_seconds`: how long a claim holds without a
// heartbeat (on SQLite, for claims of other machines: variance/claims.h).
std::unique_ptr<RowStore> open_row_store(const std::string& path_or_url,
                                         std::int64_t lease_seconds);

}  // namespace detdl::variance
