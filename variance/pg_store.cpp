// PostgreSQL stores (variance/pg_store.h): rows moved between SQLite and PostgreSQL.
#include "variance/pg_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include "variance/store_sql.h"

#if DETDL_HAVE_LIBPQ
#include <libpq-fe.h>
#endif

namespace detdl::variance {

bool is_postgres_url(const std::string& s) {
  return s.rfind("postgresql://", 0) == 0 || s.rfind("postgres://", 0) == 0;
}

namespace {
// The SQLite store as the runner uses it.
class SqliteRowStore final : public RowStore {
 public:
  SqliteRowStore(std::string path, std::int64_t lease) : path_(std::move(path)), lease_(lease) {}
  void put_study(const std::string& name, const nlohmann::json& spec) override {
    Store(path_).put_study(name, spec);
  }
  std::set<std::string> run_keys(const std::string& study) override {
    return Store(path_).run_keys(study);
  }
  ClaimResult claim(const std::string& key, const std::string& study, const Claimant& by) override {
    return Store(path_).claim_run(key, study, by, lease_);
  }
  void release(const std::string& key, const Claimant& by) override {
    Store(path_).release_claim(key, by);
  }
  void heartbeat(const Claimant& by) override { Store(path_).heartbeat(by); }
  bool put_run(const std::string& key, const std::string& study, const std::string& setting,
               std::int64_t repetition, const nlohmann::json& record,
               const std::vector<float>& weights) override {
    return Store(path_).put_run(key, study, setting, repetition, record, weights);
  }
  void finish() override { Store(path_).checkpoint(); }

 private:
  std::string path_;
  std::int64_t lease_;
};

std::unique_ptr<RowStore> open_pg_row_store(const std::string& url, std::int64_t lease);
}  // namespace

std::unique_ptr<RowStore> open_row_store(const std::string& path_or_url,
                                         std::int64_t lease_seconds) {
  if (is_postgres_url(path_or_url)) return open_pg_row_store(path_or_url, lease_seconds);
  return std::make_unique<SqliteRowStore>(path_or_url, lease_seconds);
}

#if !DETDL_HAVE_LIBPQ

bool postgres_available() { return false; }

namespace {
[[noreturn]] void no_libpq(const std::string& url) {
  throw std::runtime_error("store " + url +
                           ": this detdl was built without libpq (apt-get install libpq-dev, "
                           "then configure and build again)");
}

std::unique_ptr<RowStore> open_pg_row_store(const std::string& url, std::int64_t) { no_libpq(url); }
}  // namespace

Store::MergeResult merge_sqlite_into_postgres(const std::string&, const std::string& url) {
  no_libpq(url);
}
Store::MergeResult merge_postgres_into_sqlite(const std::string& url, const std::string&) {
  no_libpq(url);
}

#else

namespace {

using store_sql::fail;
using store_sql::Statement;

// The tables rows move through, parents first.
const char* const kTables[] = {"studies",        "runs",    "epochs",
                               "class_accuracy", "weights", "epoch_predictions"};

struct Column {
  std::string name, type;  // SQLite's declared type: TEXT, INTEGER, REAL, BLOB or ""
  bool not_null = false;
  int pk = 0;  // position in the primary key, 0: not in it
};

std::vector<Column> sqlite_columns(sqlite3* db, const std::string& table, const std::string& path) {
  std::vector<Column> out;
  Statement st(db, "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?)", path);
  st.bind(1, table);
  while (st.step()) out.push_back({st.text(0), st.text(1), st.int64(2) != 0, int(st.int64(3))});
  if (out.empty()) fail(path, "no table " + table);
  return out;
}

std::string quoted(const std::string& name) { return "\"" + name + "\""; }

std::string column_list(const std::vector<Column>& cols) {
  std::string out;
  for (const auto& c : cols) out += (out.empty() ? "" : ", ") + quoted(c.name);
  return out;
}

std::string pg_type(const std::string& sqlite_type) {
  if (sqlite_type == "INTEGER") return "BIGINT";
  if (sqlite_type == "REAL") return "DOUBLE PRECISION";
  if (sqlite_type == "BLOB") return "BYTEA";
  return "TEXT";  // TEXT, and untyped columns (their values as text)
}

// A libpq connection; a transaction left open when it closes is rolled back by the server.
class Pg {
 public:
  explicit Pg(const std::string& url) : url_(url), conn_(PQconnectdb(url.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) {
      const std::string msg = PQerrorMessage(conn_);
      PQfinish(conn_);
      throw std::runtime_error("store " + url + ": cannot connect: " + msg);
    }
    exec("SET client_min_messages = warning");
  }
  ~Pg() { PQfinish(conn_); }
  Pg(const Pg&) = delete;
  Pg& operator=(const Pg&) = delete;

  struct Result {
    std::unique_ptr<PGresult, void (*)(PGresult*)> r{nullptr, PQclear};
    int rows() const { return PQntuples(r.get()); }
    bool null(int row, int col) const { return PQgetisnull(r.get(), row, col) != 0; }
    std::string text(int row, int col) const {
      return std::string(PQgetvalue(r.get(), row, col),
                         static_cast<std::size_t>(PQgetlength(r.get(), row, col)));
    }
  };
  struct Param {
    bool null = false, binary = false;
    std::string value;
  };

  void exec(const std::string& sql) { query(sql, {}); }
  Result query(const std::string& sql, const std::vector<Param>& ps) {
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    for (const auto& p : ps) {
      values.push_back(p.null ? nullptr : p.value.data());
      lengths.push_back(static_cast<int>(p.value.size()));
      formats.push_back(p.binary ? 1 : 0);
    }
    Result res;
    res.r.reset(PQexecParams(conn_, sql.c_str(), static_cast<int>(ps.size()), nullptr,
                             values.data(), lengths.data(), formats.data(), 0));
    const auto st = PQresultStatus(res.r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
      throw std::runtime_error("store " + url_ + ": " + PQerrorMessage(conn_) + "(in: " + sql +
                               ")");
    return res;
  }

 private:
  std::string url_;
  PGconn* conn_;
};

// The SQLite tables' columns, from the store at `db` (any store of this schema version).
struct Schema {
  std::vector<std::vector<Column> > tables;  // as kTables
};
Schema read_schema(sqlite3* db, const std::string& path) {
  Schema s;
  for (const char* t : kTables) s.tables.push_back(sqlite_columns(db, t, path));
  return s;
}

// Creates the tables in the database when missing, and checks its schema version.
void ensure_pg_schema(Pg& pg, const Schema& schema, const std::string& url) {
  // Runners starting together would race on CREATE TABLE IF NOT EXISTS (PostgreSQL can fail
  // one of two concurrent creations): one at a time, until the transaction ends.
  pg.exec("SELECT pg_advisory_xact_lock(7465746464)");  // "detdl" in a number
  pg.exec("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)");
  pg.query("INSERT INTO meta(key, value) VALUES ('schema_version', $1) ON CONFLICT DO NOTHING",
           {{false, false, std::to_string(kStoreSchemaVersion)}});
  const auto v = pg.query("SELECT value FROM meta WHERE key = 'schema_version'", {});
  if (v.rows() != 1 || v.text(0, 0) != std::to_string(kStoreSchemaVersion))
    throw std::runtime_error("store " + url + ": schema_version " +
                             (v.rows() ? v.text(0, 0) : std::string("(none)")) +
                             ", this detdl's is " + std::to_string(kStoreSchemaVersion));
  for (std::size_t t = 0; t < schema.tables.size(); ++t) {
    const auto& cols = schema.tables[t];
    std::string ddl = "CREATE TABLE IF NOT EXISTS " + quoted(kTables[t]) + "(";
    std::vector<std::pair<int, std::string> > pk;
    for (const auto& c : cols) {
      ddl += quoted(c.name) + " " + pg_type(c.type) + (c.not_null ? " NOT NULL" : "") + ", ";
      if (c.pk > 0) pk.emplace_back(c.pk, c.name);
    }
    std::sort(pk.begin(), pk.end());
    std::string keys;
    for (const auto& [i, n] : pk) keys += (keys.empty() ? "" : ", ") + quoted(n);
    ddl += "PRIMARY KEY (" + keys + "))";
    pg.exec(ddl);
  }
  pg.exec("CREATE INDEX IF NOT EXISTS runs_by_study ON runs(study, setting, repetition)");
}

// Column c of the current row of `st` as a libpq parameter.
Pg::Param sqlite_value(sqlite3_stmt* st, int c) {
  switch (sqlite3_column_type(st, c)) {
    case SQLITE_NULL: return {true, false, {}};
    case SQLITE_INTEGER: return {false, false, std::to_string(sqlite3_column_int64(st, c))};
    case SQLITE_FLOAT: {
      const double d = sqlite3_column_double(st, c);
      if (std::isinf(d)) return {false, false, d > 0 ? "Infinity" : "-Infinity"};
      char buf[40];
      std::snprintf(buf, sizeof buf, "%.17g", d);  // round-trips a double
      return {false, false, buf};
    }
    case SQLITE_BLOB: {
      const auto* p = static_cast<const char*>(sqlite3_column_blob(st, c));
      return {false, true, std::string(p, p + sqlite3_column_bytes(st, c))};
    }
    default: {
      const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, c));
      return {false, false, std::string(p, p + sqlite3_column_bytes(st, c))};
    }
  }
}

// Inserts the rows `sql` selects from SQLite (columns as `cols`) into PostgreSQL's `table`.
void copy_rows_to_pg(sqlite3* db, const std::string& path, const std::string& sql,
                     const std::string& key, Pg& pg, const std::string& table,
                     const std::vector<Column>& cols) {
  std::string insert = "INSERT INTO " + quoted(table) + "(" + column_list(cols) + ") VALUES (";
  for (std::size_t i = 0; i < cols.size(); ++i) insert += (i ? ", $" : "$") + std::to_string(i + 1);
  insert += ")";
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK)
    fail(path, sqlite3_errmsg(db));
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> guard(raw, sqlite3_finalize);
  if (!key.empty()) sqlite3_bind_text(raw, 1, key.data(), int(key.size()), SQLITE_TRANSIENT);
  int rc;
  while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
    std::vector<Pg::Param> ps;
    for (int c = 0; c < static_cast<int>(cols.size()); ++c) ps.push_back(sqlite_value(raw, c));
    pg.query(insert, ps);
  }
  if (rc != SQLITE_DONE) fail(path, sqlite3_errmsg(db));
}

struct SqliteDb {
  sqlite3* db = nullptr;
  SqliteDb(const std::string& path, int flags) {
    if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
      const std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
      sqlite3_close(db);
      fail(path, msg);
    }
    sqlite3_busy_timeout(db, 10000);
  }
  ~SqliteDb() { sqlite3_close(db); }
};

bool canonical_int64(const std::string& s) {
  if (s.empty() || s.size() > 20) return false;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  return errno == 0 && *end == '\0' && std::to_string(v) == s;
}

// A temporary SQLite store's path, unique in this process, removed (with its journal) when
// this goes.
struct TempStore {
  std::string path;
  explicit TempStore(const char* what) {
    static std::atomic<int> n{0};
    path = (std::filesystem::temp_directory_path() /
            ("detdl-" + std::string(what) + "-" + std::to_string(::getpid()) + "-" +
             std::to_string(n.fetch_add(1)) + ".sqlite"))
               .string();
    std::filesystem::remove(path);
  }
  ~TempStore() {
    std::error_code ec;
    for (const char* suffix : {"", "-journal", "-wal", "-shm"})
      std::filesystem::remove(path + suffix, ec);
  }
  TempStore(const TempStore&) = delete;
  TempStore& operator=(const TempStore&) = delete;
};

}  // namespace

bool postgres_available() { return true; }

Store::MergeResult merge_sqlite_into_postgres(const std::string& from, const std::string& url) {
  { Store check(from); }  // a detdl store, brought up to this schema version
  SqliteDb src(from, SQLITE_OPEN_READONLY);
  const Schema schema = read_schema(src.db, from);
  Pg pg(url);
  pg.exec("BEGIN");
  ensure_pg_schema(pg, schema, url);
  pg.exec("LOCK TABLE runs IN SHARE ROW EXCLUSIVE MODE");  // one merge at a time
  Store::MergeResult result;
  {  // studies: a name in both must have the same spec
    Statement st(src.db, "SELECT name, spec_json FROM studies", from);
    while (st.step()) {
      const auto there =
          pg.query("SELECT spec_json FROM studies WHERE name = $1", {{false, false, st.text(0)}});
      if (there.rows() && there.text(0, 0) != st.text(1))
        throw std::runtime_error("store " + url + ": study '" + st.text(0) +
                                 "' has another spec in " + from +
                                 " than here: not one study (nothing merged)");
      if (!there.rows())
        copy_rows_to_pg(src.db, from,
                        "SELECT " + column_list(schema.tables[0]) + " FROM studies WHERE name = ?",
                        st.text(0), pg, "studies", schema.tables[0]);
    }
  }
  // A stored row is no longer claimed (variance/claims.h): its claim goes in this
  // transaction, as Store::put_run does in SQLite, so that no kill can leave a claim on a
  // stored row behind (no runner would ever take such a row over, nor drop its claim).
  const bool has_claims =
      pg.query("SELECT to_regclass('claims') IS NOT NULL", {}).text(0, 0) == "t";
  Statement runs(src.db, "SELECT key, setting, repetition, weight_hash FROM runs ORDER BY key",
                 from);
  while (runs.step()) {
    const std::string key = runs.text(0);
    if (has_claims) pg.query("DELETE FROM claims WHERE key = $1", {{false, false, key}});
    const auto there =
        pg.query("SELECT weight_hash FROM runs WHERE key = $1", {{false, false, key}});
    if (there.rows()) {
      if (there.text(0, 0) != runs.text(3))
        throw std::runtime_error(
            "store " + url + ": run " + key + " (setting '" + runs.text(1) + "', repetition " +
            std::to_string(runs.int64(2)) + ") has weight hash " + there.text(0, 0) + " here and " +
            runs.text(3) + " in " + from + ": conflicting rows, nothing merged");
      ++result.identical;
      continue;
    }
    for (std::size_t t = 1; t < schema.tables.size(); ++t) {
      const std::string by = t == 1 ? "key" : "run_key";
      copy_rows_to_pg(src.db, from,
                      "SELECT " + column_list(schema.tables[t]) + " FROM " + kTables[t] +
                          " WHERE " + by + " = ?",
                      key, pg, kTables[t], schema.tables[t]);
    }
    ++result.added;
  }
  pg.exec("COMMIT");
  return result;
}

Store::MergeResult merge_postgres_into_sqlite(const std::string& url, const std::string& to) {
  // The database's rows into a fresh SQLite store first, then merged with merge_from's rules.
  const TempStore temp("pg");
  const std::string& tmp = temp.path;
  { Store create(tmp); }
  {
    SqliteDb dst(tmp, SQLITE_OPEN_READWRITE);
    const Schema schema = read_schema(dst.db, tmp);
    Pg pg(url);
    pg.exec("BEGIN ISOLATION LEVEL REPEATABLE READ");  // one snapshot of every table
    const auto have = pg.query("SELECT to_regclass('runs') IS NOT NULL", {});
    if (have.text(0, 0) != "t") throw std::runtime_error("store " + url + ": no detdl tables");
    store_sql::exec(dst.db, "BEGIN IMMEDIATE", tmp);
    for (std::size_t t = 0; t < schema.tables.size(); ++t) {
      const auto& cols = schema.tables[t];
      const auto rows = pg.query("SELECT " + column_list(cols) + " FROM " + quoted(kTables[t]), {});
      std::string insert =
          "INSERT INTO " + std::string(kTables[t]) + "(" + column_list(cols) + ") VALUES (";
      for (std::size_t i = 0; i < cols.size(); ++i) insert += i ? ", ?" : "?";
      insert += ")";
      Statement ins(dst.db, insert, tmp);
      for (int r = 0; r < rows.rows(); ++r) {
        ins.reset();
        for (int c = 0; c < static_cast<int>(cols.size()); ++c) {
          const int i = c + 1;
          if (rows.null(r, c)) {
            ins.bind_null(i);
            continue;
          }
          const std::string v = rows.text(r, c);
          const std::string& type = cols[static_cast<std::size_t>(c)].type;
          if (type == "INTEGER" || (type.empty() && canonical_int64(v))) {
            ins.bind(i, static_cast<std::int64_t>(std::stoll(v)));
          } else if (type == "REAL") {
            ins.bind(i, std::strtod(v.c_str(), nullptr));
          } else if (type == "BLOB") {
            std::size_t n = 0;
            unsigned char* raw =
                PQunescapeBytea(reinterpret_cast<const unsigned char*>(v.c_str()), &n);
            if (!raw) throw std::runtime_error("store " + url + ": bad bytea in " + kTables[t]);
            std::vector<unsigned char> bytes(raw, raw + n);
            PQfreemem(raw);
            ins.bind(i, bytes);
          } else {
            ins.bind(i, v);
          }
        }
        ins.run();
      }
    }
    store_sql::exec(dst.db, "COMMIT", tmp);
    pg.exec("COMMIT");
  }
  Store out(to);
  return out.merge_from(tmp);
}

namespace {

// The SQLite schema's columns, read once from a fresh store.
const Schema& fresh_schema() {
  static const Schema schema = [] {
    const TempStore temp("schema");
    { Store create(temp.path); }
    SqliteDb db(temp.path, SQLITE_OPEN_READONLY);
    return read_schema(db.db, temp.path);
  }();
  return schema;
}

std::string worker_id(const Claimant& by) {
  return by.host + "/" + by.machine + "/" + std::to_string(by.pid) + "/" +
         std::to_string(by.start_time);
}

class PgRowStore final : public RowStore {
 public:
  PgRowStore(std::string url, std::int64_t lease) : url_(std::move(url)), lease_(lease) {
    Pg pg(url_);
    pg.exec("BEGIN");
    ensure_pg_schema(pg, fresh_schema(), url_);
    pg.exec(
        "CREATE TABLE IF NOT EXISTS claims(key TEXT PRIMARY KEY, study TEXT NOT NULL, worker TEXT "
        "NOT NULL, claimed_at TIMESTAMPTZ NOT NULL DEFAULT now(), lease_until TIMESTAMPTZ NOT "
        "NULL)");
    pg.exec("COMMIT");
  }
  void put_study(const std::string& name, const nlohmann::json& spec) override {
    Pg pg(url_);
    pg.query(
        "INSERT INTO studies(name, spec_json, created_at) VALUES ($1, $2, "
        "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')) "
        "ON CONFLICT (name) DO UPDATE SET spec_json = EXCLUDED.spec_json",
        {{false, false, name}, {false, false, spec.dump()}});
  }
  std::set<std::string> run_keys(const std::string& study) override {
    Pg pg(url_);
    const auto r = pg.query("SELECT key FROM runs WHERE study = $1", {{false, false, study}});
    std::set<std::string> out;
    for (int i = 0; i < r.rows(); ++i) out.insert(r.text(i, 0));
    return out;
  }
  ClaimResult claim(const std::string& key, const std::string& study, const Claimant& by) override {
    Pg pg(url_);
    const std::string me = worker_id(by), lease = std::to_string(lease_);
    pg.exec("BEGIN");
    // A claim left on a stored row (by a version that dropped it after the commit) goes.
    if (drop_if_stored(pg, key)) return ClaimResult::stored;
    const auto fresh = pg.query(
        "INSERT INTO claims(key, study, worker, lease_until) VALUES ($1, $2, $3, now() + "
        "make_interval(secs => $4::double precision)) ON CONFLICT (key) DO NOTHING RETURNING key",
        {{false, false, key}, {false, false, study}, {false, false, me}, {false, false, lease}});
    if (fresh.rows()) return settle(pg, key);
    // Held already: take it when the lease has expired or it is ours; a row another
    // runner is deciding on right now is skipped, not waited for.
    const auto held = pg.query(
        "SELECT worker = $2 OR lease_until < now() FROM claims WHERE key = $1 FOR UPDATE SKIP "
        "LOCKED",
        {{false, false, key}, {false, false, me}});
    if (!held.rows() || held.text(0, 0) != "t") {
      pg.exec("COMMIT");
      return ClaimResult::held;
    }
    pg.query(
        "UPDATE claims SET worker = $2, claimed_at = now(), lease_until = now() + "
        "make_interval(secs => $3::double precision) WHERE key = $1",
        {{false, false, key}, {false, false, me}, {false, false, lease}});
    return settle(pg, key);
  }
  // The end of a claim that got the row: whether the row was stored meanwhile, looked at
  // again. Under READ COMMITTED each statement sees what was committed before it began, and
  // the INSERT above waits for a runner whose storing transaction deletes this row's claim:
  // when that commits, the INSERT goes through (the conflicting claim is gone) although the
  // first look, taken earlier, saw no run. Without this second look the claim stayed on a
  // stored row, where no runner would ever take it over or drop it if its holder died
  // before its worker found the row stored (seen in CI: PgStore.RunnersShareAStudy...).
  static ClaimResult settle(Pg& pg, const std::string& key) {
    if (drop_if_stored(pg, key)) return ClaimResult::stored;
    pg.exec("COMMIT");
    return ClaimResult::claimed;
  }
  // Inside claim's transaction: when the row is stored, its claim goes and the transaction
  // commits (true); else nothing is done (false).
  static bool drop_if_stored(Pg& pg, const std::string& key) {
    if (!pg.query("SELECT 1 FROM runs WHERE key = $1", {{false, false, key}}).rows()) return false;
    pg.query("DELETE FROM claims WHERE key = $1", {{false, false, key}});
    pg.exec("COMMIT");
    return true;
  }
  void release(const std::string& key, const Claimant& by) override {
    Pg pg(url_);
    pg.query("DELETE FROM claims WHERE key = $1 AND worker = $2",
             {{false, false, key}, {false, false, worker_id(by)}});
  }
  void heartbeat(const Claimant& by) override {
    Pg pg(url_);
    pg.query(
        "UPDATE claims SET lease_until = now() + make_interval(secs => $2::double precision) "
        "WHERE worker = $1",
        {{false, false, worker_id(by)}, {false, false, std::to_string(lease_)}});
  }
  // Through a one-run SQLite store and merge_sqlite_into_postgres (its transaction, its rules,
  // and the row's claim deleted in it).
  bool put_run(const std::string& key, const std::string& study, const std::string& setting,
               std::int64_t repetition, const nlohmann::json& record,
               const std::vector<float>& weights) override {
    const TempStore temp("run");
    const std::string& tmp = temp.path;
    nlohmann::json spec;
    {
      Pg pg(url_);
      const auto r =
          pg.query("SELECT spec_json FROM studies WHERE name = $1", {{false, false, study}});
      if (!r.rows()) throw std::runtime_error("store " + url_ + ": no study " + study);
      spec = nlohmann::json::parse(r.text(0, 0));
    }
    {
      Store one(tmp);
      one.put_study(study, spec);
      one.put_run(key, study, setting, repetition, record, weights);
    }
    return merge_sqlite_into_postgres(tmp, url_).added == 1;
  }

 private:
  std::string url_;
  std::int64_t lease_;
};

std::unique_ptr<RowStore> open_pg_row_store(const std::string& url, std::int64_t lease) {
  return std::make_unique<PgRowStore>(url, lease);
}

}  // namespace

#endif

}  // namespace detdl::variance
