// CSV tables of a study (the dl-variance artifact tables plus detdl's own).
//
// Format: a header line, then one line per row, lines ending in "\n"; fields separated by
// ','; a field holding ',', '"', CR or LF is quoted with '"' and its '"' doubled (RFC 4180);
// numbers in C locale ('.' decimal) with the shortest text that reads back to the same
// double (std::to_chars); NaN is an empty field (pandas and R read it as missing), +-inf
// is "inf" / "-inf". Each file is written to "<path>.tmp.<pid>" and renamed over `path`,
// so a reader never sees half a table. Errors throw std::runtime_error naming the path.
#pragma once
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "variance/paper_tables.h"
#include "variance/stats.h"
#include "variance/store.h"

namespace detdl::variance {

std::string csv_field(std::string_view text);  // quoted only when it must be
std::string csv_number(double value);          // "" for NaN
std::string csv_number(std::int64_t value);

// The dl-variance artifact's two tables, with its README's columns in its order (values
// from StudyRow, stats.h), then one column of detdl's: the setting, which the study's rows
// told apart by library versions instead.
// analysis_result.csv: backend ("detdl"), backend_version (detdl's), cuda_version,
// cudnn_version (empty: detdl's own kernels), network, random_seed (1 / -1), stopping_type
// (the criterion), no_try, max_accuracy_diff, max_accuracy, min_accuracy,
// std_dev_accuracy, mean_accuracy, max_diff_label, max_per_label_acc_diff,
// max_label_accuracy, min_label_accuracy, no_samples_max_diff, max_std_label,
// max_per_label_acc_std, no_samples_max_std, max_convergent_diff, max_convergent,
// min_convergent, std_dev_convergent, mean_convergent, max_convergent_diff_epoch,
// max_convergent_epoch, min_convergent_epoch, std_dev_convergent_epoch,
// mean_convergent_epoch, setting, then max_per_label_acc_diff_study_loop and
// max_per_label_acc_std_study_loop (the study's range(max(labels)) loop, last class left
// out: what its code would have reported).
void write_study_result(const std::filesystem::path& path, const std::vector<StudyRow>& rows);
// analysis_raw.csv: backend, backend_version, cuda_version, cudnn_version, network,
// random_seed, stopping_type, try, accuracy, convergent, convergent_epoch, setting.
void write_study_raw(const std::filesystem::path& path, const std::vector<StudyRow>& rows);

// detdl_result.csv (detdl's richer table): one row per summary (setting x criterion), in the given order.
// Columns: setting, criterion, n, max_acc, min_acc, mean_acc, std_acc, std_ci_low,
// std_ci_high, max_diff, class_max_diff, class_with_max_diff, mean_convergence_time,
// max_convergence_time_diff_pct, min_epoch, max_epoch, distinct_hashes, mean_churn,
// regression (0/1), diverged, left_out, acc_identical_despite_hashes (0/1), max_loss,
// min_loss, mean_loss, std_loss, std_loss_ci_low, std_loss_ci_high, loss_max_diff,
// loss_identical_despite_hashes (0/1); the accuracy and loss statistics are over the
// n - left_out runs whose selected values are finite (stats.h). class_max_diff is the
// largest per-class difference; class_with_max_diff is empty when no class has one.
void write_analysis_result(const std::filesystem::path& path,
                           const std::vector<SettingSummary>& summaries);

// detdl_raw.csv: one row per run and criterion (runs in the given order, criteria in the
// given order within a run). Columns: setting, repetition, key, criterion, selected_epoch,
// test_accuracy, convergence_time, convergence_epoch, weight_hash (at the selected epoch),
// test_loss, regression (0/1), diverged (0/1), acc_class_0 .. acc_class_{K-1}, K = the
// most classes any row has (missing ones empty).
void write_analysis_raw(const std::filesystem::path& path, const std::vector<StoredRun>& runs,
                        const std::vector<Selection>& criteria);

// butter_summary.csv: columns setting, epoch, series, count, finite, min, max, mean, std,
// q1, median, q3. Per setting: its per-epoch rows, then twenty rows with an empty epoch,
// series <extremum>_epoch and <extremum> for each test metric in kMetricNames order
// (min_test_loss, max_test_accuracy, max_test_cosine_similarity, min_test_hinge, ...,
// min_test_root_mean_squared_error, min_test_squared_hinge: the per-run best epochs and
// values summarised across runs; stats.h test_extremum).
void write_butter_summary(const std::filesystem::path& path,
                          const std::vector<ButterSummary>& summaries);

// comparisons.csv: columns setting_a, setting_b, criterion, levene_p, mannwhitney_u,
// mannwhitney_p_two_sided (scipy's method="asymptotic"), cohens_d,
// mannwhitney_p_scipy_legacy_one_sided (scipy < 1.7's default, half the two-sided p, which
// the dl-variance analysis reported; variance/stats.h).
void write_comparisons(const std::filesystem::path& path,
                       const std::vector<Comparison>& comparisons);

// The paper's tables (variance/paper_tables.h) into `dir`; accuracies as fractions, relative
// SDs and the time difference in %, a class -1 when there is none.
// paper_table2.csv: setting, table_group, criterion, n, classes, mean_accuracy,
// max_accuracy_diff, std_accuracy, std_ci_low, std_ci_high, max_per_label_acc_diff,
// label_of_max_diff, max_per_label_acc_std, label_std_ci_low, label_std_ci_high,
// label_of_max_std, weak_runs, runs_losing_a_class, max_accuracy_diff_without_weak.
// paper_table3.csv: setting, table_group, criterion, n, relative_std_accuracy_pct,
// max_per_label_relative_std_pct, label_of_max_relative_std,
// convergence_time_relative_std_pct, convergence_time_diff_pct.
// paper_maxima.csv: one row per group and figure: table_group, figure (max_accuracy_diff,
// max_accuracy_diff_without_weak, std_accuracy, max_per_label_acc_diff,
// convergence_time_diff_pct), value, setting, criterion (where it came from), settings (the
// group's, joined by "; "), criteria (joined by "; "), rows, weak_runs,
// runs_losing_a_class (the most in one row).
void write_paper_tables(const std::filesystem::path& dir, const std::vector<PaperRow>& rows,
                        const std::vector<PaperMaximum>& maxima);

}  // namespace detdl::variance
