// Statistics of a study (variance/stats.h) against values worked out by hand, closed forms
// of the distributions, published tables (6 decimals) and, where marked, scipy 1.17 /
// numpy 2 (float64 references computed outside this project, not this code's output).
#include <gtest/gtest.h>

#include <cmath>

#include "variance/stats.h"

using namespace detdl::variance;

namespace {

const double nan_ = std::numeric_limits<double>::quiet_NaN();

MetricMap metrics(double loss, double accuracy) {
  MetricMap m;
  for (auto name : kMetricNames) m[std::string(name)] = 0.0;
  m["loss"] = loss;
  m["accuracy"] = accuracy;
  return m;
}

struct EpochSpec {
  double test_loss, test_acc;
  double val_loss = nan_, val_acc = nan_;  // both NaN and !with_validation: no validation
  double seconds = 1;
  std::string hash = "h";
  std::vector<double> classes = {};
};

StoredRun make_run(const std::string& setting, const std::string& key,
                   const std::vector<EpochSpec>& epochs, bool with_validation,
                   std::vector<std::int32_t> predictions = {}) {
  StoredRun r;
  r.key = key;
  r.setting = setting;
  for (std::size_t i = 0; i < epochs.size(); ++i) {
    EpochRow e;
    e.epoch = static_cast<std::int64_t>(i) + 1;
    e.seconds = epochs[i].seconds;
    e.weight_hash = epochs[i].hash;
    e.train = metrics(epochs[i].test_loss + 1, epochs[i].test_acc / 2);
    e.test = metrics(epochs[i].test_loss, epochs[i].test_acc);
    if (with_validation) e.validation = metrics(epochs[i].val_loss, epochs[i].val_acc);
    e.test_class_accuracy = epochs[i].classes;
    r.epochs.push_back(e);
  }
  r.weight_hash = epochs.empty() ? "" : epochs.back().hash;
  r.predictions = std::move(predictions);
  return r;
}

// A run whose only interesting value is the test accuracy of its single epoch.
StoredRun acc_run(const std::string& setting, double acc, const std::string& hash = "h") {
  return make_run(setting, setting + std::to_string(acc), {{0.1, acc, nan_, nan_, 1, hash}}, false);
}

}  // namespace

// ---- distributions ----------------------------------------------------------------------

TEST(Distributions, ChiSquareQuantilesMatchTables) {
  // tables (6 decimals) and scipy.stats.chi2.ppf (full precision)
  EXPECT_NEAR(chi_square_quantile(0.05, 10), 3.940299, 5e-7);
  EXPECT_NEAR(chi_square_quantile(0.05, 10), 3.9402991361190605, 1e-10);
  EXPECT_NEAR(chi_square_quantile(0.95, 10), 18.307038053275146, 1e-9);
  EXPECT_NEAR(chi_square_quantile(0.05, 15), 7.2609439276700325, 1e-10);
  EXPECT_NEAR(chi_square_quantile(0.95, 15), 24.995790139728616, 1e-9);
  EXPECT_NEAR(chi_square_quantile(0.95, 1), 3.841458820694124, 1e-10);  // 1.959964^2
  EXPECT_NEAR(chi_square_quantile(0.5, 0.7), 0.21473897172368658, 1e-11);
  EXPECT_NEAR(chi_square_quantile(1e-6, 3), 0.00024181048720124264, 1e-14);
  EXPECT_NEAR(chi_square_quantile(0.999, 200), 267.5405278227572, 1e-8);
  EXPECT_THROW(chi_square_quantile(1.0, 3), std::invalid_argument);
  EXPECT_THROW(chi_square_quantile(0.5, 0), std::invalid_argument);
}

TEST(Distributions, RegularizedGammaClosedForms) {
  for (double x : {0.01, 0.5, 1.0, 2.5, 7.0, 30.0}) {
    EXPECT_NEAR(regularized_gamma_p(1.0, x), 1 - std::exp(-x), 1e-14) << x;  // exponential
    EXPECT_NEAR(regularized_gamma_p(0.5, x), std::erf(std::sqrt(x)), 1e-14) << x;
    // P(2, x) = 1 - e^-x (1 + x)
    EXPECT_NEAR(regularized_gamma_p(2.0, x), 1 - std::exp(-x) * (1 + x), 1e-14) << x;
  }
  EXPECT_EQ(regularized_gamma_p(3.0, 0.0), 0.0);
  // the inverse undoes it
  for (double p : {1e-8, 0.05, 0.5, 0.95, 1 - 1e-9})
    EXPECT_NEAR(regularized_gamma_p(4.5, regularized_gamma_p_inverse(4.5, p)), p, 1e-13) << p;
}

TEST(Distributions, RegularizedBetaClosedForms) {
  for (double x : {0.001, 0.2, 0.5, 0.77, 0.999}) {
    EXPECT_NEAR(regularized_beta(x, 1, 1), x, 1e-14);
    EXPECT_NEAR(regularized_beta(x, 3, 1), x * x * x, 1e-14);
    EXPECT_NEAR(regularized_beta(x, 2, 2), 3 * x * x - 2 * x * x * x, 1e-14);
    EXPECT_NEAR(regularized_beta(x, 1, 4), 1 - std::pow(1 - x, 4), 1e-14);
  }
  EXPECT_EQ(regularized_beta(0, 2, 3), 0.0);
  EXPECT_EQ(regularized_beta(1, 2, 3), 1.0);
}

TEST(Distributions, FDistributionTailMatchesClosedFormsAndTables) {
  // d1 = 2: P(F > x) = (d2 / (d2 + 2x))^(d2/2)
  for (double d2 : {2.0, 5.0, 12.0})
    for (double x : {0.1, 1.0, 3.885294, 20.0})
      EXPECT_NEAR(f_distribution_sf(x, 2, d2), std::pow(d2 / (d2 + 2 * x), d2 / 2), 1e-14);
  // d1 = 1, d2 = 2 (t with 2 df, two-sided): 1 - sqrt(x / (x + 2))
  for (double x : {0.2, 0.75, 4.0, 50.0})
    EXPECT_NEAR(f_distribution_sf(x, 1, 2), 1 - std::sqrt(x / (x + 2)), 1e-14);
  // table critical values at 5% / 1% (6 decimals), then scipy.stats.f.sf at them
  EXPECT_NEAR(f_distribution_sf(4.964603, 1, 10), 0.05, 1e-7);
  EXPECT_NEAR(f_distribution_sf(4.964603, 1, 10), 0.04999999512509324, 1e-13);
  EXPECT_NEAR(f_distribution_sf(3.325835, 5, 10), 0.049999980941235436, 1e-13);
  EXPECT_NEAR(f_distribution_sf(4.938193, 3, 20), 0.010000003112768314, 1e-13);
  EXPECT_NEAR(f_distribution_sf(2.5, 7, 3), 0.2424975282447002, 1e-13);
  EXPECT_NEAR(f_distribution_sf(30.0, 4, 60) / 1.0199565074199592e-13, 1.0, 1e-9);  // deep tail
  EXPECT_EQ(f_distribution_sf(0, 3, 4), 1.0);
  EXPECT_EQ(f_distribution_sf(INFINITY, 3, 4), 0.0);
  EXPECT_TRUE(std::isnan(f_distribution_sf(nan_, 3, 4)));
}

TEST(Distributions, NormalTail) {
  EXPECT_NEAR(normal_sf(1.959963984540054), 0.025, 1e-15);
  EXPECT_NEAR(normal_sf(0), 0.5, 0);
  EXPECT_NEAR(normal_sf(-1.6448536269514722), 0.95, 1e-15);
}

// ---- descriptive ------------------------------------------------------------------------

TEST(Descriptive, StdConfidenceIntervalIsChiSquareBased) {
  // n = 16, sd = 1: [sqrt(15 / chi2_0.95,15), sqrt(15 / chi2_0.05,15)] (scipy)
  const Interval ci = std_confidence_interval(1.0, 16, 0.90);
  EXPECT_NEAR(ci.low, 0.7746618963543936, 1e-12);
  EXPECT_NEAR(ci.high, 1.4373055019816767, 1e-12);
  // scales with sd; n = 4 uses 3 degrees of freedom
  const Interval ci4 = std_confidence_interval(0.5, 4, 0.90);
  EXPECT_NEAR(ci4.low, 0.5 * std::sqrt(3 / 7.814727903251179), 1e-12);
  EXPECT_NEAR(ci4.high, 0.5 * std::sqrt(3 / 0.35184631774927144), 1e-12);
  EXPECT_TRUE(std::isnan(std_confidence_interval(1.0, 1, 0.9).low));
  EXPECT_THROW(std_confidence_interval(1.0, 5, 1.0), std::invalid_argument);
}

TEST(Descriptive, QuantilesAreNumpyLinear) {
  const auto s = sorted_nan_last({3, 1, 2, 4});
  EXPECT_DOUBLE_EQ(quantile_linear(s, 0.25), 1.75);
  EXPECT_DOUBLE_EQ(quantile_linear(s, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(quantile_linear(s, 0.75), 3.25);
  // numpy.quantile([0.1, 0.7, 0.2, 0.9, 0.4, 0.35, 0.8], [.25, .5, .75]) = [0.275, 0.4, 0.75]
  const auto t = sorted_nan_last({0.1, 0.7, 0.2, 0.9, 0.4, 0.35, 0.8});
  EXPECT_NEAR(quantile_linear(t, 0.25), 0.275, 1e-15);
  EXPECT_EQ(quantile_linear(t, 0.5), 0.4);
  EXPECT_EQ(quantile_linear(t, 0.75), 0.75);
  EXPECT_EQ(quantile_linear(t, 0.0), 0.1);
  EXPECT_EQ(quantile_linear(t, 1.0), 0.9);
}

TEST(Descriptive, NanSortsAboveEveryNumberAndCanLandInAQuartile) {
  const auto s = sorted_nan_last({1, nan_, INFINITY, -INFINITY, 2});
  ASSERT_EQ(s.size(), 5u);
  EXPECT_EQ(s[0], -INFINITY);
  EXPECT_EQ(s[3], INFINITY);
  EXPECT_TRUE(std::isnan(s[4]));

  // [1, 2, 3, NaN]: q1 at position 0.75 -> 1.75; median at 1.5 -> 2.5; q3 at 2.25 lies
  // between 3 and NaN -> NaN
  SeriesSummary a = summarize_series({1, nan_, 2, 3});
  EXPECT_EQ(a.count, 4u);
  EXPECT_EQ(a.finite, 3u);
  EXPECT_DOUBLE_EQ(a.q1, 1.75);
  EXPECT_DOUBLE_EQ(a.median, 2.5);
  EXPECT_TRUE(std::isnan(a.q3));
  EXPECT_EQ(a.min, 1.0);
  EXPECT_TRUE(std::isnan(a.max));
  EXPECT_TRUE(std::isnan(a.mean));
  EXPECT_TRUE(std::isnan(a.std));

  // [1, 2, 3, 4, NaN]: positions 1, 2, 3 are exact, the NaN never enters a quartile
  SeriesSummary b = summarize_series({4, nan_, 3, 1, 2});
  EXPECT_EQ(b.q1, 2.0);
  EXPECT_EQ(b.median, 3.0);
  EXPECT_EQ(b.q3, 4.0);

  SeriesSummary c = summarize_series({1, 2, INFINITY});
  EXPECT_EQ(c.finite, 2u);
  EXPECT_EQ(c.max, INFINITY);

  SeriesSummary d = summarize_series({2, 4, 4, 4, 5, 5, 7, 9});
  EXPECT_EQ(d.mean, 5.0);
  EXPECT_NEAR(d.std, std::sqrt(32.0 / 7), 1e-15);  // sum of squares 32, n - 1 = 7
  EXPECT_EQ(d.min, 2.0);
  EXPECT_EQ(d.max, 9.0);

  EXPECT_EQ(summarize_series({}).count, 0u);
  EXPECT_TRUE(std::isnan(summarize_series({}).median));
}

// ---- selection --------------------------------------------------------------------------

TEST(Selection, CriteriaPickTheRightEpochWithTiesToTheEarliest) {
  // epoch:         1     2     3     4
  // val loss:     0.5   0.3   0.3   0.4   -> best_loss = 2 (tie with 3)
  // val acc:      0.8   0.9   0.95  0.95  -> best_acc = 3 (tie with 4)
  // seconds:       1     2     3     4
  const StoredRun r = make_run("s", "k",
                               {{1.0, 0.50, 0.5, 0.80, 1, "a", {0.4, 0.6}},
                                {0.9, 0.60, 0.3, 0.90, 2, "b", {0.5, 0.7}},
                                {0.8, 0.70, 0.3, 0.95, 3, "c", {0.6, 0.8}},
                                {0.7, 0.75, 0.4, 0.95, 4, "d", {0.7, 0.8}}},
                               true);
  const SelectedEpoch loss = select_epoch(r, Selection::best_loss);
  EXPECT_EQ(loss.epoch, 2);
  EXPECT_EQ(loss.test_accuracy, 0.60);
  EXPECT_EQ(loss.convergence_time, 3.0);
  EXPECT_EQ(loss.weight_hash, "b");
  EXPECT_EQ(loss.class_accuracy, (std::vector<double>{0.5, 0.7}));
  const SelectedEpoch acc = select_epoch(r, Selection::best_acc);
  EXPECT_EQ(acc.epoch, 3);
  EXPECT_EQ(acc.test_accuracy, 0.70);
  EXPECT_EQ(acc.convergence_time, 6.0);
  const SelectedEpoch last = select_epoch(r, Selection::last);
  EXPECT_EQ(last.epoch, 4);
  EXPECT_EQ(last.convergence_time, 10.0);
  EXPECT_EQ(last.weight_hash, "d");
  // Records with the split times: the study's time, training + validation only (the test
  // evaluation and the hashing in `seconds` do not count).
  StoredRun timed = r;
  for (auto& e : timed.epochs) {
    e.train_seconds = 0.5 * e.seconds;
    e.validation_seconds = 0.25;
  }
  EXPECT_EQ(select_epoch(timed, Selection::best_loss).convergence_time, 0.5 + 1.0 + 2 * 0.25);
  EXPECT_EQ(select_epoch(timed, Selection::last).convergence_time, 5.0 + 4 * 0.25);
}

TEST(Selection, WithoutValidationTheTestSplitDecidesAndNanNeverWins) {
  // test loss 0.9, 0.4, 0.6 -> best_loss 2; test acc NaN, 0.7, 0.8 -> best_acc 3
  const StoredRun r = make_run("s", "k", {{0.9, nan_}, {0.4, 0.7}, {0.6, 0.8}}, false);
  EXPECT_FALSE(r.has_validation());
  EXPECT_EQ(select_epoch(r, Selection::best_loss).epoch, 2);
  EXPECT_EQ(select_epoch(r, Selection::best_acc).epoch, 3);
  // validation loss NaN at epochs 1 and 3: epoch 2 wins; all NaN: epoch 1
  const StoredRun v = make_run(
      "s", "k", {{0.1, 0.9, nan_, 0.1}, {0.9, 0.1, 0.7, 0.2}, {0.1, 0.9, nan_, 0.3}}, true);
  EXPECT_EQ(select_epoch(v, Selection::best_loss).epoch, 2);
  const StoredRun all_nan = make_run("s", "k", {{nan_, 0.5}, {nan_, 0.6}}, false);
  EXPECT_EQ(select_epoch(all_nan, Selection::best_loss).epoch, 1);
  EXPECT_EQ(parse_selection("best_acc"), Selection::best_acc);
  EXPECT_THROW(parse_selection("best"), std::invalid_argument);
  EXPECT_THROW(select_epoch(StoredRun{}, Selection::last), std::invalid_argument);
}

// ---- one setting ------------------------------------------------------------------------

TEST(Summary, SettingStatisticsByHand) {
  // last-epoch accuracies 0.90, 0.92, 0.94, 0.96: mean 0.93, sample SD sqrt(0.002 / 3)
  // class 0: 0.8, 0.8, 0.85, 0.8 -> diff 0.05; class 1: 0.9, 1.0, 0.95, NaN -> diff 0.1
  // seconds per epoch (2 epochs): total 3, 4, 5, 6 -> diff (6 - 3) / 3 = 100%
  std::vector<StoredRun> runs;
  const double acc[] = {0.90, 0.92, 0.94, 0.96};
  const std::vector<std::vector<double>> cls = {{0.8, 0.9}, {0.8, 1.0}, {0.85, 0.95}, {0.8, nan_}};
  const std::vector<std::vector<std::int32_t>> preds = {
      {0, 1, 2, 3}, {0, 1, 2, 3}, {0, 1, 1, 3}, {1, 1, 1, 3}};
  for (int i = 0; i < 4; ++i)
    runs.push_back(make_run(
        "fixed,seed", "k" + std::to_string(i),
        {{1.0, 0.5, nan_, nan_, 1.0, "e1"},
         {0.5, acc[i], nan_, nan_, 2.0 + i, i < 2 ? "same" : "other" + std::to_string(i), cls[i]}},
        false, preds[i]));
  const SettingSummary s = summarize(runs, Selection::last);
  EXPECT_EQ(s.setting, "fixed,seed");
  EXPECT_EQ(s.n, 4u);
  EXPECT_EQ(s.max_acc, 0.96);
  EXPECT_EQ(s.min_acc, 0.90);
  EXPECT_NEAR(s.mean_acc, 0.93, 1e-15);
  EXPECT_NEAR(s.std_acc, 0.025819888974716078, 1e-15);  // also numpy.std(ddof=1)
  EXPECT_NEAR(s.max_diff, 0.06, 1e-15);
  EXPECT_NEAR(s.std_ci.low, s.std_acc * std::sqrt(3 / 7.814727903251179), 1e-12);
  EXPECT_NEAR(s.std_ci.high, s.std_acc * std::sqrt(3 / 0.35184631774927144), 1e-12);
  ASSERT_EQ(s.class_max_diff.size(), 2u);
  EXPECT_NEAR(s.class_max_diff[0], 0.05, 1e-15);
  EXPECT_NEAR(s.class_max_diff[1], 0.1, 1e-15);
  EXPECT_EQ(s.class_with_max_diff, 1);
  EXPECT_NEAR(s.class_max_diff_value, 0.1, 1e-15);
  EXPECT_EQ(s.min_convergence_time, 3.0);
  EXPECT_EQ(s.max_convergence_time, 6.0);
  EXPECT_EQ(s.mean_convergence_time, 4.5);
  EXPECT_DOUBLE_EQ(s.convergence_time_diff_pct, 100.0);
  EXPECT_EQ(s.min_epoch, 2);
  EXPECT_EQ(s.max_epoch, 2);
  EXPECT_EQ(s.distinct_hashes, 3u);
  EXPECT_FALSE(s.all_identical);
  // churn pairs: (0,1) 0, (0,2) .25, (0,3) .5, (1,2) .25, (1,3) .5, (2,3) .25 -> 1.75 / 6
  EXPECT_NEAR(s.mean_churn, 1.75 / 6, 1e-15);

  // best_loss by test loss: epoch 2 everywhere (0.5 < 1.0)
  EXPECT_EQ(summarize(runs, Selection::best_loss).min_epoch, 2);
  // mixed settings are refused
  runs.push_back(acc_run("other", 0.5));
  EXPECT_THROW(summarize(runs, Selection::last), std::invalid_argument);
  EXPECT_THROW(summarize({}, Selection::last), std::invalid_argument);
}

TEST(Summary, GroupBySettingKeepsFirstAppearanceOrder) {
  const auto groups = group_by_setting({acc_run("b", 0.1), acc_run("a", 0.2), acc_run("b", 0.3)});
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].size(), 2u);
  EXPECT_EQ(groups[0][1].epochs[0].test.at("accuracy"), 0.3);
  EXPECT_EQ(groups[1][0].setting, "a");
  EXPECT_TRUE(group_by_setting({}).empty());
}

TEST(Summary, IdenticalRunsAreFlagged) {
  std::vector<StoredRun> runs(3, acc_run("fixed", 0.9, "abc"));
  const SettingSummary s = summarize(runs, Selection::last);
  EXPECT_TRUE(s.all_identical);
  EXPECT_EQ(s.distinct_hashes, 1u);
  EXPECT_EQ(s.max_diff, 0.0);
  EXPECT_EQ(s.std_acc, 0.0);
}

// ---- two settings -----------------------------------------------------------------------

TEST(Tests, LeveneMedianByHandAndScipy) {
  // groups {1, 2, 4} and {7}: |x - median| = {1, 0, 2} and {0}; group means 1 and 0,
  // grand mean 0.75; between = 3 (0.25)^2 + (0.75)^2 = 0.75; within = 2;
  // W = (4 - 2) / (2 - 1) * 0.75 / 2 = 0.75; F(1, 2) tail = 1 - sqrt(W / (W + 2))
  const TestResult a = levene_median({{1, 2, 4}, {7}});
  EXPECT_NEAR(a.statistic, 0.75, 1e-15);
  EXPECT_NEAR(a.p, 1 - std::sqrt(3.0 / 11), 1e-14);
  EXPECT_NEAR(a.p, 0.4777670321329065, 1e-12);  // scipy.stats.levene
  // {1..5} and {2,4,..,10}: deviations {2,1,0,1,2} and {4,2,0,2,4}; between 3.6, within 14
  // W = 8 * 3.6 / 14
  const TestResult b = levene_median({{1, 2, 3, 4, 5}, {2, 4, 6, 8, 10}});
  EXPECT_NEAR(b.statistic, 8 * 3.6 / 14, 1e-14);
  EXPECT_NEAR(b.p, 0.18940366109332124, 1e-12);  // scipy
  // three groups (scipy: W = 29.24060646011875, p = 2.435831601303285e-05)
  const TestResult c = levene_median({{0.91, 0.93, 0.92, 0.95, 0.90},
                                      {0.80, 0.99, 0.85, 0.97},
                                      {0.5, 0.52, 0.49, 0.51, 0.5, 0.53}});
  EXPECT_NEAR(c.statistic, 29.24060646011875, 1e-10);
  EXPECT_NEAR(c.p / 2.435831601303285e-05, 1.0, 1e-9);
  // constant groups: 0 / 0 -> NaN, as scipy
  EXPECT_TRUE(std::isnan(levene_median({{1, 1, 1}, {2, 2, 2}}).p));
  EXPECT_THROW(levene_median({{1, 2}}), std::invalid_argument);
  EXPECT_THROW(levene_median({{1}, {2}}), std::invalid_argument);
}

TEST(Tests, MannWhitneyByHandAndScipy) {
  // {1,2,3} vs {4,5,6}: U1 = 0, mu = 4.5, sigma = sqrt(9 * 7 / 12);
  // z = (9 - 4.5 - 0.5) / sigma, p = 2 sf(z)
  const TestResult a = mann_whitney_u({1, 2, 3}, {4, 5, 6});
  EXPECT_EQ(a.statistic, 0.0);
  EXPECT_NEAR(a.p, std::erfc(4 / std::sqrt(5.25) / std::sqrt(2.0)), 1e-15);
  EXPECT_NEAR(a.p, 0.08085559837005224, 1e-12);  // scipy method="asymptotic"
  // ties: {1,2,2,3} vs {2,3,3,4,5}: ranks 1, 3, 3, 6 -> R1 = 13, U1 = 3; tie term 2 (27 - 3);
  // sigma = sqrt(20 / 12 (10 - 48 / 72)); z = (17 - 10 - 0.5) / sigma
  const TestResult b = mann_whitney_u({1, 2, 2, 3}, {2, 3, 3, 4, 5});
  EXPECT_EQ(b.statistic, 3.0);
  const double sigma = std::sqrt(20.0 / 12 * (10 - 48.0 / 72));
  EXPECT_NEAR(b.p, std::erfc(6.5 / sigma / std::sqrt(2.0)), 1e-15);
  EXPECT_NEAR(b.p, 0.09934224785346528, 1e-12);  // scipy
  const TestResult c =
      mann_whitney_u({0.91, 0.93, 0.92, 0.95, 0.90, 0.93}, {0.80, 0.99, 0.85, 0.97, 0.93});
  EXPECT_EQ(c.statistic, 14.0);
  EXPECT_NEAR(c.p, 0.926595971709337, 1e-12);  // scipy
  // all tied: p = 1 (scipy too)
  EXPECT_EQ(mann_whitney_u({1, 1}, {1, 1}).p, 1.0);
  EXPECT_THROW(mann_whitney_u({}, {1.0}), std::invalid_argument);
  // scipy 1.3's default (alternative=None), the study's call: min(U1, U2) and sf(|z|), half
  // the two-sided p; all tied gives p = 0 there (sd = 0), kept as it was.
  const TestResult la = mann_whitney_u_scipy_legacy({1, 2, 3}, {4, 5, 6});
  EXPECT_EQ(la.statistic, 0.0);
  EXPECT_NEAR(la.p, 0.08085559837005224 / 2, 1e-12);
  const TestResult lb = mann_whitney_u_scipy_legacy({1, 2, 2, 3}, {2, 3, 3, 4, 5});
  EXPECT_EQ(lb.statistic, 3.0);
  EXPECT_NEAR(lb.p, 0.09934224785346528 / 2, 1e-12);
  const TestResult lc = mann_whitney_u_scipy_legacy({0.91, 0.93, 0.92, 0.95, 0.90, 0.93},
                                                    {0.80, 0.99, 0.85, 0.97, 0.93});
  EXPECT_EQ(lc.statistic, 14.0);  // min(14, 16)
  EXPECT_NEAR(lc.p, 0.926595971709337 / 2, 1e-12);
  EXPECT_EQ(mann_whitney_u_scipy_legacy({1, 1}, {1, 1}).p, 0.0);
  EXPECT_EQ(mann_whitney_u_scipy_legacy({4, 5, 6}, {1, 2, 3}).statistic, 0.0);
  EXPECT_THROW(mann_whitney_u_scipy_legacy({}, {1.0}), std::invalid_argument);
}

TEST(Tests, CohensDPooled) {
  // {1,2,3}: mean 2, ss 2; {2,3,4,5}: mean 3.5, ss 5; pooled sqrt(7 / 5)
  EXPECT_NEAR(cohens_d({1, 2, 3}, {2, 3, 4, 5}), -1.5 / std::sqrt(1.4), 1e-15);
  EXPECT_TRUE(std::isnan(cohens_d({1}, {2})));
}

TEST(Tests, CompareSettingsUsesSelectedAccuracies) {
  std::vector<StoredRun> a, b;
  for (double x : {1.0, 2.0, 3.0}) a.push_back(acc_run("a", x));
  for (double x : {4.0, 5.0, 6.0}) b.push_back(acc_run("b", x));
  const Comparison c = compare_settings(a, b, Selection::last);
  EXPECT_EQ(c.setting_a, "a");
  EXPECT_EQ(c.setting_b, "b");
  EXPECT_EQ(c.mannwhitney_u, 0.0);
  EXPECT_NEAR(c.mannwhitney_p, 0.08085559837005224, 1e-12);
  EXPECT_NEAR(c.mannwhitney_p_legacy, 0.08085559837005224 / 2, 1e-12);
  EXPECT_NEAR(c.cohens_d, -3.0, 1e-15);  // pooled SD 1
  EXPECT_NEAR(c.levene_p, 1.0, 1e-12);   // identical spreads: W = 0
}

// ---- beyond the study -------------------------------------------------------------------

TEST(Beyond, PredictionChurn) {
  EXPECT_EQ(prediction_churn({0, 1, 2, 3}, {0, 1, 1, 3}), 0.25);
  EXPECT_EQ(prediction_churn({5, 5}, {5, 5}), 0.0);
  EXPECT_THROW(prediction_churn({1, 2}, {1}), std::invalid_argument);
  // pairs: 0.25, 1.0, 0.75 -> 2 / 3
  EXPECT_NEAR(mean_pairwise_churn({{0, 1, 2, 3}, {0, 1, 1, 3}, {1, 0, 1, 2}}), 2.0 / 3, 1e-15);
  EXPECT_TRUE(std::isnan(mean_pairwise_churn({{1, 2}})));
}

TEST(Beyond, FirstDivergenceEpoch) {
  auto run = [](std::vector<std::string> hashes) {
    std::vector<EpochSpec> e;
    for (auto& h : hashes) e.push_back({0.1, 0.5, nan_, nan_, 1, h});
    return make_run("s", "k", e, false);
  };
  const StoredRun a = run({"x", "y", "z"}), b = run({"x", "y", "q"}), c = run({"x", "w", "z"});
  EXPECT_EQ(first_divergence_epoch(a, a), 0);
  EXPECT_EQ(first_divergence_epoch(a, b), 3);
  EXPECT_EQ(first_divergence_epoch(a, c), 2);
  EXPECT_EQ(first_divergence_epoch(a, run({"x", "y"})), 3);  // one run stopped early
  EXPECT_EQ(first_divergence_epoch(std::vector<StoredRun>{a, a, b}), 3);
  EXPECT_EQ(first_divergence_epoch(std::vector<StoredRun>{a, b, c}), 2);
  EXPECT_EQ(first_divergence_epoch(std::vector<StoredRun>{b, a, b}), 3);
  EXPECT_EQ(first_divergence_epoch(std::vector<StoredRun>{a, a}), 0);
}

TEST(Beyond, BootstrapIsDeterministicAndBounded) {
  const std::vector<double> v = {0.91, 0.93, 0.92, 0.95, 0.90, 0.93, 0.97, 0.89};
  const Interval sd1 = bootstrap_ci(v, BootstrapStatistic::sample_std, 500, 0.9, 42);
  const Interval sd2 = bootstrap_ci(v, BootstrapStatistic::sample_std, 500, 0.9, 42);
  EXPECT_EQ(sd1.low, sd2.low);
  EXPECT_EQ(sd1.high, sd2.high);
  const Interval sd3 = bootstrap_ci(v, BootstrapStatistic::sample_std, 500, 0.9, 43);
  EXPECT_TRUE(sd3.low != sd1.low || sd3.high != sd1.high);
  // a resample's SD lies in [0, (max - min) / 2 * sqrt(n / (n - 1))], its spread in [0, 0.08]
  EXPECT_GE(sd1.low, 0.0);
  EXPECT_LT(sd1.low, sample_std(v));
  EXPECT_GT(sd1.high, sample_std(v));
  EXPECT_LE(sd1.high, 0.04 * std::sqrt(8.0 / 7) + 1e-15);
  const Interval sp = bootstrap_ci(v, BootstrapStatistic::spread, 500, 0.9, 42);
  EXPECT_GE(sp.low, 0.0);
  EXPECT_LE(sp.high, 0.08 + 1e-15);
  EXPECT_LE(sp.low, sp.high);
  const Interval zero = bootstrap_ci({0.5, 0.5, 0.5}, BootstrapStatistic::spread, 100, 0.9, 1);
  EXPECT_EQ(zero.low, 0.0);
  EXPECT_EQ(zero.high, 0.0);
  EXPECT_THROW(bootstrap_ci({}, BootstrapStatistic::spread, 10, 0.9, 1), std::invalid_argument);
  EXPECT_THROW(bootstrap_ci(v, BootstrapStatistic::spread, 0, 0.9, 1), std::invalid_argument);
}

TEST(Beyond, ImplementationSpreadExactZeroOrBootstrapped) {
  const std::vector<StoredRun> same(4, acc_run("fixed", 0.9, "abc"));
  const ImplementationSpread z = implementation_spread(same, Selection::last);
  EXPECT_TRUE(z.exactly_zero);
  EXPECT_EQ(z.spread, 0.0);
  EXPECT_EQ(z.spread_ci.high, 0.0);

  std::vector<StoredRun> differ = {acc_run("fixed", 0.90, "a"), acc_run("fixed", 0.92, "b"),
                                   acc_run("fixed", 0.91, "c")};
  const ImplementationSpread d = implementation_spread(differ, Selection::last, 300, 0.9, 7);
  EXPECT_FALSE(d.exactly_zero);
  EXPECT_NEAR(d.spread, 0.02, 1e-15);
  EXPECT_NEAR(d.sd, 0.01, 1e-15);
  EXPECT_LE(d.spread_ci.low, d.spread_ci.high);
  EXPECT_LE(d.spread_ci.high, 0.02 + 1e-15);
}

// ---- BUTTER -----------------------------------------------------------------------------

TEST(Butter, MinEpochTiesGoToTheEarliest) {
  // test loss 0.5, 0.2, 0.2, 0.3 -> epoch 2; test acc 0.6, 0.8, 0.8, 0.7 -> epoch 2
  const StoredRun r = make_run("s", "k", {{0.5, 0.6}, {0.2, 0.8}, {0.2, 0.8}, {0.3, 0.7}}, false);
  const Extremum lo = min_test_loss(r);
  EXPECT_EQ(lo.epoch, 2);
  EXPECT_EQ(lo.value, 0.2);
  EXPECT_EQ(max_test_accuracy(r).epoch, 2);
  // NaN never wins
  const StoredRun n = make_run("s", "k", {{nan_, 0.6}, {0.4, nan_}, {0.3, 0.5}}, false);
  EXPECT_EQ(min_test_loss(n).epoch, 3);
  EXPECT_EQ(max_test_accuracy(n).epoch, 1);
}

TEST(Butter, PerEpochSummaryOverRepetitions) {
  // three repetitions; the third stopped after one epoch; only the first has validation
  std::vector<StoredRun> runs = {
      make_run("r", "a", {{0.9, 0.1, 1.0, 0.1, 2.0}, {0.4, 0.6, 0.5, 0.5, 3.0}}, true),
      make_run("r", "b", {{0.7, 0.3, nan_, nan_, 4.0}, {0.6, 0.5, nan_, nan_, 5.0}}, false),
      make_run("r", "c", {{0.8, 0.2, nan_, nan_, 6.0}}, false)};
  const ButterSummary b = butter_summary(runs);
  EXPECT_EQ(b.setting, "r");
  auto find = [&](std::int64_t epoch, const std::string& series) -> const SeriesSummary* {
    for (const auto& e : b.per_epoch)
      if (e.epoch == epoch && e.series == series) return &e.summary;
    return nullptr;
  };
  const SeriesSummary* loss1 = find(1, "test_loss");
  ASSERT_NE(loss1, nullptr);
  EXPECT_EQ(loss1->count, 3u);
  EXPECT_EQ(loss1->min, 0.7);
  EXPECT_EQ(loss1->max, 0.9);
  EXPECT_EQ(loss1->median, 0.8);
  EXPECT_NEAR(loss1->q1, 0.75, 1e-15);
  EXPECT_NEAR(loss1->mean, 0.8, 1e-15);
  EXPECT_NEAR(loss1->std, 0.1, 1e-15);
  EXPECT_EQ(find(2, "test_loss")->count, 2u);
  EXPECT_EQ(find(1, "validation_loss")->count, 1u);
  EXPECT_EQ(find(1, "seconds")->mean, 4.0);
  EXPECT_NEAR(find(1, "train_loss")->mean, 1.8, 1e-15);  // make_run: train loss = test + 1
  EXPECT_EQ(find(3, "test_loss"), nullptr);
  // ordering: epoch, then train..., test..., validation..., seconds
  EXPECT_EQ(b.per_epoch.front().series, "train_loss");
  EXPECT_EQ(b.per_epoch.front().epoch, 1);
  EXPECT_EQ(b.per_epoch[10].series, "test_loss");
  EXPECT_EQ(b.per_epoch.back().series, "seconds");
  EXPECT_EQ(b.per_epoch.back().epoch, 2);
  EXPECT_EQ(b.per_epoch.size(), 2u * 31);  // 3 splits x 10 metrics + seconds, both epochs
  // min test loss per run: epoch 2 (0.4), 2 (0.6), 1 (0.8)
  ASSERT_EQ(b.extrema.size(), kMetricNames.size());
  const auto* loss = b.extremum("min_test_loss");
  ASSERT_NE(loss, nullptr);
  EXPECT_EQ(loss->epoch.median, 2.0);
  EXPECT_EQ(loss->epoch.min, 1.0);
  EXPECT_EQ(loss->value.median, 0.6);
  const auto* acc = b.extremum("max_test_accuracy");
  ASSERT_NE(acc, nullptr);
  EXPECT_EQ(acc->value.max, 0.6);
  EXPECT_EQ(acc->epoch.count, 3u);
  // Every test series BUTTER summarises has its extremum, in kMetricNames order.
  EXPECT_EQ(b.extrema[2].name, "max_test_cosine_similarity");
  EXPECT_EQ(b.extrema[4].name, "min_test_kullback_leibler_divergence");
  EXPECT_EQ(b.extrema[6].name, "min_test_mean_squared_error");
  EXPECT_EQ(b.extremum("max_test_mean_squared_error"), nullptr);
}

// Lower is better for losses and errors, higher for accuracy and cosine similarity; ties go
// to the earliest epoch, a NaN never wins.
TEST(Butter, TestExtremumOfEverySeries) {
  StoredRun r = make_run("s", "k", {{0.5, 0.6}, {0.2, 0.8}, {0.3, 0.7}}, false);
  const double mse[] = {0.5, nan_, 0.1}, cos[] = {0.9, 0.95, 0.95};
  for (int i = 0; i < 3; ++i) {
    r.epochs[i].test["mean_squared_error"] = mse[i];
    r.epochs[i].test["cosine_similarity"] = cos[i];
  }
  EXPECT_EQ(test_extremum(r, "mean_squared_error").epoch, 3);
  EXPECT_EQ(test_extremum(r, "mean_squared_error").value, 0.1);
  EXPECT_EQ(test_extremum(r, "cosine_similarity").epoch, 2);
  EXPECT_EQ(test_extremum(r, "loss").epoch, min_test_loss(r).epoch);
  EXPECT_TRUE(higher_is_better("accuracy"));
  EXPECT_FALSE(higher_is_better("kullback_leibler_divergence"));
  EXPECT_THROW(test_extremum(r, "f1"), std::invalid_argument);
  const ButterSummary b = butter_summary({r});
  EXPECT_EQ(b.extremum("min_test_mean_squared_error")->epoch.median, 3.0);
  EXPECT_EQ(b.extremum("max_test_cosine_similarity")->value.median, 0.95);
}

// ---- regression, identical metrics, diverged runs (issue 9) ----------------------------

namespace {

// A regression run: accuracy 0 (the old accuracy of a one-output regression), the given
// test loss (MSE) at its last epoch, its own final hash.
StoredRun regression_run(const std::string& setting, double loss, const std::string& hash) {
  StoredRun r =
      make_run(setting, setting + hash,
               {{loss * 2, 0.0, nan_, nan_, 1, "e1"}, {loss, 0.0, nan_, nan_, 1, hash}}, false);
  r.task = "regression";
  return r;
}

}  // namespace

TEST(Regression, TheSpreadIsTheTestLossAndAZeroAccuracySpreadIsFlagged) {
  const std::vector<StoredRun> runs = {regression_run("r", 0.031, "a"),
                                       regression_run("r", 0.029, "b"),
                                       regression_run("r", 0.035, "c")};
  EXPECT_TRUE(is_regression(runs));
  const SettingSummary s = summarize(runs, Selection::last);
  EXPECT_TRUE(s.regression);
  EXPECT_EQ(s.distinct_hashes, 3u);
  // The accuracy says nothing, and the summary says so rather than showing a bare 0.
  EXPECT_EQ(s.max_diff, 0.0);
  EXPECT_TRUE(s.acc_identical_despite_hashes);
  // The loss is what spreads.
  EXPECT_EQ(s.loss.n, 3u);
  EXPECT_EQ(s.loss.min, 0.029);
  EXPECT_EQ(s.loss.max, 0.035);
  EXPECT_NEAR(s.loss.max_diff, 0.006, 1e-15);
  EXPECT_NEAR(s.loss.mean, 0.095 / 3, 1e-15);
  EXPECT_GT(s.loss.std, 0.0);
  EXPECT_FALSE(s.loss.identical_despite_hashes);
  EXPECT_EQ(selected_metric(runs, Selection::last), (std::vector<double>{0.031, 0.029, 0.035}));
  // The implementation-only spread and the comparisons measure the loss too.
  const ImplementationSpread sp = implementation_spread(runs, Selection::last, 200, 0.9, 3);
  EXPECT_NEAR(sp.spread, 0.006, 1e-15);
  std::vector<StoredRun> other = {regression_run("q", 0.5, "d"), regression_run("q", 0.6, "e")};
  EXPECT_FALSE(std::isnan(compare_settings(runs, other, Selection::last).cohens_d));
  // Accuracy against loss compares nothing.
  const std::vector<StoredRun> cls = {acc_run("c", 0.5), acc_run("c", 0.6)};
  EXPECT_TRUE(std::isnan(compare_settings(runs, cls, Selection::last).cohens_d));
  // A setting with one classification run is not a regression setting.
  std::vector<StoredRun> mixed = runs;
  mixed[1].task = "binary";
  EXPECT_FALSE(is_regression(mixed));
}

TEST(Regression, IdenticalMetricWithDifferentHashesIsFlaggedOnlyThen) {
  // Classification: one accuracy, three hashes -> flagged; one hash -> not.
  const std::vector<StoredRun> differ = {acc_run("f", 0.9, "a"), acc_run("f", 0.9, "b"),
                                         acc_run("f", 0.9, "c")};
  const SettingSummary d = summarize(differ, Selection::last);
  EXPECT_EQ(d.max_diff, 0.0);
  EXPECT_TRUE(d.acc_identical_despite_hashes);
  const SettingSummary same =
      summarize(std::vector<StoredRun>(3, acc_run("f", 0.9, "a")), Selection::last);
  EXPECT_FALSE(same.acc_identical_despite_hashes);
  // Regression with the very same loss from different weights.
  const std::vector<StoredRun> r = {regression_run("r", 0.25, "a"), regression_run("r", 0.25, "b")};
  EXPECT_TRUE(summarize(r, Selection::last).loss.identical_despite_hashes);
}

TEST(Diverged, RunsAreCountedAndLeftOutNeverReadAsZero) {
  // Three runs; the third diverges at epoch 2 (loss NaN, accuracy of a NaN net).
  std::vector<StoredRun> runs = {
      make_run("s", "k0", {{0.5, 0.80, nan_, nan_, 1, "a1"}, {0.4, 0.90, nan_, nan_, 1, "a2"}},
               false),
      make_run("s", "k1", {{0.5, 0.82, nan_, nan_, 1, "b1"}, {0.3, 0.94, nan_, nan_, 1, "b2"}},
               false),
      make_run("s", "k2", {{0.6, 0.70, nan_, nan_, 1, "c1"}, {nan_, 0.10, nan_, nan_, 1, "c2"}},
               false)};
  runs[2].diverged = true;
  const SettingSummary last = summarize(runs, Selection::last);
  EXPECT_EQ(last.n, 3u);
  EXPECT_EQ(last.diverged, 1u);
  EXPECT_EQ(last.left_out, 1u);
  EXPECT_EQ(last.min_acc, 0.90);  // not 0.10: the diverged run is out
  EXPECT_EQ(last.max_acc, 0.94);
  EXPECT_NEAR(last.mean_acc, 0.92, 1e-15);
  EXPECT_NEAR(last.loss.max_diff, 0.1, 1e-15);
  EXPECT_EQ(last.loss.n, 2u);
  // best_loss selects epoch 1 for the diverged run, where it was finite: it counts.
  const SettingSummary best = summarize(runs, Selection::best_loss);
  EXPECT_EQ(best.diverged, 1u);
  EXPECT_EQ(best.left_out, 0u);
  EXPECT_EQ(best.min_acc, 0.70);
  // Every run diverged: no statistic, NaN (shown as "-"), never 0.
  std::vector<StoredRun> all = {runs[2], runs[2]};
  all[1].key = "k3";
  all[1].epochs[1].weight_hash = all[1].weight_hash =
      "d2";  // not bit-identical: measured, not exactly 0
  const SettingSummary none = summarize(all, Selection::last);
  EXPECT_EQ(none.left_out, 2u);
  EXPECT_TRUE(std::isnan(none.max_diff));
  EXPECT_TRUE(std::isnan(none.mean_acc));
  EXPECT_FALSE(none.acc_identical_despite_hashes);
  const ImplementationSpread sp = implementation_spread(all, Selection::last);
  EXPECT_EQ(sp.left_out, 2u);
  EXPECT_TRUE(std::isnan(sp.spread));
  const ImplementationSpread sp3 = implementation_spread(runs, Selection::last, 100, 0.9, 1);
  EXPECT_EQ(sp3.left_out, 1u);
  EXPECT_NEAR(sp3.spread, 0.04, 1e-15);
  // Comparisons use the finite runs only.
  const Comparison c =
      compare_settings(runs, {acc_run("t", 0.5), acc_run("t", 0.6)}, Selection::last);
  EXPECT_FALSE(std::isnan(c.cohens_d));
  EXPECT_FALSE(std::isnan(c.mannwhitney_p));
  // BUTTER's per-epoch summary counts the finite values.
  const ButterSummary b = butter_summary(runs);
  for (const auto& e : b.per_epoch)
    if (e.epoch == 2 && e.series == "test_loss") {
      EXPECT_EQ(e.summary.count, 3u);
      EXPECT_EQ(e.summary.finite, 2u);
    }
}

namespace detdl::variance {
namespace {

// 16-run groups resampled from a pool (the like-for-like comparison with the paper's maxima).
TEST(GroupSpread, PoolOfOneGroupIsThePool) {
  std::vector<double> v;
  for (int i = 0; i < 16; ++i) v.push_back(0.9 + 0.001 * i);
  const GroupSpread g = group_spread(v, 16, 24, 200, 1);
  EXPECT_NEAR(g.one_group_median, 0.015, 1e-12);
  EXPECT_NEAR(g.one_group_p05, 0.015, 1e-12);
  EXPECT_NEAR(g.largest_p95, 0.015, 1e-12);
  EXPECT_EQ(g.pool, 16u);
}

// One weak run among 64: a 16-run group holds it with probability 16/64, so one group's
// max - min is usually 0 but the largest of 24 groups almost always shows it (all 24 miss
// it with probability 0.75^24 = 0.1%): the paper's maximum over many groups sees what one
// group of 16 rarely does.
TEST(GroupSpread, OneWeakRunShowsInTheLargestOfManyGroups) {
  std::vector<double> v(63, 0.99);
  v.push_back(0.10);
  const GroupSpread g = group_spread(v, 16, 24, 4000, 7);
  EXPECT_EQ(g.one_group_median, 0.0);
  EXPECT_NEAR(g.one_group_p95, 0.89, 1e-12);
  EXPECT_NEAR(g.largest_median, 0.89, 1e-12);
  EXPECT_NEAR(g.largest_p05, 0.89, 1e-12);
  EXPECT_EQ(group_spread_rank(v, 16, 24, 4000, 7, 0.89), 1.0);
  EXPECT_LT(group_spread_rank(v, 16, 24, 4000, 7, 0.5), 0.01);
  // The share of groups that hold the weak run, from the one-group draws (16/64 = 0.25).
  const GroupSpread single = group_spread(v, 16, 1, 20000, 3);
  EXPECT_EQ(single.one_group_median, 0.0);
  EXPECT_NEAR(group_spread_rank(v, 16, 1, 20000, 3, 0.0), 0.75, 0.01);
}

TEST(GroupSpread, UniformPoolBoundsSeedAndErrors) {
  std::vector<double> v;
  for (int i = 0; i < 64; ++i) v.push_back(i);
  const GroupSpread a = group_spread(v, 16, 24, 2000, 11), b = group_spread(v, 16, 24, 2000, 11);
  EXPECT_EQ(a.one_group_median, b.one_group_median);  // seeded: the same numbers again
  EXPECT_LE(a.one_group_p05, a.one_group_median);
  EXPECT_LE(a.one_group_median, a.one_group_p95);
  EXPECT_LE(a.largest_p95, 63.0);
  EXPECT_GE(a.largest_median, a.one_group_median);
  // E[range of 16 of 64 values 0..63] = 63 * 15 / 17 = 55.6; the median is near it.
  EXPECT_NEAR(a.one_group_median, 63.0 * 15 / 17, 3.0);
  EXPECT_THROW(group_spread(v, 65, 1, 1, 1), std::invalid_argument);
  EXPECT_THROW(group_spread({}, 1, 1, 1, 1), std::invalid_argument);
  EXPECT_THROW(group_spread(v, 16, 0, 1, 1), std::invalid_argument);
}

}  // namespace
}  // namespace detdl::variance

namespace detdl::variance {
namespace {

// The dl-variance artifact's row: its definitions, every class (the last one included).
TEST(StudyRow, DefinitionsOfTheArtifactTable) {
  // Three runs, one epoch each, three classes; class 2 (the last) has the largest gap.
  std::vector<StoredRun> runs;
  const double acc[] = {0.90, 0.80, 0.85};
  const std::vector<std::vector<double>> cls = {{0.9, 0.8, 1.0}, {0.9, 0.7, 0.4}, {0.9, 0.75, 0.7}};
  for (int i = 0; i < 3; ++i) {
    StoredRun r = make_run(
        "s", "k" + std::to_string(i),
        {{0.1, acc[i], 0.2, acc[i], double(i + 1), "h" + std::to_string(i), cls[i]}}, true);
    r.repetition = i;
    r.test_class_counts = {250, 240, 260};
    r.experiment = {{"net", "lenet1"}};
    r.detdl_version = "1.2.3";
    runs.push_back(r);
  }
  const StudyRow row = study_row(runs, Selection::last, true);
  EXPECT_EQ(row.network, "lenet1");
  EXPECT_EQ(row.random_seed, -1);
  EXPECT_EQ(row.no_try, 3u);
  EXPECT_NEAR(row.max_accuracy_diff, 0.10, 1e-12);
  EXPECT_NEAR(row.std_dev_accuracy, 0.05, 1e-12);  // sample SD of 0.90, 0.80, 0.85
  EXPECT_EQ(row.max_diff_label, 2);                // the last class counts
  EXPECT_NEAR(row.max_per_label_acc_diff, 0.6, 1e-12);
  EXPECT_EQ(row.max_label_accuracy, 1.0);
  EXPECT_EQ(row.min_label_accuracy, 0.4);
  EXPECT_EQ(row.no_samples_max_diff, 260);
  EXPECT_EQ(row.max_std_label, 2);
  EXPECT_NEAR(row.max_per_label_acc_std, 0.3, 1e-12);
  EXPECT_EQ(row.no_samples_max_std, 260);
  // The study's loop never reached class 2: it would have reported class 1's gap (0.1).
  EXPECT_NEAR(row.max_per_label_acc_diff_study_loop, 0.1, 1e-12);
  EXPECT_NEAR(row.max_per_label_acc_std_study_loop, 0.05, 1e-12);
  EXPECT_NEAR(row.max_convergent_diff, 2.0, 1e-12);  // seconds 1, 2, 3 (no split times)
  EXPECT_NEAR(row.mean_convergent, 2.0, 1e-12);
  EXPECT_EQ(row.max_convergent_epoch, 1.0);
  ASSERT_EQ(row.tries.size(), 3u);
  EXPECT_EQ(row.tries[1].repetition, 1);
  EXPECT_EQ(row.tries[1].accuracy, 0.80);
  // Identical runs: the study's loop never takes a class (strictly larger than 0).
  std::vector<StoredRun> same(3, runs[0]);
  const StudyRow id = study_row(same, Selection::last, false);
  EXPECT_EQ(id.random_seed, 1);
  EXPECT_EQ(id.max_accuracy_diff, 0.0);
  EXPECT_EQ(id.max_diff_label, -1);
  EXPECT_EQ(id.max_per_label_acc_diff, 0.0);
  EXPECT_EQ(id.no_samples_max_diff, -1);
  EXPECT_THROW(study_row({}, Selection::last, false), std::invalid_argument);
}

}  // namespace
}  // namespace detdl::variance
