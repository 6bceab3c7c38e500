// The paper's Table 2 / Table 3 rows and maxima (variance/paper_tables.h) on runs whose
// values were worked out by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "variance/paper_tables.h"

using namespace detdl::variance;

namespace {

const double nan_ = std::numeric_limits<double>::quiet_NaN();

// One epoch: test loss `loss`, test accuracy `acc`, per-class test accuracies, `seconds` of
// training (no validation, so every criterion selects epoch 1).
StoredRun one_epoch_run(const std::string& key, double loss, double acc,
                        std::vector<double> classes, double seconds) {
  StoredRun r;
  r.key = key;
  r.setting = "s";
  EpochRow e;
  e.epoch = 1;
  e.seconds = seconds;
  e.weight_hash = key;
  for (auto name : kMetricNames) e.test[std::string(name)] = 0.0;
  e.test["loss"] = loss;
  e.test["accuracy"] = acc;
  e.train = e.test;
  e.test_class_accuracy = std::move(classes);
  r.epochs.push_back(e);
  r.weight_hash = key;
  return r;
}

std::vector<StoredRun> three_runs_and_a_diverged_one() {
  return {one_epoch_run("a", 0.1, 0.90, {0.9, 0.8, 1.0}, 1),
          one_epoch_run("b", 0.1, 0.80, {0.9, 0.7, 0.4}, 2),
          one_epoch_run("c", 0.1, 0.60, {0.9, 0.75, 0.2}, 4),   // weak, loses class 2
          one_epoch_run("d", nan_, 0.10, {0.0, 0.0, 0.0}, 8)};  // diverged: left out
}

TEST(PaperRow, Table2AndTable3ByHand) {
  const PaperRow r = paper_row(three_runs_and_a_diverged_one(), Selection::best_loss, "default");
  EXPECT_EQ(r.setting, "s");
  EXPECT_EQ(r.group, "default");
  EXPECT_EQ(r.n, 3u);
  EXPECT_EQ(r.classes, 3u);
  // Table 2: accuracies 0.9, 0.8, 0.6.
  EXPECT_NEAR(r.mean, 2.3 / 3, 1e-12);
  EXPECT_NEAR(r.max_diff, 0.3, 1e-12);
  EXPECT_NEAR(r.sd, std::sqrt(0.07 / 3), 1e-12);  // sum of squares 0.14 / 3, over n - 1 = 2
  const Interval ci = std_confidence_interval(r.sd, 3, 0.90);
  EXPECT_EQ(r.sd_ci.low, ci.low);
  EXPECT_EQ(r.sd_ci.high, ci.high);
  EXPECT_LT(r.sd_ci.low, r.sd);
  EXPECT_GT(r.sd_ci.high, r.sd);
  // Per class: class 2 (1.0, 0.4, 0.2) has the largest gap and SD.
  EXPECT_EQ(r.class_of_max_diff, 2);
  EXPECT_NEAR(r.class_max_diff, 0.8, 1e-12);
  EXPECT_EQ(r.class_of_max_sd, 2);
  EXPECT_NEAR(r.class_max_sd, std::sqrt(0.52 / 3), 1e-12);
  EXPECT_EQ(r.class_sd_ci.high, std_confidence_interval(r.class_max_sd, 3, 0.90).high);
  // Weak: under 2/3; losing a class: a class under 1/3 (run c's 0.2; run b's 0.4 is not).
  EXPECT_EQ(r.weak_runs, 1u);
  EXPECT_EQ(r.runs_losing_a_class, 1u);
  EXPECT_NEAR(r.max_diff_without_weak, 0.1, 1e-12);
  // Table 3 (in %).
  EXPECT_NEAR(r.relative_sd, 100 * r.sd / r.mean, 1e-12);
  EXPECT_EQ(r.class_of_max_relative_sd, 2);
  EXPECT_NEAR(r.class_max_relative_sd, 100 * std::sqrt(0.52 / 3) / (1.6 / 3), 1e-9);
  EXPECT_NEAR(r.time_relative_sd, 100 * std::sqrt(7.0 / 3) / (7.0 / 3), 1e-9);  // 1, 2, 4 s
  EXPECT_NEAR(r.time_diff_pct, 300, 1e-9);
}

TEST(PaperRow, IdenticalRunsAndBadInput) {
  const std::vector<StoredRun> same(4, one_epoch_run("a", 0.1, 0.9, {0.9, 0.9}, 1));
  const PaperRow r = paper_row(same, Selection::last, "fixed-seed");
  EXPECT_EQ(r.max_diff, 0.0);
  EXPECT_EQ(r.sd, 0.0);
  EXPECT_EQ(r.class_max_diff, 0.0);
  EXPECT_EQ(r.class_of_max_diff, 0);
  EXPECT_EQ(r.weak_runs, 0u);  // 90% of 2 classes: above 75%
  EXPECT_EQ(r.time_diff_pct, 0.0);
  EXPECT_THROW(paper_row({}, Selection::last, "g"), std::invalid_argument);
  auto mixed = same;
  mixed[1].setting = "t";
  EXPECT_THROW(paper_row(mixed, Selection::last, "g"), std::invalid_argument);
}

PaperRow row(const std::string& setting, const std::string& group, Selection c, double diff,
             double sd) {
  PaperRow r;
  r.setting = setting;
  r.group = group;
  r.criterion = c;
  r.max_diff = diff;
  r.sd = sd;
  return r;
}

TEST(PaperMaxima, LargestOverTheGroupsSettingsAndThePapersCriteria) {
  const std::vector<PaperRow> rows = {
      row("s1", "default", Selection::best_loss, 0.10, 0.02),
      row("s1", "default", Selection::best_acc, 0.30, nan_),
      row("s1", "default", Selection::last, 0.90, 0.50),  // not one of the paper's criteria
      row("f1", "fixed-seed", Selection::best_loss, 0.01, 0.001),
      row("s2", "default", Selection::best_loss, 0.20, 0.04),
      row("s2", "default", Selection::best_acc, 0.30, 0.03),  // a tie: the first row wins
  };
  const auto m = paper_maxima(rows);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].group, "default");
  EXPECT_EQ(m[0].rows, 4u);
  EXPECT_EQ(m[0].settings, (std::vector<std::string>{"s1", "s2"}));
  EXPECT_EQ(m[0].criteria, (std::vector<Selection>{Selection::best_loss, Selection::best_acc}));
  EXPECT_NEAR(m[0].max_diff.value, 0.30, 1e-15);
  EXPECT_EQ(m[0].max_diff.setting, "s1");
  EXPECT_EQ(m[0].max_diff.criterion, Selection::best_acc);
  EXPECT_NEAR(m[0].sd.value, 0.04, 1e-15);  // the NaN never wins
  EXPECT_EQ(m[0].sd.setting, "s2");
  EXPECT_EQ(m[1].group, "fixed-seed");
  EXPECT_NEAR(m[1].max_diff.value, 0.01, 1e-15);
  EXPECT_TRUE(std::isnan(m[1].class_max_diff.value));
  // A study that selects only `last`: its rows are the ones combined.
  const auto only_last = paper_maxima({row("s1", "default", Selection::last, 0.9, 0.5)});
  ASSERT_EQ(only_last.size(), 1u);
  EXPECT_NEAR(only_last[0].max_diff.value, 0.9, 1e-15);
  EXPECT_TRUE(paper_maxima({}).empty());
}

TEST(PaperMaxima, DefaultGroupFollowsWhatVaries) {
  EXPECT_EQ(default_table_group("algorithmic: all six seeds"), "default");
  EXPECT_EQ(default_table_group("algorithmic: init + implementation: impl seed"), "default");
  EXPECT_EQ(default_table_group("implementation: impl seed"), "fixed-seed");
  EXPECT_EQ(default_table_group("nothing"), "fixed-seed");
  EXPECT_NEAR(weak_threshold(10), 0.2, 1e-15);  // the paper's 19.7% run is weak
  EXPECT_NEAR(weak_threshold(3), 2.0 / 3, 1e-15);
  EXPECT_NEAR(weak_threshold(2), 0.75, 1e-15);  // not 100%
  EXPECT_TRUE(std::isnan(weak_threshold(0)));
}

}  // namespace
