// CSV exports of a study (variance/export.h): exact headers, RFC 4180 quoting, numbers that
// read back to the same double, NaN as an empty field, one row per item, atomic replace.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "variance/export.h"

using namespace detdl::variance;
namespace fs = std::filesystem;

namespace {

const double nan_ = std::numeric_limits<double>::quiet_NaN();

fs::path temp_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path d = fs::temp_directory_path() /
               ("detdl_export_" + std::to_string(::getpid()) + "_" + info->name());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A small RFC 4180 reader (quoted fields may hold commas, quotes and newlines).
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      row.push_back(field);
      field.clear();
    } else if (c == '\n') {
      row.push_back(field);
      field.clear();
      rows.push_back(row);
      row.clear();
    } else {
      field += c;
    }
  }
  EXPECT_TRUE(field.empty() && row.empty()) << "file does not end in a newline";
  return rows;
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

MetricMap metrics(double loss, double accuracy) {
  MetricMap m;
  for (auto name : kMetricNames) m[std::string(name)] = 0.0;
  m["loss"] = loss;
  m["accuracy"] = accuracy;
  return m;
}

// Two epochs; test loss falls, test accuracy `acc` at the end; `classes` class accuracies.
StoredRun make_run(const std::string& setting, std::int64_t rep, double acc, std::size_t classes,
                   std::vector<std::int32_t> predictions = {}) {
  StoredRun r;
  r.setting = setting;
  r.repetition = rep;
  r.key = "key" + std::to_string(rep);
  for (int e = 1; e <= 2; ++e) {
    EpochRow row;
    row.epoch = e;
    row.seconds = 1.5 * e;
    row.weight_hash = "hash" + std::to_string(rep) + "_" + std::to_string(e);
    row.train = metrics(1.0 / e, 0.5);
    row.test = metrics(2.0 / e, e == 2 ? acc : 0.1);
    row.test_class_accuracy.assign(classes, 0.25 * e);
    r.epochs.push_back(row);
  }
  r.weight_hash = r.epochs.back().weight_hash;
  r.predictions = std::move(predictions);
  return r;
}

}  // namespace

TEST(Csv, FieldQuotingAndNumbers) {
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csv_field("cr\r"), "\"cr\r\"");
  EXPECT_EQ(csv_field(""), "");
  EXPECT_EQ(csv_number(0.1), "0.1");
  EXPECT_EQ(csv_number(-2.5), "-2.5");
  EXPECT_EQ(csv_number(100.0), "100");
  EXPECT_EQ(csv_number(nan_), "");
  EXPECT_EQ(csv_number(INFINITY), "inf");
  EXPECT_EQ(csv_number(-INFINITY), "-inf");
  EXPECT_EQ(csv_number(std::int64_t{-7}), "-7");
  for (double v : {1.0 / 3, 1e-300, 6.02214076e23, 0.930000000000001})
    EXPECT_EQ(std::stod(csv_number(v)), v);  // shortest text that reads back exactly
}

TEST(Csv, AnalysisResultHeaderQuotingAndRows) {
  const fs::path dir = temp_dir();
  std::vector<StoredRun> fixed, dflt;
  for (int i = 0; i < 3; ++i) {
    fixed.push_back(make_run("fixed, seed=1", i, 0.9 + 0.01 * i, 3, {0, 1, 2, i % 3}));
    dflt.push_back(make_run("default \"none\"", i, 0.8 + 0.02 * i, 3));
  }
  std::vector<SettingSummary> summaries;
  for (const Selection c : kSelections) {
    summaries.push_back(summarize(fixed, c));
    summaries.push_back(summarize(dflt, c));
  }
  const fs::path path = dir / "analysis_result.csv";
  write_analysis_result(path, summaries);
  const std::string text = slurp(path);
  EXPECT_EQ(first_line(text),
            "setting,criterion,n,max_acc,min_acc,mean_acc,std_acc,std_ci_low,std_ci_high,"
            "max_diff,class_max_diff,class_with_max_diff,mean_convergence_time,"
            "max_convergence_time_diff_pct,min_epoch,max_epoch,distinct_hashes,mean_churn,"
            "regression,diverged,left_out,acc_identical_despite_hashes,max_loss,min_loss,mean_loss,"
            "std_loss,"
            "std_loss_ci_low,std_loss_ci_high,loss_max_diff,loss_identical_despite_hashes");
  EXPECT_NE(text.find("\n\"fixed, seed=1\",best_loss,3,"), std::string::npos);
  EXPECT_NE(text.find("\n\"default \"\"none\"\"\",last,3,"), std::string::npos);
  const auto rows = parse_csv(text);
  ASSERT_EQ(rows.size(), 1 + summaries.size());
  for (std::size_t i = 1; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), 30u);
    const SettingSummary& s = summaries[i - 1];
    EXPECT_EQ(rows[i][0], s.setting);
    EXPECT_EQ(rows[i][1], selection_name(s.criterion));
    EXPECT_EQ(rows[i][2], "3");
    EXPECT_EQ(std::stod(rows[i][3]), s.max_acc);
    EXPECT_EQ(std::stod(rows[i][6]), s.std_acc);
    EXPECT_EQ(std::stod(rows[i][7]), s.std_ci.low);
    EXPECT_EQ(rows[i][10], "0");  // every class equal across runs
    EXPECT_EQ(rows[i][11], "0");
    EXPECT_EQ(rows[i][16], "3");
    EXPECT_EQ(rows[i][18], "0");  // not regression
    EXPECT_EQ(rows[i][19], "0");  // none diverged
    EXPECT_EQ(rows[i][20], "0");  // none left out
    EXPECT_EQ(std::stod(rows[i][24]), s.loss.mean);
    EXPECT_EQ(std::stod(rows[i][28]), s.loss.max_diff);
  }
  // churn only where predictions exist: fixed has them (pairs 1/4, 1/4, 1/4 -> 1/4),
  // default has none -> empty
  EXPECT_EQ(rows[1][17], "0.25");
  EXPECT_EQ(rows[2][17], "");
  // no temporary file left behind
  for (const auto& entry : fs::directory_iterator(dir))
    EXPECT_EQ(entry.path().filename(), "analysis_result.csv");
  fs::remove_all(dir);
}

TEST(Csv, AnalysisRawOneRowPerRunAndCriterion) {
  const fs::path dir = temp_dir();
  std::vector<StoredRun> runs = {make_run("a,b", 0, 0.9, 2), make_run("a,b", 1, 0.95, 4),
                                 make_run("c", 0, 0.5, 0)};
  const fs::path path = dir / "analysis_raw.csv";
  write_analysis_raw(path, runs, {Selection::best_loss, Selection::last});
  const std::string text = slurp(path);
  EXPECT_EQ(first_line(text),
            "setting,repetition,key,criterion,selected_epoch,test_accuracy,convergence_time,"
            "convergence_epoch,weight_hash,test_loss,regression,diverged,acc_class_0,acc_class_1,"
            "acc_class_2,"
            "acc_class_3");
  const auto rows = parse_csv(text);
  ASSERT_EQ(rows.size(), 1u + 3 * 2);
  EXPECT_EQ(rows[1],
            (std::vector<std::string>{"a,b", "0", "key0", "best_loss", "2", "0.9", "4.5", "2",
                                      "hash0_2", "1", "0", "0", "0.5", "0.5", "", ""}));
  EXPECT_EQ(rows[4][0], "a,b");
  EXPECT_EQ(rows[4][3], "last");
  EXPECT_EQ(rows[4][15], "0.5");
  EXPECT_EQ(rows[6][0], "c");
  EXPECT_EQ(rows[6][12], "");  // a run without per-class accuracies
  fs::remove_all(dir);
}

TEST(Csv, ButterSummaryAndComparisons) {
  const fs::path dir = temp_dir();
  std::vector<StoredRun> runs = {make_run("x", 0, 0.9, 0), make_run("x", 1, 0.7, 0)};
  runs[1].epochs[0].test["loss"] = nan_;
  const ButterSummary b = butter_summary(runs);
  const fs::path path = dir / "butter_summary.csv";
  write_butter_summary(path, {b});
  const std::string text = slurp(path);
  EXPECT_EQ(first_line(text), "setting,epoch,series,count,finite,min,max,mean,std,q1,median,q3");
  const auto rows = parse_csv(text);
  ASSERT_EQ(rows.size(), 1 + b.per_epoch.size() + 2 * kMetricNames.size());
  ASSERT_EQ(b.per_epoch.size(), 2u * 21);  // train + test metrics + seconds, no validation
  // epoch 1 test_loss: values 2 and NaN -> min 2, max NaN (empty), median between -> empty
  bool found = false;
  for (const auto& r : rows)
    if (r[1] == "1" && r[2] == "test_loss") {
      found = true;
      EXPECT_EQ(r, (std::vector<std::string>{"x", "1", "test_loss", "2", "1", "2", "", "", "", "",
                                             "", ""}));
    }
  EXPECT_TRUE(found);
  // After the per-epoch rows: two rows (epoch, value) per test metric's extremum.
  const std::size_t first = rows.size() - 2 * kMetricNames.size();
  EXPECT_EQ(rows[first][1], "");
  EXPECT_EQ(rows[first][2], "min_test_loss_epoch");
  EXPECT_EQ(rows[first + 3][2], "max_test_accuracy");
  EXPECT_EQ(rows[first + 3][6], "0.9");  // max of the per-run best accuracies
  EXPECT_EQ(rows[first + 13][2], "min_test_mean_squared_error");
  EXPECT_EQ(rows.back()[2], "min_test_squared_hinge");

  std::vector<StoredRun> a = {make_run("fixed", 0, 1.0, 0), make_run("fixed", 1, 2.0, 0),
                              make_run("fixed", 2, 3.0, 0)};
  std::vector<StoredRun> d = {make_run("default, all", 0, 4.0, 0),
                              make_run("default, all", 1, 5.0, 0),
                              make_run("default, all", 2, 6.0, 0)};
  std::vector<Comparison> comps = {compare_settings(a, d, Selection::last),
                                   compare_settings(a, d, Selection::best_acc)};
  comps[1].levene_p = nan_;
  const fs::path cpath = dir / "comparisons.csv";
  write_comparisons(cpath, comps);
  const std::string ctext = slurp(cpath);
  EXPECT_EQ(first_line(ctext),
            "setting_a,setting_b,criterion,levene_p,mannwhitney_u,mannwhitney_p_two_sided,cohens_d,"
            "mannwhitney_p_scipy_legacy_one_sided");
  const auto crows = parse_csv(ctext);
  ASSERT_EQ(crows.size(), 3u);
  EXPECT_EQ(crows[1][0], "fixed");
  EXPECT_EQ(crows[1][1], "default, all");
  EXPECT_EQ(crows[1][2], "last");
  EXPECT_EQ(crows[1][4], "0");
  EXPECT_EQ(crows[1][6], "-3");
  EXPECT_NEAR(std::stod(crows[1][5]), 0.08085559837005224, 1e-12);      // scipy
  EXPECT_NEAR(std::stod(crows[1][7]), 0.08085559837005224 / 2, 1e-12);  // scipy 1.3's default
  EXPECT_EQ(crows[2][3], "");
  fs::remove_all(dir);
}

TEST(Csv, ReplacesAnOldFileAndNamesThePathOnError) {
  const fs::path dir = temp_dir();
  const fs::path path = dir / "comparisons.csv";
  std::ofstream(path) << "old content that is much longer than the new table will be\n"
                      << std::string(500, 'z');
  write_comparisons(path, {});
  EXPECT_EQ(slurp(path),
            "setting_a,setting_b,criterion,levene_p,mannwhitney_u,mannwhitney_p_two_sided,cohens_d,"
            "mannwhitney_p_scipy_legacy_one_sided\n");
  const fs::path bad = dir / "missing" / "comparisons.csv";
  try {
    write_comparisons(bad, {});
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(bad.string()), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}
