// SQLite helpers of the study store (variance/store.cpp, variance/store_claims.cpp): a
// prepared statement, a write transaction and errors that name the store's path. Internal:
// only the store's own files include this.
#pragma once
#include <sqlite3.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace detdl::variance::store_sql {

[[noreturn]] inline void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("store " + path + ": " + what);
}

// ---- sqlite wrappers --------------------------------------------------------------------

class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql, const std::string& path) : db_(db), path_(path) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK)
      fail(path_, std::string(sqlite3_errmsg(db)) + " (preparing: " + sql + ")");
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  void bind_null(int i) { check(sqlite3_bind_null(stmt_, i)); }
  void bind(int i, std::int64_t v) { check(sqlite3_bind_int64(stmt_, i, v)); }
  void bind(int i, double v) {
    if (std::isnan(v)) return bind_null(i);  // NULL, not SQLite's own NaN handling
    check(sqlite3_bind_double(stmt_, i, v));
  }
  void bind(int i, const std::string& v) {
    check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  void bind(int i, const std::vector<unsigned char>& v) {
    check(sqlite3_bind_blob64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT));
  }
  // true while a row is available
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(path_, sqlite3_errmsg(db_));
  }
  void run() {
    while (step()) {
    }
  }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  bool is_null(int c) const { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }
  std::int64_t int64(int c, std::int64_t if_null = 0) const {
    return is_null(c) ? if_null : sqlite3_column_int64(stmt_, c);
  }
  double real(int c) const {
    return is_null(c) ? std::numeric_limits<double>::quiet_NaN() : sqlite3_column_double(stmt_, c);
  }
  std::string text(int c) const {
    const auto* p = sqlite3_column_text(stmt_, c);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c)))
             : std::string();
  }
  const unsigned char* blob(int c, std::size_t& size) const {
    const void* p = sqlite3_column_blob(stmt_, c);
    size = static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c));
    return static_cast<const unsigned char*>(p);
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) fail(path_, std::string("bind: ") + sqlite3_errmsg(db_));
  }
  sqlite3* db_;
  std::string path_;
  sqlite3_stmt* stmt_ = nullptr;
};

inline void exec(sqlite3* db, const std::string& sql, const std::string& path) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string msg = err ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    fail(path, msg);
  }
}

// BEGIN IMMEDIATE takes the write lock now (waiting up to the busy timeout), so nothing
// read inside the transaction can change before it commits. Rolls back unless committed.
class Transaction {
 public:
  Transaction(sqlite3* db, const std::string& path) : db_(db), path_(path) {
    exec(db_, "BEGIN IMMEDIATE", path_);
  }
  ~Transaction() {
    if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    exec(db_, "COMMIT", path_);
    done_ = true;
  }

 private:
  sqlite3* db_;
  std::string path_;
  bool done_ = false;
};

}  // namespace detdl::variance::store_sql
