// The study store (variance/store.h): round trip of hand-made run records, compact
// predictions, all-or-nothing put_run, duplicate keys, two connections and two processes
// on one file, and the errors for a file that is not a detdl store.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <limits>

#include "variance/store.h"

using namespace detdl::variance;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path d = fs::temp_directory_path() /
               ("detdl_store_" + std::to_string(::getpid()) + "_" + info->name());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

json metric_object(double base) {
  json m = json::object();
  int i = 0;
  for (auto name : kMetricNames) m[std::string(name)] = base + 0.01 * i++;
  return m;
}

std::vector<int> predictions(std::size_t n, int classes, int shift) {
  std::vector<int> p(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<int>((i * 7 + shift) % classes);
  return p;
}

// A run record of the documented shape: `epochs` epochs, K classes, N test rows.
json make_record(int epochs, int classes, std::size_t test_rows, bool validation, int variant = 0) {
  json r;
  r["record_version"] = 1;
  r["detdl_version"] = "0.1.0";
  r["experiment"] = {{"net", "lenet1"},
                     {"data", "mnist"},
                     {"epochs", epochs},
                     {"batch_size", 128},
                     {"level", "portable"},
                     {"fast_ops", json::array({"conv2d", "matmul"})},
                     {"threads", 2},
                     {"variant", variant},
                     {"seeds",
                      {{"init", 1},
                       {"order", 2},
                       {"augment", nullptr},
                       {"dropout", 18446744073709551615ull},
                       {"label_noise", 5},
                       {"split", 6}}}};
  r["net"] = {{"name", "lenet1"}, {"description", "LeNet-1"}, {"parameters", 7206}};
  r["data"] = {{"name", "mnist"},
               {"source", "idx"},
               {"task", "classification"},
               {"outputs", classes},
               {"train_rows", 100},
               {"test_rows", test_rows},
               {"validation_rows", validation ? 50 : 0}};
  r["loss"] = "softmax_ce";
  r["host"] = {{"name", "box"}, {"cpu", "Xeon"}, {"threads", 2}};
  r["build"] = {{"compiler", "gcc"}, {"flags", "-O2"}};
  r["started_at"] = "2026-11-23T16:00:00Z";
  json seconds = json::array();
  r["epochs"] = json::array();
  for (int e = 1; e <= epochs; ++e) {
    json ep;
    ep["epoch"] = e;
    ep["seconds"] = 1.5 * e + variant;
    ep["train_seconds"] = 1.25 * e;
    ep["weight_hash"] = "00000000000000" + std::to_string(10 + e + variant).substr(0, 2);
    ep["train"] = metric_object(1.0 / e);
    ep["test"] = metric_object(2.0 / e + variant);
    if (validation) ep["validation"] = metric_object(3.0 / e);
    json cls = json::array();
    for (int c = 0; c < classes; ++c) cls.push_back(0.5 + 0.001 * c + 0.01 * e);
    ep["test_per_class_accuracy"] = cls;
    ep["test_predictions"] = predictions(test_rows, classes, e + variant);
    seconds.push_back(ep["seconds"]);
    r["epochs"].push_back(ep);
  }
  r["timings"] = {{"total_seconds", 12.5 + variant}, {"epoch_seconds", seconds}};
  r["steps"] = 940;
  r["stopped_early"] = false;
  r["weight_hash"] = "abcdef012345678" + std::to_string(variant % 10);
  r["test_predictions"] = predictions(test_rows, classes, epochs + variant);
  return r;
}

std::int64_t count_rows(const fs::path& db_path, const std::string& table) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  const std::string sql = "SELECT count(*) FROM " + table;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK);
  EXPECT_EQ(sqlite3_step(st), SQLITE_ROW);
  const std::int64_t n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

void exec_sql(const fs::path& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
}

void expect_metrics(const MetricMap& got, const json& want) {
  ASSERT_EQ(got.size(), kMetricNames.size());
  for (auto name : kMetricNames) {
    const json& w = want[std::string(name)];
    const double g = got.at(std::string(name));
    if (w.is_null())
      EXPECT_TRUE(std::isnan(g)) << name;
    else
      EXPECT_EQ(g, w.get<double>()) << name;
  }
}

template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

}  // namespace

TEST(Store, RoundTripGivesBackEveryValue) {
  const fs::path dir = temp_dir();
  Store store((dir / "s.db").string());
  store.put_study("st", {{"name", "st"}, {"repetitions", 3}});
  json rec = make_record(3, 10, 2500, true);
  rec["epochs"][1]["test"]["hinge"] = nullptr;               // NaN metric
  rec["epochs"][2]["test_per_class_accuracy"][4] = nullptr;  // class without rows
  ASSERT_TRUE(store.put_run("k1", "st", "fixed", 7, rec));
  EXPECT_TRUE(store.has_run("k1"));
  EXPECT_FALSE(store.has_run("k2"));

  const auto runs = store.runs("st");
  ASSERT_EQ(runs.size(), 1u);
  const StoredRun& r = runs[0];
  EXPECT_EQ(r.key, "k1");
  EXPECT_EQ(r.study, "st");
  EXPECT_EQ(r.setting, "fixed");
  EXPECT_EQ(r.repetition, 7);
  EXPECT_EQ(r.experiment, rec["experiment"]);
  EXPECT_EQ(r.level, "portable");
  EXPECT_EQ(r.detdl_version, "0.1.0");
  EXPECT_EQ(r.host, "box");
  EXPECT_EQ(r.cpu, "Xeon");
  EXPECT_EQ(r.started_at, "2026-11-23T16:00:00Z");
  EXPECT_EQ(r.finished_at.size(), 20u);  // YYYY-MM-DDTHH:MM:SSZ
  EXPECT_EQ(r.weight_hash, rec["weight_hash"].get<std::string>());
  EXPECT_EQ(r.total_seconds, 12.5);
  EXPECT_EQ(r.steps, 940);
  EXPECT_EQ(r.parameters, 7206);
  EXPECT_TRUE(r.has_validation());
  ASSERT_EQ(r.epochs.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    const json& e = rec["epochs"][i];
    const EpochRow& got = r.epochs[i];
    EXPECT_EQ(got.epoch, static_cast<std::int64_t>(i) + 1);
    EXPECT_EQ(got.seconds, e["seconds"].get<double>());
    EXPECT_EQ(got.weight_hash, e["weight_hash"].get<std::string>());
    expect_metrics(got.train, e["train"]);
    expect_metrics(got.test, e["test"]);
    expect_metrics(got.validation, e["validation"]);
    ASSERT_EQ(got.test_class_accuracy.size(), 10u);
    for (std::size_t c = 0; c < 10; ++c) {
      const json& w = e["test_per_class_accuracy"][c];
      if (w.is_null())
        EXPECT_TRUE(std::isnan(got.test_class_accuracy[c]));
      else
        EXPECT_EQ(got.test_class_accuracy[c], w.get<double>());
    }
  }
  EXPECT_TRUE(std::isnan(r.epochs[1].test.at("hinge")));
  EXPECT_EQ(r.predictions, rec["test_predictions"].get<std::vector<std::int32_t>>());
  EXPECT_EQ(store.predictions_at("k1", 2),
            rec["epochs"][1]["test_predictions"].get<std::vector<std::int32_t>>());
  EXPECT_EQ(store.record("k1"), rec);
  EXPECT_EQ(store.study_spec("st")["repetitions"], 3);
  EXPECT_EQ(store.run("k1").weight_hash, r.weight_hash);

  // the seed columns: an integer, NULL for null, the text of a seed beyond int64
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "s.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "SELECT seed_init, seed_augment, seed_dropout, fast_ops, epochs "
                               "FROM runs WHERE key = 'k1'",
                               -1, &st, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(st, 0), 1);
  EXPECT_EQ(sqlite3_column_type(st, 1), SQLITE_NULL);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 2))),
            "18446744073709551615");
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 3))),
            "[\"conv2d\",\"matmul\"]");
  EXPECT_EQ(sqlite3_column_int64(st, 4), 3);
  sqlite3_finalize(st);
  // the journal is WAL (several worker processes write one file)
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
  EXPECT_EQ(count_rows(dir / "s.db", "epochs"), 9);  // 3 epochs x train/test/validation
  EXPECT_EQ(count_rows(dir / "s.db", "class_accuracy"), 30);
  EXPECT_EQ(count_rows(dir / "s.db", "epoch_predictions"), 3);
  fs::remove_all(dir);
}

TEST(Store, RunsAreOrderedBySettingThenRepetition) {
  const fs::path dir = temp_dir();
  Store store((dir / "s.db").string());
  store.put_study("st", json::object());
  store.put_study("other", json::object());
  ASSERT_TRUE(store.put_run("k_b0", "st", "b", 0, make_record(1, 3, 5, false, 1)));
  ASSERT_TRUE(store.put_run("k_a10", "st", "a", 10, make_record(1, 3, 5, false, 2)));
  ASSERT_TRUE(store.put_run("k_a2", "st", "a", 2, make_record(1, 3, 5, false, 3)));
  ASSERT_TRUE(store.put_run("k_x", "other", "a", 0, make_record(1, 3, 5, false, 4)));
  const auto runs = store.runs("st");
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].key, "k_a2");
  EXPECT_EQ(runs[1].key, "k_a10");
  EXPECT_EQ(runs[2].key, "k_b0");
  EXPECT_FALSE(runs[0].has_validation());
  EXPECT_TRUE(runs[0].epochs[0].validation.empty());
  EXPECT_EQ(store.run_keys("st"), (std::set<std::string>{"k_a10", "k_a2", "k_b0"}));
  EXPECT_EQ(store.run_keys("other"), (std::set<std::string>{"k_x"}));
  EXPECT_EQ(store.studies(), (std::vector<std::string>{"other", "st"}));
  fs::remove_all(dir);
}

TEST(Store, PredictionsAreCompactAndExact) {
  for (const int classes : {10, 100}) {
    const auto p = predictions(2500, classes, 3);
    const std::vector<std::int32_t> v(p.begin(), p.end());
    const auto blob = pack_predictions(v);
    EXPECT_EQ(blob[0], 1) << classes;          // int8 is enough for 100 classes
    EXPECT_LT(blob.size(), 2500u) << classes;  // under one byte a row
    EXPECT_EQ(unpack_predictions(blob.data(), blob.size(), "t"), v);
  }
  const std::vector<std::int32_t> wide = {0, 999, 128, -1, 500};
  EXPECT_EQ(pack_predictions(wide)[0], 2);
  EXPECT_EQ(unpack_predictions(pack_predictions(wide).data(), pack_predictions(wide).size(), "t"),
            wide);
  const std::vector<std::int32_t> extreme = {INT32_MIN, INT32_MAX, -128, 127, 0};
  EXPECT_EQ(pack_predictions(extreme)[0], 4);
  auto eb = pack_predictions(extreme);
  EXPECT_EQ(unpack_predictions(eb.data(), eb.size(), "t"), extreme);
  const std::vector<std::int32_t> negative = {-128, 127, -1};
  auto nb = pack_predictions(negative);
  EXPECT_EQ(nb[0], 1);
  EXPECT_EQ(unpack_predictions(nb.data(), nb.size(), "t"), negative);
  EXPECT_TRUE(
      unpack_predictions(pack_predictions({}).data(), pack_predictions({}).size(), "t").empty());
  // corrupt blobs name where they came from
  auto bad = pack_predictions(wide);
  bad.back() ^= 0xff;
  bad[bad.size() / 2] ^= 0xff;
  EXPECT_NE(error_of([&] { unpack_predictions(bad.data(), bad.size(), "blob X"); }).find("blob X"),
            std::string::npos);
  bad[0] = 3;
  EXPECT_THROW(unpack_predictions(bad.data(), bad.size(), "t"), std::runtime_error);

  // through the store, 100 classes, compact in the file too
  const fs::path dir = temp_dir();
  Store store((dir / "s.db").string());
  store.put_study("st", json::object());
  const json rec = make_record(2, 100, 2500, false);
  ASSERT_TRUE(store.put_run("k", "st", "s", 0, rec));
  EXPECT_EQ(store.runs("st")[0].predictions,
            rec["test_predictions"].get<std::vector<std::int32_t>>());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "s.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT length(predictions) FROM runs", -1, &st, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_LT(sqlite3_column_int64(st, 0), 2500);
  sqlite3_finalize(st);
  sqlite3_close(db);
  fs::remove_all(dir);
}

TEST(Store, PredictionsAtFallsBackToTheFinalEpochOnly) {
  const fs::path dir = temp_dir();
  Store store((dir / "s.db").string());
  store.put_study("st", json::object());
  json rec = make_record(3, 10, 20, false);
  for (auto& e : rec["epochs"]) e.erase("test_predictions");
  ASSERT_TRUE(store.put_run("k", "st", "s", 0, rec));
  EXPECT_EQ(store.predictions_at("k", 3), rec["test_predictions"].get<std::vector<std::int32_t>>());
  const std::string err = error_of([&] { store.predictions_at("k", 2); });
  EXPECT_NE(err.find("epoch 2"), std::string::npos) << err;
  EXPECT_THROW(store.predictions_at("nope", 1), std::runtime_error);
  EXPECT_THROW(store.record("nope"), std::runtime_error);
  EXPECT_THROW(store.run("nope"), std::runtime_error);
  fs::remove_all(dir);
}

TEST(Store, PutRunIsAllOrNothing) {
  const fs::path dir = temp_dir();
  const fs::path db = dir / "s.db";
  Store store(db.string());
  store.put_study("st", json::object());
  // epoch 3 lacks its test metrics: the run row and epochs 1-2 were already inserted when
  // the error is found, and must all be rolled back
  json rec = make_record(4, 10, 50, true);
  rec["epochs"][2].erase("test");
  const std::string err = error_of([&] { store.put_run("k", "st", "s", 0, rec); });
  EXPECT_NE(err.find("epochs[2].test"), std::string::npos) << err;
  EXPECT_THROW(store.put_run("k", "st", "s", 0, rec), std::invalid_argument);
  EXPECT_FALSE(store.has_run("k"));
  for (const char* table : {"runs", "epochs", "class_accuracy", "epoch_predictions"})
    EXPECT_EQ(count_rows(db, table), 0) << table;

  // other malformed records
  json no_hash = make_record(2, 10, 50, false);
  no_hash.erase("weight_hash");
  EXPECT_NE(error_of([&] { store.put_run("k", "st", "s", 0, no_hash); }).find("weight_hash"),
            std::string::npos);
  json bad_pred = make_record(2, 10, 50, false);
  bad_pred["epochs"][1]["test_predictions"][3] = "cat";
  EXPECT_NE(error_of([&] {
              store.put_run("k", "st", "s", 0, bad_pred);
            }).find("epochs[1].test_predictions[3]"),
            std::string::npos);
  json bad_metric = make_record(2, 10, 50, false);
  bad_metric["epochs"][1]["train"]["loss"] = "high";
  EXPECT_THROW(store.put_run("k", "st", "s", 0, bad_metric), std::invalid_argument);
  json bad_epoch = make_record(2, 10, 50, false);
  bad_epoch["epochs"][1]["epoch"] = 5;
  EXPECT_THROW(store.put_run("k", "st", "s", 0, bad_epoch), std::invalid_argument);
  json bad_version = make_record(2, 10, 50, false);
  bad_version["record_version"] = 2;
  EXPECT_THROW(store.put_run("k", "st", "s", 0, bad_version), std::invalid_argument);
  for (const char* table : {"runs", "epochs", "class_accuracy", "epoch_predictions"})
    EXPECT_EQ(count_rows(db, table), 0) << table;
  // a study must exist first
  EXPECT_NE(error_of([&] {
              store.put_run("k", "nostudy", "s", 0, make_record(1, 2, 3, false));
            }).find("nostudy"),
            std::string::npos);

  // the same key with a good record now goes in
  EXPECT_TRUE(store.put_run("k", "st", "s", 0, make_record(4, 10, 50, true)));
  EXPECT_EQ(count_rows(db, "epochs"), 12);
  fs::remove_all(dir);
}

TEST(Store, DuplicateKeyReturnsFalseAndChangesNothing) {
  const fs::path dir = temp_dir();
  const fs::path db = dir / "s.db";
  Store store(db.string());
  store.put_study("st", json::object());
  const json first = make_record(2, 10, 30, false, 0);
  ASSERT_TRUE(store.put_run("k", "st", "fixed", 0, first));
  const std::int64_t epochs_before = count_rows(db, "epochs");
  EXPECT_FALSE(store.put_run("k", "st", "default", 5, make_record(3, 10, 30, true, 1)));
  EXPECT_EQ(count_rows(db, "runs"), 1);
  EXPECT_EQ(count_rows(db, "epochs"), epochs_before);
  const StoredRun r = store.run("k");
  EXPECT_EQ(r.setting, "fixed");
  EXPECT_EQ(r.repetition, 0);
  EXPECT_EQ(r.weight_hash, first["weight_hash"].get<std::string>());
  EXPECT_EQ(r.epochs.size(), 2u);
  EXPECT_EQ(store.record("k"), first);
  fs::remove_all(dir);
}

TEST(Store, TwoConnectionsSeeEachOthersRuns) {
  const fs::path dir = temp_dir();
  const std::string path = (dir / "s.db").string();
  Store a(path);
  Store b(path);
  a.put_study("st", json::object());
  ASSERT_TRUE(a.put_run("ka", "st", "s", 0, make_record(2, 10, 30, false, 1)));
  EXPECT_TRUE(b.has_run("ka"));
  ASSERT_TRUE(b.put_run("kb", "st", "s", 1, make_record(2, 10, 30, false, 2)));
  EXPECT_TRUE(a.has_run("kb"));
  EXPECT_FALSE(b.put_run("ka", "st", "s", 0, make_record(2, 10, 30, false, 1)));
  EXPECT_EQ(a.runs("st").size(), 2u);
  EXPECT_EQ(b.run_keys("st"), (std::set<std::string>{"ka", "kb"}));
  fs::remove_all(dir);
}

TEST(Store, TwoProcessesWriteOneFileConcurrently) {
  const fs::path dir = temp_dir();
  const std::string path = (dir / "s.db").string();
  { Store(path).put_study("st", json::object()); }
  constexpr int kPerProcess = 15;
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  // both write kPerProcess own runs and try the same shared keys; the store serialises them
  auto work = [&](const std::string& who) {
    Store s(path);  // a connection of this process only
    int inserted = 0;
    for (int i = 0; i < kPerProcess; ++i) {
      inserted +=
          s.put_run(who + std::to_string(i), "st", who, i, make_record(2, 10, 200, true, i));
      inserted += s.put_run("shared" + std::to_string(i), "st", "shared", i,
                            make_record(2, 10, 200, true, i));
    }
    return inserted;
  };
  if (child == 0) {
    int code = 1;
    try {
      code = work("child") >= kPerProcess ? 0 : 2;
    } catch (...) {
      code = 3;
    }
    ::_exit(code);
  }
  const int parent_inserted = work("parent");
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_GE(parent_inserted, kPerProcess);
  Store s(path);
  const auto keys = s.run_keys("st");
  EXPECT_EQ(keys.size(), 3u * kPerProcess);  // each shared key stored exactly once
  EXPECT_EQ(count_rows(dir / "s.db", "epochs"), 3 * kPerProcess * 2 * 3);
  fs::remove_all(dir);
}

TEST(Store, ForeignFilesAreRefusedWithTheirPath) {
  const fs::path dir = temp_dir();
  // not SQLite at all
  const fs::path text = dir / "notes.txt";
  std::ofstream(text) << "this is not a database, it is a shopping list\n" << std::string(200, 'x');
  std::string err = error_of([&] { Store s(text.string()); });
  EXPECT_NE(err.find(text.string()), std::string::npos) << err;
  EXPECT_NE(err.find("not an SQLite database"), std::string::npos) << err;
  EXPECT_THROW(Store s(text.string()), std::runtime_error);

  // a detdl store of another schema version
  const fs::path other_version = dir / "v.db";
  { Store s(other_version.string()); }
  exec_sql(other_version, "UPDATE meta SET value = '99' WHERE key = 'schema_version'");
  err = error_of([&] { Store s(other_version.string()); });
  EXPECT_NE(err.find(other_version.string()), std::string::npos) << err;
  EXPECT_NE(err.find("schema_version 99"), std::string::npos) << err;

  // some other program's SQLite database
  const fs::path foreign = dir / "f.db";
  exec_sql(foreign, "CREATE TABLE customers(id INTEGER)");
  err = error_of([&] { Store s(foreign.string()); });
  EXPECT_NE(err.find(foreign.string()), std::string::npos) << err;
  EXPECT_EQ(count_rows(foreign, "customers"), 0);  // left as it was

  // a folder that does not exist
  const fs::path missing = dir / "no" / "such" / "s.db";
  err = error_of([&] { Store s(missing.string()); });
  EXPECT_NE(err.find(missing.string()), std::string::npos) << err;

  // reopening a good store works and keeps its runs
  const fs::path good = dir / "g.db";
  {
    Store s(good.string());
    s.put_study("st", json::object());
    s.put_run("k", "st", "s", 0, make_record(1, 2, 3, false));
  }
  EXPECT_TRUE(Store(good.string()).has_run("k"));
  fs::remove_all(dir);
}

TEST(Store, FinalWeightsRoundTripInTheRunsTransaction) {
  const fs::path dir = temp_dir();
  const std::string path = (dir / "w.sqlite").string();
  Store s(path);
  s.put_study("st", json{{"name", "st"}});
  std::vector<float> w(10000);
  for (std::size_t i = 0; i < w.size(); ++i)
    w[i] = std::ldexp(static_cast<float>(i % 97) - 48.0f, -static_cast<int>(i % 20));
  w[5] = -0.0f;
  ASSERT_TRUE(s.put_run("k1", "st", "a", 0, make_record(2, 10, 20, false), w));
  const std::vector<float> back = s.weights("k1");
  ASSERT_EQ(back.size(), w.size());
  EXPECT_EQ(std::memcmp(back.data(), w.data(), w.size() * sizeof(float)),
            0);  // bit for bit, -0 included
  ASSERT_TRUE(s.put_run("k2", "st", "a", 1, make_record(2, 10, 20, false, 1)));
  EXPECT_TRUE(s.weights("k2").empty());
  // A failing run stores no weights either.
  json bad = make_record(2, 10, 20, false);
  bad.erase("weight_hash");
  EXPECT_THROW(s.put_run("k3", "st", "a", 2, bad, w), std::invalid_argument);
  EXPECT_TRUE(s.weights("k3").empty());
}

// What schema 3 added to schema 2 (the claims table, runs.task, runs.diverged): dropping it
// turns a store back into one that a schema-2 build wrote.
#define DETDL_DOWNGRADE_TO_THREE \
  "ALTER TABLE runs DROP COLUMN seed_impl; ALTER TABLE runs DROP COLUMN emulated_ops; "
const char* kDowngradeToTwo = DETDL_DOWNGRADE_TO_THREE
    "DROP TABLE claims; ALTER TABLE runs DROP COLUMN task; ALTER TABLE runs DROP COLUMN diverged; ";

TEST(Store, SchemaVersionOneIsUpgradedInPlace) {
  const fs::path dir = temp_dir();
  const std::string path = (dir / "v1.sqlite").string();
  {
    Store s(path);
    s.put_study("st", json{{"name", "st"}});
    ASSERT_TRUE(s.put_run("k1", "st", "a", 0, make_record(2, 10, 20, false)));
  }
  exec_sql(path, std::string("DROP TABLE weights; ") + kDowngradeToTwo +
                     "UPDATE meta SET value = '1' WHERE key = 'schema_version'");
  Store s(path);  // opens, upgrades
  EXPECT_TRUE(s.has_run("k1"));
  EXPECT_TRUE(s.weights("k1").empty());
  ASSERT_TRUE(s.put_run("k2", "st", "a", 1, make_record(2, 10, 20, false, 1), {1.0f, 2.0f}));
  EXPECT_EQ(s.weights("k2"), (std::vector<float>{1.0f, 2.0f}));
}

// Schema 2 -> 3 in place: the runs keep everything, task and diverged are filled from each
// stored record, and the claims table works.
TEST(Store, SchemaVersionTwoIsUpgradedInPlace) {
  const fs::path dir = temp_dir();
  const std::string path = (dir / "v2.sqlite").string();
  json regression = make_record(2, 10, 20, false, 1);
  regression["data"]["task"] = "regression";
  json diverged = make_record(2, 10, 20, false, 2);
  diverged["diverged"] = true;
  {
    Store s(path);
    s.put_study("st", json{{"name", "st"}});
    ASSERT_TRUE(s.put_run("k1", "st", "a", 0, make_record(2, 10, 20, false), {1.0f}));
    ASSERT_TRUE(s.put_run("k2", "st", "a", 1, regression));
    ASSERT_TRUE(s.put_run("k3", "st", "a", 2, diverged));
  }
  exec_sql(path, std::string(kDowngradeToTwo) +
                     "UPDATE meta SET value = '2' WHERE key = 'schema_version'");
  EXPECT_EQ(count_rows(path, "runs"), 3);
  Store s(path);  // opens, upgrades
  EXPECT_EQ(count_rows(path, "claims"), 0);
  const auto runs = s.runs("st");
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].task, "classification");
  EXPECT_EQ(runs[1].task, "regression");
  EXPECT_TRUE(runs[1].is_regression());
  EXPECT_FALSE(runs[0].diverged);
  EXPECT_TRUE(runs[2].diverged);
  EXPECT_EQ(s.weights("k1"), std::vector<float>{1.0f});
  EXPECT_EQ(s.claim_run("k4", "st", Claimant::self(), 300), ClaimResult::claimed);
  EXPECT_EQ(s.claims("st").size(), 1u);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &st,
                               nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "4");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

// The impl seed and the emulated families reach their columns only for runs that emulate;
// a schema-3 store is upgraded in place with both NULL for the runs it holds.
TEST(Store, SchemaVersionThreeIsUpgradedAndImplSeedIsStored) {
  const fs::path dir = temp_dir();
  const std::string path = (dir / "v3.sqlite").string();
  {
    Store s(path);
    s.put_study("st", json{{"name", "st"}});
    ASSERT_TRUE(s.put_run("k1", "st", "a", 0, make_record(2, 10, 20, false)));
  }
  exec_sql(path, std::string(DETDL_DOWNGRADE_TO_THREE) +
                     "UPDATE meta SET value = '3' WHERE key = 'schema_version'");
  Store s(path);  // opens, upgrades
  EXPECT_TRUE(s.has_run("k1"));
  json emulated = make_record(2, 10, 20, false, 1);
  emulated["experiment"]["level"] = "emulated";
  emulated["experiment"]["seeds"]["impl"] = 77;
  emulated["experiment"]["emulated_ops"] = json::array({"conv"});
  ASSERT_TRUE(s.put_run("k2", "st", "a", 1, emulated));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT key, seed_impl, emulated_ops FROM runs ORDER BY key", -1,
                               &st, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_type(st, 1), SQLITE_NULL);
  EXPECT_EQ(sqlite3_column_type(st, 2), SQLITE_NULL);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(st, 1), 77);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 2)), "[\"conv\"]");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

// Divergent training: NaN and infinity reach the record as JSON null (nlohmann writes them
// so). The store keeps them as NaN, never 0, and marks the run diverged, from the record's
// flag or from a loss that is not finite.
TEST(Store, NullAndNonFiniteSeriesAreNaNAndMarkTheRunDiverged) {
  const fs::path dir = temp_dir();
  Store s((dir / "d.sqlite").string());
  s.put_study("st", json::object());
  json flagged = make_record(3, 10, 20, false, 1);
  flagged["diverged"] = true;
  flagged["finite"] = {{"train.loss", 1}, {"test.loss", 1}, {"test.accuracy", 3}};
  for (int e = 1; e < 3; ++e) {
    flagged["epochs"][e]["train"]["loss"] = nullptr;
    flagged["epochs"][e]["test"]["loss"] = nullptr;
    flagged["epochs"][e]["test"]["mean_squared_error"] = nullptr;
    flagged["epochs"][e]["seconds"] = nullptr;
  }
  // A real NaN and infinity in the JSON value (not yet dumped): also null on the way in.
  json unflagged = make_record(2, 10, 20, false, 2);
  unflagged["epochs"][1]["test"]["loss"] = std::numeric_limits<double>::quiet_NaN();
  unflagged["epochs"][1]["train"]["loss"] = std::numeric_limits<double>::infinity();
  json healthy = make_record(2, 10, 20, false, 3);
  healthy["diverged"] = false;
  ASSERT_TRUE(s.put_run("flagged", "st", "a", 0, flagged));
  ASSERT_TRUE(s.put_run("unflagged", "st", "a", 1, unflagged));
  ASSERT_TRUE(s.put_run("healthy", "st", "a", 2, healthy));
  const StoredRun f = s.run("flagged");
  EXPECT_TRUE(f.diverged);
  EXPECT_EQ(f.epochs[0].test.at("loss"), flagged["epochs"][0]["test"]["loss"].get<double>());
  for (int e = 1; e < 3; ++e) {
    EXPECT_TRUE(std::isnan(f.epochs[e].train.at("loss"))) << e;
    EXPECT_TRUE(std::isnan(f.epochs[e].test.at("loss"))) << e;
    EXPECT_TRUE(std::isnan(f.epochs[e].test.at("mean_squared_error"))) << e;
    EXPECT_TRUE(std::isnan(f.epochs[e].seconds)) << e;
  }
  EXPECT_EQ(s.record("flagged")["finite"]["test.accuracy"], 3);  // the record keeps it
  const StoredRun u = s.run("unflagged");
  EXPECT_TRUE(u.diverged);
  EXPECT_TRUE(std::isnan(u.epochs[1].test.at("loss")));
  EXPECT_FALSE(std::isfinite(u.epochs[1].train.at("loss")));
  EXPECT_FALSE(s.run("healthy").diverged);
}
