// Statistics of a study, over StoredRuns (variance/store.h), in float64. Pure functions:
// no SQLite, no clock, no unseeded randomness (the bootstrap takes its seed).
//
// What follows the dl-variance study (docs: shared/design/VARIANCE.md):
//   - a selection criterion picks one epoch per run (best_loss, best_acc, last);
//   - summarize(): max/min/mean/sample SD of the test accuracy there, max - min, per-class
//     max - min, a 90% confidence interval for the SD (chi-square based, exact quantiles
//     from the inverse regularized incomplete gamma function, not Wilson-Hilferty),
//     convergence time and epoch;
//   - between two settings: Levene's test with the median as centre (Brown-Forsythe; the
//     default of scipy.stats.levene), Mann-Whitney U (normal approximation with tie and
//     continuity correction, two-sided; scipy's method="asymptotic"; and the one-sided p of
//     scipy < 1.7's default, which the study's analysis reported), Cohen's d (pooled SD).
// What goes further: prediction churn, the first epoch at which runs diverge, bootstrap
// intervals, an exact "zero" verdict for the implementation-only spread, and BUTTER's
// per-epoch summary over repetitions (shared/design/BUTTER.md).
//
// Accuracies are fractions in [0, 1], as the run records hold them; times are seconds.
#pragma once
#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "variance/store.h"

namespace detdl::variance {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Splits runs into settings, in order of first appearance (Store::runs is already sorted
// by setting, so this gives the settings in name order).
std::vector<std::vector<StoredRun>> group_by_setting(const std::vector<StoredRun>& runs);

// ---- selection criteria -----------------------------------------------------------------

enum class Selection { best_loss, best_acc, last };
inline constexpr std::array<Selection, 3> kSelections = {Selection::best_loss, Selection::best_acc,
                                                         Selection::last};
std::string_view selection_name(Selection s);      // "best_loss" | "best_acc" | "last"
Selection parse_selection(std::string_view name);  // throws std::invalid_argument

struct SelectedEpoch {
  std::int64_t epoch = 0;              // 1-based
  double test_accuracy = kNaN;         // at that epoch
  double test_loss = kNaN;             // at that epoch (MSE for a regression run)
  std::vector<double> class_accuracy;  // test, per class, at that epoch
  double convergence_time = kNaN;      // epochs 1..epoch: train + validation seconds (else seconds)
  std::string weight_hash;             // at that epoch
};

// best_loss: the epoch with the lowest validation loss; best_acc: the highest validation
// accuracy; without validation metrics (in any epoch) the test split stands in. Ties go to
// the earliest epoch; a NaN never wins (all NaN: epoch 1). last: the last epoch.
// Throws std::invalid_argument for a run without epochs.
SelectedEpoch select_epoch(const StoredRun& run, Selection criterion);

// ---- distributions ----------------------------------------------------------------------

double regularized_gamma_p(double a, double x);            // P(a, x), a > 0, x >= 0
double regularized_gamma_p_inverse(double a, double p);    // x with P(a, x) = p, 0 < p < 1
double chi_square_quantile(double p, double df);           // lower-tail p quantile
double regularized_beta(double x, double a, double b);     // I_x(a, b)
double f_distribution_sf(double x, double d1, double d2);  // P(F > x)
double normal_sf(double z);                                // P(Z > z)

// ---- descriptive ------------------------------------------------------------------------

struct Interval {
  double low = kNaN, high = kNaN;
};

double mean_of(const std::vector<double>& v);     // NaN when empty
double sample_std(const std::vector<double>& v);  // n - 1 denominator; NaN when n < 2
// Ascending, NaN after every number (PostgreSQL's float order, also after +inf).
std::vector<double> sorted_nan_last(std::vector<double> v);
// numpy's default ('linear') quantile of an already sorted_nan_last vector: position
// q (n - 1), interpolated like numpy's _lerp; an exact position takes that element as is,
// so a NaN neighbour only matters when the position falls between the two.
double quantile_linear(const std::vector<double>& sorted, double q);
// Chi-square interval for a normal SD from the sample SD of n values:
// [sd sqrt((n-1)/chi2_{1-a/2}), sd sqrt((n-1)/chi2_{a/2})], a = 1 - confidence.
Interval std_confidence_interval(double sd, std::size_t n, double confidence);

// ---- one setting ------------------------------------------------------------------------

// What a setting's spread is measured in: the test accuracy for classification; the test
// loss for regression (MSE), whose accuracy says little (0 for every run, or BUTTER's
// binary accuracy at 0.5). A setting is regression when all its runs are.
bool is_regression(const std::vector<StoredRun>& runs);

// The value of the setting's metric (above) at the selected epoch, per run. A run whose
// value is not finite (a run that diverged before that epoch) is left out: `left_out`
// counts them.
std::vector<double> selected_metric(const std::vector<StoredRun>& runs, Selection criterion,
                                    std::size_t* left_out = nullptr);

struct SpreadOf {
  std::size_t n = 0;  // finite values used
  double max = kNaN, min = kNaN, mean = kNaN, std = kNaN;
  Interval std_ci;         // 90%
  double max_diff = kNaN;  // max - min
  // More than one distinct final weight hash among the runs used, and yet max - min is
  // exactly 0: the table says so instead of showing a bare 0.
  bool identical_despite_hashes = false;
};

struct SettingSummary {
  std::string setting;
  Selection criterion = Selection::last;
  std::size_t n = 0;         // runs of the setting
  bool regression = false;   // is_regression: `loss` is the spread that matters
  std::size_t diverged = 0;  // runs that diverged (StoredRun::diverged)
  // Runs left out of the accuracy statistics below: the test loss or accuracy at their
  // selected epoch is not finite. The statistics are over the n - left_out others.
  std::size_t left_out = 0;
  double max_acc = kNaN, min_acc = kNaN, mean_acc = kNaN, std_acc = kNaN;
  Interval std_ci;                            // 90%
  double max_diff = kNaN;                     // max_acc - min_acc
  bool acc_identical_despite_hashes = false;  // see SpreadOf
  SpreadOf loss;                          // the test loss at the selected epoch, over the same runs
  std::vector<double> class_max_diff;     // per class: max - min over runs (NaN: no rows)
  double class_max_diff_value = kNaN;     // the largest of them
  std::int64_t class_with_max_diff = -1;  // its class (ties: lowest); -1 when none
  double mean_convergence_time = kNaN, min_convergence_time = kNaN, max_convergence_time = kNaN;
  double convergence_time_diff_pct = kNaN;    // (max - min) / min * 100
  std::int64_t min_epoch = 0, max_epoch = 0;  // selected epochs
  std::size_t distinct_hashes = 0;            // distinct final weight hashes
  bool all_identical = false;                 // distinct_hashes == 1
  // Mean pairwise churn of the final test predictions (NaN when n < 2 or a run has none).
  // Whatever the criterion: per-epoch predictions live in the store (Store::predictions_at);
  // a caller who wants churn at the selected epochs overwrites it via mean_pairwise_churn.
  double mean_churn = kNaN;
};

// `runs` must all be of one setting. Throws std::invalid_argument when empty or mixed.
SettingSummary summarize(const std::vector<StoredRun>& runs, Selection criterion);

// One row of the dl-variance artifact's analysis_result.csv (its README's columns; its
// analysis code's definitions): one setting ("experimental set") and criterion. Accuracies
// are fractions; SDs are sample SDs (Python's statistics.stdev). Per class, over every class
// (the study's code looped over range(max(labels)) and so never looked at the last class;
// detdl does not repeat that): the class with the largest max - min gap and its max and
// min, the class with the largest SD; as in the study, a class is taken only when its
// value is strictly larger than the best so far from 0, so identical runs give label -1
// and zeros. no_samples_* are the class's test rows (-1 when the records lack
// test_class_counts). Convergence: study_row times are SelectedEpoch::convergence_time
// (training + validation), epochs the selected epoch numbers.
struct StudyRow {
  std::string setting, network, backend_version, criterion;
  int random_seed = 1;  // 1: fixed-seed (no algorithmic seed varies), -1: seeds vary
  std::size_t no_try = 0;
  double max_accuracy_diff = kNaN, max_accuracy = kNaN, min_accuracy = kNaN,
         std_dev_accuracy = kNaN, mean_accuracy = kNaN;
  std::int64_t max_diff_label = -1;
  double max_per_label_acc_diff = 0, max_label_accuracy = 0, min_label_accuracy = 0;
  std::int64_t no_samples_max_diff = -1;
  std::int64_t max_std_label = -1;
  double max_per_label_acc_std = 0;
  std::int64_t no_samples_max_std = -1;
  double max_convergent_diff = kNaN, max_convergent = kNaN, min_convergent = kNaN,
         std_dev_convergent = kNaN, mean_convergent = kNaN;
  double max_convergent_diff_epoch = kNaN, max_convergent_epoch = kNaN, min_convergent_epoch = kNaN,
         std_dev_convergent_epoch = kNaN, mean_convergent_epoch = kNaN;
  // The study's own loop, range(max(labels)), which leaves the last class out: the largest
  // per-class gap and SD it would have reported (to measure whether the slip matters).
  double max_per_label_acc_diff_study_loop = 0, max_per_label_acc_std_study_loop = 0;
  // analysis_raw.csv: per run (the study's `try`, 0-based repetition order here).
  struct Try {
    std::int64_t repetition = 0;
    double accuracy = kNaN, convergent = kNaN;
    std::int64_t convergent_epoch = 0;
  };
  std::vector<Try> tries;
};
// Runs of one setting, their usable (finite) values only. Throws std::invalid_argument
// when `runs` is empty or mixed.
StudyRow study_row(const std::vector<StoredRun>& runs, Selection criterion, bool seeds_vary);

// ---- two settings -----------------------------------------------------------------------

struct TestResult {
  double statistic = kNaN, p = kNaN;
};
// Levene's W with centre = each group's median (Brown-Forsythe), p from F(k-1, N-k).
// Needs k >= 2 non-empty groups and N > k (else std::invalid_argument). NaN in -> NaN out.
TestResult levene_median(const std::vector<std::vector<double>>& groups);
// statistic = U of sample a (U1, scipy >= 1.7); p two-sided from the normal approximation
// with tie correction and continuity correction 0.5, clipped to 1.
TestResult mann_whitney_u(const std::vector<double>& a, const std::vector<double>& b);
// scipy.stats.mannwhitneyu before 1.7 with its default alternative=None, which the
// dl-variance analysis called: statistic = min(U1, U2), p = sf(|z|) with z from the larger U
// (continuity and tie correction as above): one-sided, half the two-sided p. Faithful to
// its quirk: when every value is tied (identical runs) the SD is 0, |z| is infinite and p
// is 0, not 1.
TestResult mann_whitney_u_scipy_legacy(const std::vector<double>& a, const std::vector<double>& b);
// (mean_a - mean_b) / pooled SD with n_a + n_b - 2 degrees of freedom.
double cohens_d(const std::vector<double>& a, const std::vector<double>& b);

struct Comparison {
  std::string setting_a, setting_b;
  Selection criterion = Selection::last;
  double levene_p = kNaN, mannwhitney_u = kNaN, mannwhitney_p = kNaN, cohens_d = kNaN;
  double mannwhitney_p_legacy = kNaN;  // mann_whitney_u_scipy_legacy: the study's one-sided p
};
// The three tests on the selected values of the settings' metric (test accuracy, or test
// loss when both are regression; NaN everywhere when only one is), finite values only.
Comparison compare_settings(const std::vector<StoredRun>& a, const std::vector<StoredRun>& b,
                            Selection criterion);

// ---- beyond the study -------------------------------------------------------------------

// Fraction of test rows whose predicted class differs. Throws std::invalid_argument when
// the lengths differ; NaN for two empty vectors.
double prediction_churn(const std::vector<std::int32_t>& a, const std::vector<std::int32_t>& b);
// Mean over all n (n - 1) / 2 pairs; NaN when n < 2.
double mean_pairwise_churn(const std::vector<std::vector<std::int32_t>>& predictions);

// The first epoch (1-based) whose weight hash differs between the two runs (an epoch that
// only one of them has counts as differing); 0 when they never differ.
std::int64_t first_divergence_epoch(const StoredRun& a, const StoredRun& b);
// The earliest epoch at which any two runs of the setting differ; 0 when none do.
std::int64_t first_divergence_epoch(const std::vector<StoredRun>& runs);

enum class BootstrapStatistic { sample_std, spread };  // spread = max - min
// Percentile bootstrap: `resamples` resamples with replacement, indices drawn from
// std::mt19937_64(seed) by rejection (unbiased, and the same on every platform, unlike
// std::uniform_int_distribution), interval = the (1-c)/2 and (1+c)/2 linear quantiles.
Interval bootstrap_ci(const std::vector<double>& values, BootstrapStatistic statistic,
                      std::size_t resamples, double confidence, std::uint64_t seed);

// The paper's figures are not one group's max - min: each is the largest over about two dozen
// groups of 16 runs (its library combinations x both criteria; VARIANCE.md). From a pool of
// n >= group_size runs, without replacement (each group is group_size distinct runs, as
// the study's runs were):
//   one_group:  the distribution of one group's max - min (`draws` random groups);
//   largest_of: the distribution of the largest max - min over `groups` independent groups
//               (`draws` repetitions of drawing `groups` groups), the like-for-like
//               counterpart of a published maximum.
// Quantiles are quantile_linear's; indices come from std::mt19937_64(seed) by rejection, as
// bootstrap_ci's. With n == group_size every group is the pool (one value). Throws
// std::invalid_argument for an empty pool, n < group_size, or a zero count.
struct GroupSpread {
  std::size_t pool = 0, group_size = 0, groups = 0;
  double one_group_median = kNaN, one_group_p05 = kNaN, one_group_p95 = kNaN;
  double largest_median = kNaN, largest_p05 = kNaN, largest_p95 = kNaN;
};
GroupSpread group_spread(const std::vector<double>& values, std::size_t group_size,
                         std::size_t groups, std::size_t draws, std::uint64_t seed);
// The share of `draws` largest-of-`groups` values at or below `reference` (same draws as
// group_spread with the same arguments).
double group_spread_rank(const std::vector<double>& values, std::size_t group_size,
                         std::size_t groups, std::size_t draws, std::uint64_t seed,
                         double reference);

// "Is the spread that only the implementation causes zero?" For a fixed-seed setting, in
// the setting's metric (is_regression: test loss, else test accuracy), over the runs whose
// value is finite.
struct ImplementationSpread {
  std::size_t n = 0;
  std::size_t left_out = 0;  // runs whose value is not finite
  // Every run has the same weight hash at every epoch (so the same final weights): the
  // runs are bit-identical, the spread is zero with certainty and no sampling is needed.
  bool exactly_zero = false;
  double spread = kNaN, sd = kNaN;  // of the selected test accuracy
  Interval spread_ci, sd_ci;        // bootstrap; [0, 0] when exactly_zero
};
ImplementationSpread implementation_spread(const std::vector<StoredRun>& runs, Selection criterion,
                                           std::size_t resamples = 2000, double confidence = 0.90,
                                           std::uint64_t seed = 1);

// ---- BUTTER: per-epoch summary over the repetitions of one experiment --------------------

// min/max are the ends of the NaN-last order (max is NaN when any value is NaN, min only
// when all are); mean and std are plain float64 arithmetic over all values, so a NaN
// anywhere makes them NaN (PostgreSQL's aggregates behave the same); `finite` counts the
// values that are neither NaN nor infinite. count 0: every field NaN.
struct SeriesSummary {
  std::size_t count = 0, finite = 0;
  double min = kNaN, max = kNaN, mean = kNaN, std = kNaN, q1 = kNaN, median = kNaN, q3 = kNaN;
};
SeriesSummary summarize_series(const std::vector<double>& values);

struct Extremum {
  std::int64_t epoch = 0;  // 1-based
  double value = kNaN;
};
// The epoch of the lowest test loss / highest test accuracy; ties -> earliest; a NaN never
// wins (all NaN: epoch 1, value NaN). Throws std::invalid_argument for a run without epochs.
Extremum min_test_loss(const StoredRun& run);
Extremum max_test_accuracy(const StoredRun& run);
// The same for any test metric of kMetricNames: the highest value for accuracy and
// cosine_similarity (better is higher), the lowest for the other eight (losses and errors).
// Throws std::invalid_argument for an unknown metric or a run without epochs.
bool higher_is_better(std::string_view metric);
Extremum test_extremum(const StoredRun& run, std::string_view metric);

struct EpochSeries {
  std::int64_t epoch = 0;
  std::string series;  // "<split>_<metric>" (e.g. "test_loss") or "seconds"
  SeriesSummary summary;
};
struct ButterSummary {
  std::string setting;
  // Ordered by epoch, then train, test, validation metrics in kMetricNames order, then
  // seconds; a series appears at an epoch when at least one run has it there.
  std::vector<EpochSeries> per_epoch;
  // Per test metric (kMetricNames order), each run's best epoch and value (test_extremum)
  // summarised across runs: name "min_test_loss", "max_test_accuracy",
  // "min_test_mean_squared_error", "min_test_kullback_leibler_divergence", ...
  struct ExtremumSeries {
    std::string name;
    SeriesSummary epoch, value;
  };
  std::vector<ExtremumSeries> extrema;
  const ExtremumSeries* extremum(std::string_view name) const;  // null when absent
};
// `runs`: the repetitions of one experiment (one setting). Throws std::invalid_argument
// when empty or mixed.
ButterSummary butter_summary(const std::vector<StoredRun>& runs);

}  // namespace detdl::variance
