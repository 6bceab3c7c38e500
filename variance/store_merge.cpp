// Store::merge_from (variance/store.h): one store's studies and runs copied into another, for
// `detdl study merge` (shard stores of a Slurm array, a study run on several machines).
#include <sqlite3.h>

#include <string>
#include <vector>

#include "variance/store.h"
#include "variance/store_sql.h"

namespace detdl::variance {

using store_sql::exec;
using store_sql::fail;
using store_sql::Statement;
using store_sql::Transaction;

namespace {

// The column names of `table` in schema `schema` ("main" or "src"), in their order there.
std::vector<std::string> columns(sqlite3* db, const std::string& schema, const std::string& table,
                                 const std::string& path) {
  std::vector<std::string> out;
  Statement st(db, "SELECT name FROM pragma_table_info(?, ?)", path);
  st.bind(1, table);
  st.bind(2, schema);
  while (st.step()) out.push_back(st.text(0));
  return out;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "\"" : ", \"") + n + "\"";
  return out;
}

// Detaches `src` however the merge ends.
struct Attached {
  sqlite3* db;
  ~Attached() { sqlite3_exec(db, "DETACH DATABASE src", nullptr, nullptr, nullptr); }
};

}  // namespace

Store::MergeResult Store::merge_from(const std::string& other) {
  // Opening it through Store checks that it is a detdl store and brings an older schema up
  // to this one, so both have the same tables and columns.
  { Store check(other); }
  sqlite3* db = db_.get();
  {
    Statement attach(db, "ATTACH DATABASE ? AS src", path_);
    attach.bind(1, other);
    attach.run();
  }
  Attached detach_later{db};
  MergeResult result;
  Transaction tx(db, path_);

  // Studies: a name in both must have the same spec (the same study file).
  {
    Statement st(db,
                 "SELECT s.name, s.spec_json, m.spec_json FROM src.studies s "
                 "JOIN main.studies m ON m.name = s.name WHERE m.spec_json != s.spec_json",
                 path_);
    if (st.step())
      fail(path_, "study '" + st.text(0) + "' has another spec in " + other +
                      " than here: not shards of one study (its spec here: " + st.text(2) +
                      "; in " + other + ": " + st.text(1) + ")");
    exec(db,
         "INSERT INTO main.studies(name, spec_json, created_at) SELECT name, spec_json, "
         "created_at FROM src.studies WHERE name NOT IN (SELECT name FROM main.studies)",
         path_);
  }
  // Runs: a key in both must carry the same final weights.
  {
    Statement st(db,
                 "SELECT s.key, s.setting, s.repetition, m.weight_hash, s.weight_hash "
                 "FROM src.runs s JOIN main.runs m ON m.key = s.key "
                 "WHERE m.weight_hash != s.weight_hash",
                 path_);
    if (st.step())
      fail(path_, "run " + st.text(0) + " (setting '" + st.text(1) + "', repetition " +
                      std::to_string(st.int64(2)) + ") has weight hash " + st.text(3) +
                      " here and " + st.text(4) + " in " + other +
                      ": conflicting rows, nothing merged");
    Statement same(db, "SELECT count(*) FROM src.runs WHERE key IN (SELECT key FROM main.runs)",
                   path_);
    same.step();
    result.identical = same.int64(0);
  }
  // The runs this store lacks, then their rows in the tables that refer to runs.
  exec(db, "CREATE TEMP TABLE merge_keys(key TEXT PRIMARY KEY)", path_);
  exec(db,
       "INSERT INTO temp.merge_keys SELECT key FROM src.runs "
       "WHERE key NOT IN (SELECT key FROM main.runs)",
       path_);
  {
    Statement n(db, "SELECT count(*) FROM temp.merge_keys", path_);
    n.step();
    result.added = n.int64(0);
  }
  const std::vector<std::pair<std::string, std::string>> tables = {
      {"runs", "key"},
      {"epochs", "run_key"},
      {"class_accuracy", "run_key"},
      {"weights", "run_key"},
      {"epoch_predictions", "run_key"}};
  for (const auto& [table, key] : tables) {
    const std::string cols = joined(columns(db, "main", table, path_));
    exec(db,
         "INSERT INTO main." + table + "(" + cols + ") SELECT " + cols + " FROM src." + table +
             " WHERE " + key + " IN (SELECT key FROM temp.merge_keys)",
         path_);
  }
  exec(db, "DROP TABLE temp.merge_keys", path_);
  tx.commit();
  return result;
}

}  // namespace detdl::variance
