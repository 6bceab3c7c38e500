#include "variance/store.h"

#include <sqlite3.h>
#include <zlib.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <limits>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "nets/experiment.h"
#include "variance/store_sql.h"

namespace detdl::variance {

namespace {

using store_sql::exec;
using store_sql::fail;
using store_sql::Statement;
using store_sql::Transaction;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr std::array<std::string_view, 3> kSplits = {"train", "test", "validation"};
constexpr std::array<std::string_view, 6> kSeedNames = {"init",    "order",       "augment",
                                                        "dropout", "label_noise", "split"};

// ---- zlib blobs -------------------------------------------------------------------------

void put_u64(std::vector<unsigned char>& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}

std::uint64_t get_u64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

// prefix bytes, then zlib(payload)
// level: zlib's 1 (fastest) to 9 (smallest).
std::vector<unsigned char> deflate_after(std::vector<unsigned char> prefix,
                                         const unsigned char* payload, std::size_t size,
                                         int level = 6) {
  uLongf bound = compressBound(static_cast<uLong>(size));
  const std::size_t head = prefix.size();
  prefix.resize(head + bound);
  if (compress2(prefix.data() + head, &bound, payload, static_cast<uLong>(size), level) != Z_OK)
    throw std::runtime_error("zlib compress2 failed");
  prefix.resize(head + bound);
  return prefix;
}

std::vector<unsigned char> inflate_exact(const unsigned char* data, std::size_t size,
                                         std::size_t expected, const std::string& where) {
  // deflate never compresses better than 1032:1: a header claiming more than that of `size`
  // bytes is corrupt, and is refused before `expected` bytes are allocated (fuzz_store).
  if (expected / 1032 > size)
    throw std::runtime_error(where + ": corrupt compressed blob (" + std::to_string(size) +
                             " bytes cannot inflate to the " + std::to_string(expected) +
                             " its header says)");
  std::vector<unsigned char> out(expected);
  uLongf got = static_cast<uLongf>(expected);
  const int rc = uncompress(out.data(), &got, data, static_cast<uLong>(size));
  if (rc != Z_OK || got != expected)
    throw std::runtime_error(where + ": corrupt compressed blob (zlib code " + std::to_string(rc) +
                             ")");
  return out;
}

// Record text: uint64 LE length, then zlib(text).
// zlib's fastest level: a record is stored while the runner holds the store's write lock, and
// level 6 took a fifth of a BUTTER batch's store time for records about a fifth smaller.
std::vector<unsigned char> pack_text(const std::string& text) {
  std::vector<unsigned char> head;
  put_u64(head, text.size());
  return deflate_after(std::move(head), reinterpret_cast<const unsigned char*>(text.data()),
                       text.size(), 1);
}

std::string unpack_text(const unsigned char* data, std::size_t size, const std::string& where) {
  if (size < 8) throw std::runtime_error(where + ": compressed blob shorter than its header");
  const std::uint64_t n = get_u64(data);
  if (n > (std::uint64_t{1} << 36)) throw std::runtime_error(where + ": implausible length");
  const auto bytes = inflate_exact(data + 8, size - 8, static_cast<std::size_t>(n), where);
  return std::string(bytes.begin(), bytes.end());
}

const char* kSchema = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE studies(name TEXT PRIMARY KEY, spec_json TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE runs(
  key TEXT PRIMARY KEY,
  study TEXT NOT NULL REFERENCES studies(name),
  setting TEXT NOT NULL,
  repetition INTEGER NOT NULL,
  experiment_json TEXT NOT NULL,
  level TEXT,
  fast_ops TEXT,
  seed_init, seed_order, seed_augment, seed_dropout, seed_label_noise, seed_split,
  detdl_version TEXT,
  host TEXT,
  cpu TEXT,
  started_at TEXT,
  total_seconds REAL,
  epochs INTEGER NOT NULL,
  steps INTEGER,
  weight_hash TEXT NOT NULL,
  parameters INTEGER,
  record_json BLOB NOT NULL,
  predictions BLOB,
  finished_at TEXT NOT NULL,
  task TEXT,
  diverged INTEGER,
  seed_impl,
  emulated_ops TEXT);
CREATE INDEX runs_by_study ON runs(study, setting, repetition);
CREATE TABLE epochs(
  run_key TEXT NOT NULL REFERENCES runs(key) ON DELETE CASCADE,
  epoch INTEGER NOT NULL,
  seconds REAL,
  weight_hash TEXT,
  split TEXT NOT NULL CHECK (split IN ('train', 'test', 'validation')),
  loss REAL, accuracy REAL, cosine_similarity REAL, hinge REAL,
  kullback_leibler_divergence REAL, mean_absolute_error REAL, mean_squared_error REAL,
  mean_squared_logarithmic_error REAL, root_mean_squared_error REAL, squared_hinge REAL,
  PRIMARY KEY (run_key, epoch, split));
CREATE TABLE class_accuracy(
  run_key TEXT NOT NULL REFERENCES runs(key) ON DELETE CASCADE,
  epoch INTEGER NOT NULL,
  class INTEGER NOT NULL,
  accuracy REAL,
  PRIMARY KEY (run_key, epoch, class));
CREATE TABLE weights(
  run_key TEXT PRIMARY KEY REFERENCES runs(key) ON DELETE CASCADE,
  count INTEGER NOT NULL,
  data BLOB NOT NULL);
CREATE TABLE epoch_predictions(
  run_key TEXT NOT NULL REFERENCES runs(key) ON DELETE CASCADE,
  epoch INTEGER NOT NULL,
  predictions BLOB NOT NULL,
  PRIMARY KEY (run_key, epoch));
)sql";

// Schema 3: who is running which row (variance/claims.h). No reference to runs: a claimed
// row has no run yet. Times are Unix seconds.
const char* kClaimsSchema = R"sql(
CREATE TABLE claims(
  key TEXT PRIMARY KEY,
  study TEXT NOT NULL,
  pid INTEGER NOT NULL,
  host TEXT NOT NULL,
  machine TEXT NOT NULL,
  start_time INTEGER NOT NULL,
  claimed_at INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL);
)sql";

// The record's task ("" when absent) and its divergence flag (-1 when absent).
std::pair<std::string, int> task_and_divergence(const nlohmann::json& record) {
  std::string task;
  if (const auto d = record.find("data"); d != record.end() && d->is_object())
    if (const auto t = d->find("task"); t != d->end() && t->is_string())
      task = t->get<std::string>();
  int diverged = -1;
  if (const auto v = record.find("diverged"); v != record.end() && v->is_boolean())
    diverged = v->get<bool>() ? 1 : 0;
  return {task, diverged};
}

// ---- record field access (errors name the run and the field) ----------------------------

struct RecordReader {
  const std::string& key;

  [[noreturn]] void bad(const std::string& field, const std::string& what) const {
    throw std::invalid_argument("run record " + key + ": field '" + field + "' " + what);
  }
  const nlohmann::json& need(const nlohmann::json& obj, const std::string& name,
                             const std::string& field) const {
    const auto it = obj.find(name);
    if (it == obj.end()) bad(field, "is missing");
    return *it;
  }
  const nlohmann::json& object(const nlohmann::json& obj, const std::string& name,
                               const std::string& field) const {
    const auto& v = need(obj, name, field);
    if (!v.is_object()) bad(field, "must be an object");
    return v;
  }
  const nlohmann::json& array(const nlohmann::json& obj, const std::string& name,
                              const std::string& field) const {
    const auto& v = need(obj, name, field);
    if (!v.is_array()) bad(field, "must be an array");
    return v;
  }
  std::string string(const nlohmann::json& obj, const std::string& name,
                     const std::string& field) const {
    const auto& v = need(obj, name, field);
    if (!v.is_string()) bad(field, "must be a string");
    return v.get<std::string>();
  }
  // Absent or null -> "".
  std::string optional_string(const nlohmann::json* obj, const std::string& name,
                              const std::string& field) const {
    if (!obj || !obj->is_object()) return {};
    const auto it = obj->find(name);
    if (it == obj->end() || it->is_null()) return {};
    if (!it->is_string()) bad(field, "must be a string");
    return it->get<std::string>();
  }
  // null -> NaN
  double number(const nlohmann::json& v, const std::string& field) const {
    if (v.is_null()) return kNaN;
    if (!v.is_number()) bad(field, "must be a number or null");
    return v.get<double>();
  }
  std::int64_t integer(const nlohmann::json& v, const std::string& field) const {
    if (!v.is_number_integer()) bad(field, "must be an integer");
    if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
      bad(field, "is out of range");
    return v.get<std::int64_t>();
  }
  std::vector<std::int32_t> predictions(const nlohmann::json& v, const std::string& field) const {
    if (!v.is_array()) bad(field, "must be an array of integers");
    std::vector<std::int32_t> out;
    out.reserve(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
      const std::int64_t x = integer(v[i], field + "[" + std::to_string(i) + "]");
      if (x < INT32_MIN || x > INT32_MAX)
        bad(field + "[" + std::to_string(i) + "]", "is out of range");
      out.push_back(static_cast<std::int32_t>(x));
    }
    return out;
  }
};

const nlohmann::json* find_object(const nlohmann::json& obj, const char* name) {
  const auto it = obj.find(name);
  return it != obj.end() && it->is_object() ? &*it : nullptr;
}

// A seed column: NULL when absent or null, INTEGER when it fits int64, else its text.
void bind_seed(Statement& st, int col, const nlohmann::json* seeds, std::string_view name,
               const RecordReader& r) {
  const std::string field = "experiment.seeds." + std::string(name);
  if (!seeds) return st.bind_null(col);
  const auto it = seeds->find(std::string(name));
  if (it == seeds->end() || it->is_null()) return st.bind_null(col);
  if (it->is_number_unsigned()) {
    const auto u = it->get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(INT64_MAX)) return st.bind(col, std::to_string(u));
    return st.bind(col, static_cast<std::int64_t>(u));
  }
  if (it->is_number_integer()) return st.bind(col, it->get<std::int64_t>());
  if (it->is_string()) return st.bind(col, it->get<std::string>());
  r.bad(field, "must be an integer, a string or null");
}

MetricMap empty_metrics() {
  MetricMap m;
  for (auto name : kMetricNames) m[std::string(name)] = kNaN;
  return m;
}

}  // namespace

// ---- predictions blob -------------------------------------------------------------------

std::vector<unsigned char> pack_predictions(const std::vector<std::int32_t>& predictions) {
  int width = 1;
  for (const std::int32_t p : predictions) {
    if (p < INT16_MIN || p > INT16_MAX) {
      width = 4;
      break;
    }
    if (p < INT8_MIN || p > INT8_MAX) width = 2;
  }
  std::vector<unsigned char> raw;
  raw.reserve(predictions.size() * static_cast<std::size_t>(width));
  for (const std::int32_t p : predictions) {
    const auto u = static_cast<std::uint32_t>(p);  // two's complement, little-endian
    for (int b = 0; b < width; ++b) raw.push_back(static_cast<unsigned char>(u >> (8 * b)));
  }
  std::vector<unsigned char> head{static_cast<unsigned char>(width)};
  put_u64(head, predictions.size());
  return deflate_after(std::move(head), raw.data(), raw.size());
}

std::vector<std::int32_t> unpack_predictions(const unsigned char* data, std::size_t size,
                                             const std::string& where) {
  if (size < 9) throw std::runtime_error(where + ": predictions blob shorter than its header");
  const int width = data[0];
  if (width != 1 && width != 2 && width != 4)
    throw std::runtime_error(where + ": predictions blob has width " + std::to_string(width) +
                             ", expected 1, 2 or 4");
  const std::uint64_t n = get_u64(data + 1);
  if (n > (std::uint64_t{1} << 32)) throw std::runtime_error(where + ": implausible count");
  const auto raw = inflate_exact(data + 9, size - 9, static_cast<std::size_t>(n) * width, where);
  std::vector<std::int32_t> out(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::uint32_t u = 0;
    for (int b = 0; b < width; ++b) u |= static_cast<std::uint32_t>(raw[i * width + b]) << (8 * b);
    // sign-extend from `width` bytes
    const int shift = 32 - 8 * width;
    out[i] = static_cast<std::int32_t>(u << shift) >> shift;
  }
  return out;
}

bool StoredRun::has_validation() const {
  if (epochs.empty()) return false;
  for (const auto& e : epochs)
    if (e.validation.empty()) return false;
  return true;
}

// ---- Store ------------------------------------------------------------------------------

void Store::Closer::operator()(sqlite3* db) const { sqlite3_close_v2(db); }

Store::Store(const std::string& path) : path_(path) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  db_.reset(raw);
  if (rc != SQLITE_OK)
    fail(path_, std::string("cannot open: ") + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  sqlite3_busy_timeout(db_.get(), 60000);  // other workers may hold the write lock
  try {
    exec(db_.get(), "PRAGMA foreign_keys = ON", path_);
    // Switching a new file to WAL needs the file to itself: SQLite answers SQLITE_BUSY at
    // once, without the busy handler, when another process opens it at that moment (two
    // runners, or a reader, starting on a fresh store). Retry for the busy timeout.
    const auto t0 = std::chrono::steady_clock::now();
    for (;;) {
      const int wal_rc =
          sqlite3_exec(db_.get(), "PRAGMA journal_mode = WAL", nullptr, nullptr, nullptr);
      if (wal_rc == SQLITE_OK) break;
      const bool busy = (wal_rc & 0xff) == SQLITE_BUSY || (wal_rc & 0xff) == SQLITE_LOCKED;
      if (busy && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      // The first statement that reads the header: a file that is not SQLite fails here,
      // and every other failure is reported with the file's name.
      Statement wal(db_.get(), "PRAGMA journal_mode = WAL", path_);
      wal.run();
      break;
    }
    // WAL's NORMAL: a commit is in the log when it returns, so a run survives its process
    // being killed (tests/variance: the kill campaign); only the operating system dying may
    // take the last commits back, and never corrupts the store. And no checkpoint when a
    // connection closes: the runner opens one per use (none may cross its forks), so each
    // close was the last and moved the log into the file and deleted it, waiting for the
    // disk four times. With SQLite's defaults (FULL, a checkpoint per last close) a batch of
    // 30 short BUTTER runs spent 1.5 of its 2 s in 310 fdatasync calls, a fifth of a
    // 300-epoch batch. The log is checkpointed as it grows (SQLite's 1,000 pages) and when a
    // runner ends (checkpoint()); until then the runs are in study.sqlite-wal beside the file.
    exec(db_.get(), "PRAGMA synchronous = NORMAL", path_);
    sqlite3_db_config(db_.get(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    // A page cache of 64 MiB (SQLite's default is 2): storing a run inserts thousands of epoch
    // and class rows into indexes that outgrow 2 MiB after a few hundred runs of 300 epochs,
    // and every page that fell out of the cache was read again (a quarter of a batch's store
    // time in pread). The cache is allocated as pages are used.
    exec(db_.get(), "PRAGMA cache_size = -65536", path_);
    init_schema();
  } catch (const std::runtime_error&) {
    if (sqlite3_errcode(db_.get()) == SQLITE_NOTADB)
      fail(path_, std::string("not an SQLite database (") + sqlite3_errmsg(db_.get()) + ")");
    throw;
  }
}

void Store::checkpoint() {
  exec(db_.get(), "PRAGMA wal_checkpoint(TRUNCATE)", path_);
  // This connection's close may checkpoint again (nothing left) and, as the last one,
  // delete the empty log and its index: the store is one file again.
  sqlite3_db_config(db_.get(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, nullptr);
}

Store::~Store() = default;
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;

void Store::init_schema() {
  sqlite3* db = db_.get();
  Transaction tx(db, path_);
  std::set<std::string> tables;
  {
    Statement st(db, "SELECT name FROM sqlite_master WHERE type = 'table'", path_);
    while (st.step()) tables.insert(st.text(0));
  }
  if (tables.count("meta")) {
    std::string version;
    {
      Statement st(db, "SELECT value FROM meta WHERE key = 'schema_version'", path_);
      if (!st.step()) fail(path_, "meta table has no schema_version: not a detdl study store");
      version = st.text(0);
    }
    if (version == std::to_string(kStoreSchemaVersion)) return;  // read-only check; rolls back
    if (version != "1" && version != "2" && version != "3")
      fail(path_, "schema_version " + version + ", this build reads schema_version " +
                      std::to_string(kStoreSchemaVersion) + " (and upgrades 1, 2 and 3)");
    // Older stores are upgraded in place, one version at a time, in this one transaction:
    // nothing stored changes, columns and tables are only added.
    if (version == "1") {
      // 1 -> 2: the weights table.
      exec(db,
           "CREATE TABLE weights(run_key TEXT PRIMARY KEY REFERENCES runs(key) ON DELETE CASCADE, "
           "count INTEGER NOT NULL, data BLOB NOT NULL);",
           path_);
    }
    if (version == "1" || version == "2") upgrade_2_to_3(db);
    // 3 -> 4: the impl seed and the emulated families. Runs stored before the emulated
    // level existed emulate nothing: both stay NULL.
    exec(db,
         "ALTER TABLE runs ADD COLUMN seed_impl; ALTER TABLE runs ADD COLUMN emulated_ops TEXT;",
         path_);
    exec(db,
         "UPDATE meta SET value = '" + std::to_string(kStoreSchemaVersion) +
             "' WHERE key = 'schema_version';",
         path_);
    tx.commit();
    return;
  }
  if (!tables.empty())
    fail(path_, "an SQLite database without detdl's meta table: not a detdl study store");
  exec(db, kSchema, path_);
  exec(db, kClaimsSchema, path_);
  Statement st(db, "INSERT INTO meta(key, value) VALUES ('schema_version', ?)", path_);
  st.bind(1, std::to_string(kStoreSchemaVersion));
  st.run();
  tx.commit();
}

// 2 -> 3: runs.task and runs.diverged (filled from each stored record) and the claims.
void Store::upgrade_2_to_3(sqlite3* db) {
  exec(db, "ALTER TABLE runs ADD COLUMN task TEXT; ALTER TABLE runs ADD COLUMN diverged INTEGER;",
       path_);
  exec(db, kClaimsSchema, path_);
  {
    Statement read(db, "SELECT key, record_json FROM runs", path_);
    Statement write(db, "UPDATE runs SET task = ?, diverged = ? WHERE key = ?", path_);
    while (read.step()) {
      const std::string key = read.text(0);
      std::size_t size = 0;
      const unsigned char* p = read.blob(1, size);
      std::pair<std::string, int> filled{"", -1};
      try {
        filled = task_and_divergence(
            nlohmann::json::parse(unpack_text(p, size, "store " + path_ + " run " + key)));
      } catch (const std::exception&) {
        // A damaged record stays as it is (reading it fails with its own error); the
        // upgrade leaves its task and flag unknown rather than refusing the whole store.
      }
      const auto& [task, diverged] = filled;
      write.reset();
      if (task.empty())
        write.bind_null(1);
      else
        write.bind(1, task);
      if (diverged < 0)
        write.bind_null(2);
      else
        write.bind(2, static_cast<std::int64_t>(diverged));
      write.bind(3, key);
      write.run();
    }
  }
}

void Store::put_study(const std::string& name, const nlohmann::json& spec) {
  if (name.empty()) throw std::invalid_argument("put_study: study name is empty");
  Transaction tx(db_.get(), path_);
  Statement st(db_.get(),
               "INSERT INTO studies(name, spec_json, created_at) VALUES (?, ?, ?) "
               "ON CONFLICT(name) DO UPDATE SET spec_json = excluded.spec_json",
               path_);
  st.bind(1, name);
  st.bind(2, spec.dump());
  st.bind(3, nets::utc_now());
  st.run();
  tx.commit();
}

nlohmann::json Store::study_spec(const std::string& name) const {
  Statement st(db_.get(), "SELECT spec_json FROM studies WHERE name = ?", path_);
  st.bind(1, name);
  if (!st.step()) fail(path_, "no study '" + name + "'");
  return nlohmann::json::parse(st.text(0));
}

std::vector<std::string> Store::studies() const {
  Statement st(db_.get(), "SELECT name FROM studies ORDER BY name", path_);
  std::vector<std::string> out;
  while (st.step()) out.push_back(st.text(0));
  return out;
}

bool Store::has_run(const std::string& key) const {
  Statement st(db_.get(), "SELECT 1 FROM runs WHERE key = ?", path_);
  st.bind(1, key);
  return st.step();
}

std::set<std::string> Store::run_keys(const std::string& study) const {
  Statement st(db_.get(), "SELECT key FROM runs WHERE study = ?", path_);
  st.bind(1, study);
  std::set<std::string> out;
  while (st.step()) out.insert(st.text(0));
  return out;
}

bool Store::put_run(const std::string& key, const std::string& study, const std::string& setting,
                    std::int64_t repetition, const nlohmann::json& record,
                    const std::vector<float>& final_weights) {
  if (key.empty()) throw std::invalid_argument("put_run: run key is empty");
  sqlite3* db = db_.get();
  Transaction tx(db, path_);  // the write lock: nobody can insert `key` between check and insert
  if (has_run(key)) return false;
  {
    Statement st(db, "SELECT 1 FROM studies WHERE name = ?", path_);
    st.bind(1, study);
    if (!st.step()) fail(path_, "put_run " + key + ": no study '" + study + "' (put_study first)");
  }
  const RecordReader r{key};
  if (!record.is_object()) r.bad("(record)", "must be a JSON object");
  const auto& version = r.need(record, "record_version", "record_version");
  if (!version.is_number_integer() || version.get<std::int64_t>() != kRecordVersion)
    r.bad("record_version", "must be " + std::to_string(kRecordVersion));
  const auto& experiment = r.object(record, "experiment", "experiment");
  const auto& epochs = r.array(record, "epochs", "epochs");
  if (epochs.empty()) r.bad("epochs", "is empty");
  const std::string final_hash = r.string(record, "weight_hash", "weight_hash");
  const nlohmann::json* seeds = find_object(experiment, "seeds");
  const nlohmann::json* host = find_object(record, "host");
  const nlohmann::json* timings = find_object(record, "timings");
  const nlohmann::json* net = find_object(record, "net");

  std::vector<std::int32_t> final_predictions;
  bool has_final_predictions = false;
  if (const auto it = record.find("test_predictions"); it != record.end() && !it->is_null()) {
    final_predictions = r.predictions(*it, "test_predictions");
    has_final_predictions = true;
  }

  // The runs row comes first: the epoch rows reference it. An error in a later epoch
  // throws out of here and the transaction's destructor rolls everything back.
  {
    Statement st(db,
                 "INSERT INTO runs(key, study, setting, repetition, experiment_json, level, "
                 "fast_ops, seed_init, seed_order, seed_augment, seed_dropout, seed_label_noise, "
                 "seed_split, detdl_version, host, cpu, started_at, total_seconds, epochs, steps, "
                 "weight_hash, parameters, record_json, predictions, finished_at, task, diverged, "
                 "seed_impl, emulated_ops) VALUES "
                 "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                 path_);
    st.bind(1, key);
    st.bind(2, study);
    st.bind(3, setting);
    st.bind(4, repetition);
    st.bind(5, experiment.dump());
    const std::string level = r.optional_string(&experiment, "level", "experiment.level");
    if (level.empty())
      st.bind_null(6);
    else
      st.bind(6, level);
    if (const auto it = experiment.find("fast_ops"); it != experiment.end() && !it->is_null())
      st.bind(7, it->dump());
    else
      st.bind_null(7);
    for (std::size_t s = 0; s < kSeedNames.size(); ++s)
      bind_seed(st, 8 + static_cast<int>(s), seeds, kSeedNames[s], r);
    st.bind(14, r.optional_string(&record, "detdl_version", "detdl_version"));
    st.bind(15, r.optional_string(host, "name", "host.name"));
    st.bind(16, r.optional_string(host, "cpu", "host.cpu"));
    st.bind(17, r.optional_string(&record, "started_at", "started_at"));
    double total = kNaN;
    if (timings && timings->contains("total_seconds"))
      total = r.number((*timings)["total_seconds"], "timings.total_seconds");
    st.bind(18, total);
    st.bind(19, static_cast<std::int64_t>(epochs.size()));
    if (record.contains("steps") && !record["steps"].is_null())
      st.bind(20, r.integer(record["steps"], "steps"));
    else
      st.bind_null(20);
    st.bind(21, final_hash);
    if (net && net->contains("parameters") && !(*net)["parameters"].is_null())
      st.bind(22, r.integer((*net)["parameters"], "net.parameters"));
    else
      st.bind_null(22);
    st.bind(23, pack_text(record.dump()));
    if (has_final_predictions)
      st.bind(24, pack_predictions(final_predictions));
    else
      st.bind_null(24);
    st.bind(25, nets::utc_now());
    const auto [task, diverged] = task_and_divergence(record);
    if (task.empty())
      st.bind_null(26);
    else
      st.bind(26, task);
    if (diverged < 0)
      st.bind_null(27);
    else
      st.bind(27, static_cast<std::int64_t>(diverged));
    // The impl seed matters only where the run emulates (nets::Experiment::emulation_on):
    // the JSON form carries it only then, so other runs store NULL.
    bind_seed(st, 28, seeds, "impl", r);
    if (const auto it = experiment.find("emulated_ops"); it != experiment.end() && !it->is_null())
      st.bind(29, it->dump());
    else
      st.bind_null(29);
    st.run();
  }

  Statement epoch_st(db,
                     "INSERT INTO epochs(run_key, epoch, seconds, weight_hash, split, loss, "
                     "accuracy, cosine_similarity, hinge, kullback_leibler_divergence, "
                     "mean_absolute_error, mean_squared_error, mean_squared_logarithmic_error, "
                     "root_mean_squared_error, squared_hinge) "
                     "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                     path_);
  Statement class_st(db,
                     "INSERT INTO class_accuracy(run_key, epoch, class, accuracy) "
                     "VALUES (?,?,?,?)",
                     path_);
  Statement pred_st(db, "INSERT INTO epoch_predictions(run_key, epoch, predictions) VALUES (?,?,?)",
                    path_);
  for (std::size_t i = 0; i < epochs.size(); ++i) {
    const std::string at = "epochs[" + std::to_string(i) + "]";
    const auto& e = epochs[i];
    if (!e.is_object()) r.bad(at, "must be an object");
    const std::int64_t epoch = r.integer(r.need(e, "epoch", at + ".epoch"), at + ".epoch");
    if (epoch != static_cast<std::int64_t>(i) + 1)
      r.bad(at + ".epoch", "is " + std::to_string(epoch) + ", expected " + std::to_string(i + 1) +
                               " (epochs are 1-based and consecutive)");
    const double seconds = r.number(r.need(e, "seconds", at + ".seconds"), at + ".seconds");
    const std::string hash = r.string(e, "weight_hash", at + ".weight_hash");
    for (const auto split : kSplits) {
      const std::string name(split);
      const std::string field = at + "." + name;
      if (split == "validation" && (!e.contains(name) || e[name].is_null())) continue;
      const auto& metrics = r.object(e, name, field);
      epoch_st.reset();
      epoch_st.bind(1, key);
      epoch_st.bind(2, epoch);
      epoch_st.bind(3, seconds);
      epoch_st.bind(4, hash);
      epoch_st.bind(5, name);
      for (std::size_t m = 0; m < kMetricNames.size(); ++m) {
        const std::string metric(kMetricNames[m]);
        const auto it = metrics.find(metric);
        epoch_st.bind(6 + static_cast<int>(m),
                      it == metrics.end() ? kNaN : r.number(*it, field + "." + metric));
      }
      epoch_st.run();
    }
    if (const auto it = e.find("test_per_class_accuracy"); it != e.end() && !it->is_null()) {
      const std::string field = at + ".test_per_class_accuracy";
      if (!it->is_array()) r.bad(field, "must be an array");
      for (std::size_t c = 0; c < it->size(); ++c) {
        class_st.reset();
        class_st.bind(1, key);
        class_st.bind(2, epoch);
        class_st.bind(3, static_cast<std::int64_t>(c));
        class_st.bind(4, r.number((*it)[c], field + "[" + std::to_string(c) + "]"));
        class_st.run();
      }
    }
    if (const auto it = e.find("test_predictions"); it != e.end() && !it->is_null()) {
      pred_st.reset();
      pred_st.bind(1, key);
      pred_st.bind(2, epoch);
      pred_st.bind(3, pack_predictions(r.predictions(*it, at + ".test_predictions")));
      pred_st.run();
    }
  }
  if (!final_weights.empty()) {
    // float32 little-endian (the engine's own layout on every supported host), zlib.
    std::vector<unsigned char> head;
    put_u64(head, final_weights.size());
    Statement w(db, "INSERT INTO weights(run_key, count, data) VALUES (?,?,?)", path_);
    w.bind(1, key);
    w.bind(2, static_cast<std::int64_t>(final_weights.size()));
    w.bind(3, deflate_after(std::move(head),
                            reinterpret_cast<const unsigned char*>(final_weights.data()),
                            final_weights.size() * sizeof(float)));
    w.run();
  }
  {
    // The row is stored: whoever claimed it is done with it (variance/claims.h).
    Statement st(db, "DELETE FROM claims WHERE key = ?", path_);
    st.bind(1, key);
    st.run();
  }
  tx.commit();
  return true;
}

std::vector<StoredRun> Store::load_runs(const std::string& where_column,
                                        const std::string& value) const {
  sqlite3* db = db_.get();
  // One read transaction, so the three queries see the same snapshot even while other
  // processes commit runs.
  exec(db, "BEGIN", path_);
  struct EndRead {
    sqlite3* db;
    ~EndRead() { sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr); }
  } end_read{db};

  std::vector<StoredRun> out;
  std::unordered_map<std::string, std::size_t> index;
  {
    Statement st(db,
                 "SELECT key, study, setting, repetition, experiment_json, level, detdl_version, "
                 "host, cpu, started_at, finished_at, weight_hash, total_seconds, steps, "
                 "parameters, epochs, predictions, task, diverged FROM runs WHERE " +
                     where_column + " = ? ORDER BY setting, repetition, key",
                 path_);
    st.bind(1, value);
    while (st.step()) {
      StoredRun run;
      run.key = st.text(0);
      run.study = st.text(1);
      run.setting = st.text(2);
      run.repetition = st.int64(3);
      run.experiment = nlohmann::json::parse(st.text(4));
      run.level = st.text(5);
      run.detdl_version = st.text(6);
      run.host = st.text(7);
      run.cpu = st.text(8);
      run.started_at = st.text(9);
      run.finished_at = st.text(10);
      run.weight_hash = st.text(11);
      run.total_seconds = st.real(12);
      run.steps = st.int64(13, -1);
      run.parameters = st.int64(14, -1);
      // Bounded before the allocation: a corrupt count must not ask for terabytes (fuzz_store).
      const std::int64_t epochs = st.int64(15);
      if (epochs < 0 || epochs > 100'000)
        fail(path_, "run " + run.key + " has an implausible epoch count " + std::to_string(epochs));
      run.epochs.resize(static_cast<std::size_t>(epochs));
      for (std::size_t i = 0; i < run.epochs.size(); ++i) {
        run.epochs[i].epoch = static_cast<std::int64_t>(i) + 1;
        run.epochs[i].train = run.epochs[i].test = empty_metrics();
      }
      if (!st.is_null(16)) {
        std::size_t size = 0;
        const unsigned char* p = st.blob(16, size);
        run.predictions = unpack_predictions(p, size, "store " + path_ + " run " + run.key);
      }
      run.task = st.text(17);
      run.diverged = st.int64(18, 0) == 1;
      index[run.key] = out.size();
      out.push_back(std::move(run));
    }
  }
  if (out.empty()) return out;

  const std::string join = " JOIN runs r ON r.key = x.run_key WHERE r." + where_column + " = ?";
  {
    std::string sql = "SELECT x.run_key, x.epoch, x.seconds, x.weight_hash, x.split";
    for (auto m : kMetricNames) sql += ", x." + std::string(m);
    Statement st(db, sql + " FROM epochs x" + join, path_);
    st.bind(1, value);
    while (st.step()) {
      StoredRun& run = out[index.at(st.text(0))];
      const std::int64_t epoch = st.int64(1);
      if (epoch < 1 || epoch > static_cast<std::int64_t>(run.epochs.size()))
        fail(path_, "run " + run.key + " has an epoch row " + std::to_string(epoch) +
                        " outside 1.." + std::to_string(run.epochs.size()));
      EpochRow& row = run.epochs[static_cast<std::size_t>(epoch - 1)];
      row.seconds = st.real(2);
      row.weight_hash = st.text(3);
      const std::string split = st.text(4);
      MetricMap& metrics = split == "train"  ? row.train
                           : split == "test" ? row.test
                                             : row.validation;
      for (std::size_t m = 0; m < kMetricNames.size(); ++m)
        metrics[std::string(kMetricNames[m])] = st.real(5 + static_cast<int>(m));
    }
  }
  {
    Statement st(db, "SELECT x.run_key, x.epoch, x.class, x.accuracy FROM class_accuracy x" + join,
                 path_);
    st.bind(1, value);
    while (st.step()) {
      StoredRun& run = out[index.at(st.text(0))];
      const std::int64_t epoch = st.int64(1);
      const std::int64_t cls = st.int64(2);
      if (epoch < 1 || epoch > static_cast<std::int64_t>(run.epochs.size()) || cls < 0 ||
          cls > 1'000'000)
        fail(path_, "run " + run.key + " has a bad class_accuracy row");
      auto& acc = run.epochs[static_cast<std::size_t>(epoch - 1)].test_class_accuracy;
      if (acc.size() <= static_cast<std::size_t>(cls))
        acc.resize(static_cast<std::size_t>(cls) + 1, kNaN);
      acc[static_cast<std::size_t>(cls)] = st.real(3);
    }
  }
  // A train or test loss that is not finite at some epoch is a divergence whatever the
  // record says (records from before the "diverged" flag have none). Both splits are in
  // every stored epoch (put_run requires them).
  for (auto& run : out)
    for (const auto& e : run.epochs)
      run.diverged =
          run.diverged || !std::isfinite(e.train.at("loss")) || !std::isfinite(e.test.at("loss"));
  return out;
}

std::vector<StoredRun> Store::runs(const std::string& study) const {
  return load_runs("study", study);
}

StoredRun Store::run(const std::string& key) const {
  auto found = load_runs("key", key);
  if (found.empty()) fail(path_, "no run with key " + key);
  return std::move(found.front());
}

std::vector<std::int32_t> Store::predictions_at(const std::string& key, std::int64_t epoch) const {
  sqlite3* db = db_.get();
  const std::string where = "store " + path_ + " run " + key + " epoch " + std::to_string(epoch);
  {
    Statement st(db, "SELECT predictions FROM epoch_predictions WHERE run_key = ? AND epoch = ?",
                 path_);
    st.bind(1, key);
    st.bind(2, epoch);
    if (st.step()) {
      std::size_t size = 0;
      const unsigned char* p = st.blob(0, size);
      return unpack_predictions(p, size, where);
    }
  }
  Statement st(db, "SELECT epochs, predictions FROM runs WHERE key = ?", path_);
  st.bind(1, key);
  if (!st.step()) fail(path_, "no run with key " + key);
  if (st.int64(0) == epoch && !st.is_null(1)) {
    std::size_t size = 0;
    const unsigned char* p = st.blob(1, size);
    return unpack_predictions(p, size, where);
  }
  fail(path_, "run " + key + " has no test predictions stored for epoch " + std::to_string(epoch));
}

nlohmann::json Store::record(const std::string& key) const {
  Statement st(db_.get(), "SELECT record_json FROM runs WHERE key = ?", path_);
  st.bind(1, key);
  if (!st.step()) fail(path_, "no run with key " + key);
  std::size_t size = 0;
  const unsigned char* p = st.blob(0, size);
  return nlohmann::json::parse(unpack_text(p, size, "store " + path_ + " run " + key));
}

std::vector<float> Store::weights(const std::string& key) const {
  Statement st(db_.get(), "SELECT count, data FROM weights WHERE run_key = ?", path_);
  st.bind(1, key);
  if (!st.step()) return {};
  const std::string where = "store " + path_ + " run " + key + " weights";
  std::size_t size = 0;
  const unsigned char* p = st.blob(1, size);
  if (size < 8) throw std::runtime_error(where + ": blob shorter than its header");
  const std::uint64_t n = get_u64(p);
  if (n != static_cast<std::uint64_t>(st.int64(0)) || n > (std::uint64_t{1} << 34))
    throw std::runtime_error(where + ": count does not match");
  const auto bytes =
      inflate_exact(p + 8, size - 8, static_cast<std::size_t>(n) * sizeof(float), where);
  std::vector<float> out(static_cast<std::size_t>(n));
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

}  // namespace detdl::variance
