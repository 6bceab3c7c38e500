// The study store: one SQLite file that every worker process of a study writes its runs
// into and that the analysis reads back. One run = one transaction (all of its rows or
// none), keyed by the run key (variance/run_key.h), so a killed worker leaves no half run
// and a restarted study skips the keys it already has.
//
// Concurrency: WAL journal and a 60 s busy timeout, because several processes write the
// same file; each write takes the write lock up front (BEGIN IMMEDIATE), so a check-then-
// insert (put_run) cannot race with another process. A Store object is for one thread.
//
// Tables (schema_version 3, kept in meta): studies, runs, epochs (one row per epoch and
// split), class_accuracy (per-class test accuracy per epoch), epoch_predictions (per-epoch
// test predictions, only when the record carries them), weights, claims (which process is
// running which row: variance/claims.h). The whole record is kept too, zlib-compressed, so
// nothing the record had is lost to the columns. Stores of schema 1 and 2 are upgraded in
// place when opened.
#pragma once
#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "variance/claims.h"

struct sqlite3;

namespace detdl::variance {

// 2: the weights table; 3: claims, runs.task/diverged; 4: runs.seed_impl/emulated_ops.
inline constexpr int kStoreSchemaVersion = 4;
inline constexpr int kRecordVersion = 1;

// The ten per-epoch metrics every split records (BUTTER's list), in column order.
inline constexpr std::array<std::string_view, 10> kMetricNames = {"loss",
                                                                  "accuracy",
                                                                  "cosine_similarity",
                                                                  "hinge",
                                                                  "kullback_leibler_divergence",
                                                                  "mean_absolute_error",
                                                                  "mean_squared_error",
                                                                  "mean_squared_logarithmic_error",
                                                                  "root_mean_squared_error",
                                                                  "squared_hinge"};

// metric name -> value; all ten names present, NaN where the record had null or nothing.
using MetricMap = std::map<std::string, double>;

struct EpochRow {
  std::int64_t epoch = 0;  // 1-based
  double seconds = 0;      // NaN when the record had null
  // The epoch's training steps and its validation pass (the record's train_seconds and
  // validation_seconds; NaN for records from before they were written). Filled by
  // analyze() from the records; select_epoch() times convergence with them when present.
  double train_seconds = std::numeric_limits<double>::quiet_NaN();
  double validation_seconds = std::numeric_limits<double>::quiet_NaN();
  std::string weight_hash;
  MetricMap train, test;
  MetricMap validation;                     // empty when the run had no validation set
  std::vector<double> test_class_accuracy;  // per class, NaN for a class without rows;
                                            // empty for a regression task
};

struct StoredRun {
  std::string key, study, setting;
  std::int64_t repetition = 0;
  nlohmann::json experiment;  // the run's full config
  std::string level;          // "portable" | "repeatable" | "fast" ("" when absent)
  std::string detdl_version, host, cpu, started_at, finished_at;
  std::string weight_hash;       // final
  double total_seconds = 0;      // NaN when the record had none
  std::int64_t steps = -1;       // -1 when the record had none
  std::int64_t parameters = -1;  // -1 when the record had none
  std::vector<EpochRow> epochs;  // epochs[i].epoch == i + 1
  // Test rows per class (the record's test_class_counts; empty for older records and
  // regression). Filled by analyze() from the record.
  std::vector<std::int64_t> test_class_counts;
  std::vector<std::int32_t> predictions;  // final test predictions (empty when absent)
  std::string task;                       // the record's data.task: "regression", "binary",
                                          // "multiclass" ("" when the record had none)
  // The record's "diverged" flag, or a train or test loss that is not finite at some epoch.
  bool diverged = false;

  bool is_regression() const { return task == "regression"; }

  // True when every epoch has validation metrics.
  bool has_validation() const;
};

class Store {
 public:
  // Opens or creates the store at `path`. Throws std::runtime_error naming the path when
  // the file is not an SQLite database, is another program's database, or has another
  // schema_version.
  explicit Store(const std::string& path);
  ~Store();
  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const { return path_; }

  // Inserts the study or replaces its spec (created_at is kept from the first insert).
  void put_study(const std::string& name, const nlohmann::json& spec);
  // The stored spec; throws std::runtime_error when the study is not in the store.
  nlohmann::json study_spec(const std::string& name) const;
  std::vector<std::string> studies() const;  // sorted

  bool has_run(const std::string& key) const;
  std::set<std::string> run_keys(const std::string& study) const;

  // Stores one run (record layout: see docs of the run record; the study must have been
  // put first). One transaction: on any error (a missing or mistyped field throws
  // std::invalid_argument naming it) nothing of the run is stored. Returns false and
  // changes nothing when the key is already stored.
  // final_weights (optional): the run's parameters, concatenated in model order, stored in
  // the same transaction (weight-space distances between runs).
  bool put_run(const std::string& key, const std::string& study, const std::string& setting,
               std::int64_t repetition, const nlohmann::json& record,
               const std::vector<float>& final_weights = {});
  // The stored final weights; empty when the run stored none.
  std::vector<float> weights(const std::string& key) const;

  // Every run of the study, ordered by (setting, repetition, key).
  std::vector<StoredRun> runs(const std::string& study) const;
  // One run; throws std::runtime_error when the key is not stored.
  StoredRun run(const std::string& key) const;

  // Test predictions at `epoch` (1-based): the per-epoch predictions when the record had
  // them, else the final predictions when `epoch` is the last one. Throws
  // std::runtime_error when neither is stored.
  std::vector<std::int32_t> predictions_at(const std::string& key, std::int64_t epoch) const;

  // The whole record as put (decompressed). Throws std::runtime_error for an unknown key.
  nlohmann::json record(const std::string& key) const;

  // ---- claims: several runners feeding one store (variance/claims.h) ----
  // In one write transaction: `claimed` when the row is neither stored nor claimed by a
  // live process, and is now claimed by `by` (a stale claim is taken over); `stored` when
  // its run is stored; `held` when a live claimant other than `by` has it. A claim of
  // another machine is live while its heartbeat is younger than `lease_seconds`.
  ClaimResult claim_run(const std::string& key, const std::string& study, const Claimant& by,
                        std::int64_t lease_seconds);
  // Drops `by`'s claim on `key` (a failed run: another runner may try it). put_run drops
  // the claim of the row it stores, whoever holds it, in its own transaction.
  void release_claim(const std::string& key, const Claimant& by);
  // Marks every claim of `by` as alive now (what other machines judge it by).
  void heartbeat(const Claimant& by);
  // The study's claims, by key.
  std::vector<Claim> claims(const std::string& study) const;
  // Moves the write-ahead log into the database file and empties it (closing a connection
  // does not: see the constructor), so the .sqlite file alone holds every run. A runner
  // calls it when its study ends.
  void checkpoint();

  // ---- merging stores (`detdl study merge`; variance/store_merge.cpp) ----
  struct MergeResult {
    std::int64_t added = 0;      // runs copied here
    std::int64_t identical = 0;  // runs already here with the same weight hash
  };
  // Copies every study and run of the store at `other` that this one lacks, each run with
  // its epochs, class accuracies, final weights and per-epoch predictions, in one
  // transaction. A run already here with the same key and weight hash is left as it is; one
  // with another weight hash (or a study of the same name with another spec) throws
  // std::runtime_error naming both stores and the row, and nothing is copied. Claims are
  // not copied. `other` is opened as a store first (an older schema is brought up to date).
  MergeResult merge_from(const std::string& other);

 private:
  struct Closer {
    void operator()(sqlite3* db) const;
  };
  void init_schema();
  void upgrade_2_to_3(sqlite3* db);  // inside init_schema's transaction
  std::vector<StoredRun> load_runs(const std::string& where_column, const std::string& value) const;

  std::string path_;
  std::unique_ptr<sqlite3, Closer> db_;
};

// Compact encoding of class predictions: byte 0 = width in bytes (1, 2 or 4: the smallest
// signed width holding every value), bytes 1..8 = count (uint64 little-endian), then the
// values as little-endian integers of that width, zlib-compressed.
std::vector<unsigned char> pack_predictions(const std::vector<std::int32_t>& predictions);
// `where` names the blob in error messages.
std::vector<std::int32_t> unpack_predictions(const unsigned char* data, std::size_t size,
                                             const std::string& where);

}  // namespace detdl::variance
