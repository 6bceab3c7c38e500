#include "variance/paper_tables.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace detdl::variance {

namespace {

// 100 sd / mean; NaN when either is NaN or the mean is 0.
double relative_sd(double sd, double mean) {
  return std::isnan(sd) || std::isnan(mean) || mean == 0 ? kNaN : 100 * sd / mean;
}

double max_minus_min(const std::vector<double>& v) {
  if (v.empty()) return kNaN;
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return *hi - *lo;
}

}  // namespace

PaperRow paper_row(const std::vector<StoredRun>& runs, Selection criterion,
                   const std::string& group) {
  if (runs.empty()) throw std::invalid_argument("paper_row: no runs");
  for (const auto& r : runs)
    if (r.setting != runs.front().setting)
      throw std::invalid_argument("paper_row: runs of settings '" + runs.front().setting +
                                  "' and '" + r.setting + "' mixed");
  PaperRow row;
  row.setting = runs.front().setting;
  row.group = group;
  row.criterion = criterion;
  std::vector<double> acc, time;
  std::vector<std::vector<double>> per_class;
  for (const auto& r : runs) {
    const SelectedEpoch e = select_epoch(r, criterion);
    // The study's statistics take a run whose selected test loss and accuracy are finite
    // (stats.h: a diverged run is left out, not counted as 0).
    if (!std::isfinite(e.test_loss) || !std::isfinite(e.test_accuracy)) continue;
    acc.push_back(e.test_accuracy);
    time.push_back(e.convergence_time);
    per_class.push_back(e.class_accuracy);
    row.classes = std::max(row.classes, e.class_accuracy.size());
  }
  row.n = acc.size();
  if (acc.empty()) return row;
  row.mean = mean_of(acc);
  row.max_diff = max_minus_min(acc);
  row.sd = sample_std(acc);
  row.sd_ci = std_confidence_interval(row.sd, acc.size(), 0.90);
  row.relative_sd = relative_sd(row.sd, row.mean);
  row.time_relative_sd = relative_sd(sample_std(time), mean_of(time));
  const double t_min = *std::min_element(time.begin(), time.end());
  row.time_diff_pct = t_min > 0 ? 100 * max_minus_min(time) / t_min : kNaN;

  for (std::size_t c = 0; c < row.classes; ++c) {
    std::vector<double> v;
    for (const auto& pc : per_class)
      if (c < pc.size() && std::isfinite(pc[c])) v.push_back(pc[c]);
    if (v.empty()) continue;
    const auto cls = static_cast<std::int64_t>(c);
    const double diff = max_minus_min(v), sd = sample_std(v), rel = relative_sd(sd, mean_of(v));
    if (row.class_of_max_diff < 0 || diff > row.class_max_diff) {
      row.class_max_diff = diff;
      row.class_of_max_diff = cls;
    }
    if (!std::isnan(sd) && (row.class_of_max_sd < 0 || sd > row.class_max_sd)) {
      row.class_max_sd = sd;
      row.class_sd_ci = std_confidence_interval(sd, v.size(), 0.90);
      row.class_of_max_sd = cls;
    }
    if (!std::isnan(rel) && (row.class_of_max_relative_sd < 0 || rel > row.class_max_relative_sd)) {
      row.class_max_relative_sd = rel;
      row.class_of_max_relative_sd = cls;
    }
  }

  if (row.classes > 0) {
    const double k = static_cast<double>(row.classes);
    std::vector<double> strong;
    for (std::size_t i = 0; i < acc.size(); ++i) {
      if (acc[i] < weak_threshold(row.classes))
        ++row.weak_runs;
      else
        strong.push_back(acc[i]);
      const auto& pc = per_class[i];
      if (std::any_of(pc.begin(), pc.end(),
                      [&](double a) { return std::isfinite(a) && a < 1 / k; }))
        ++row.runs_losing_a_class;
    }
    row.max_diff_without_weak = max_minus_min(strong);
  }
  return row;
}

std::vector<PaperMaximum> paper_maxima(const std::vector<PaperRow>& rows) {
  const bool paper_criteria = std::any_of(rows.begin(), rows.end(), [](const PaperRow& r) {
    return r.criterion == Selection::best_loss || r.criterion == Selection::best_acc;
  });
  std::vector<PaperMaximum> out;
  auto take = [](PaperFigure& f, double v, const PaperRow& r) {
    if (std::isnan(v) || (!std::isnan(f.value) && v <= f.value)) return;
    f = {v, r.setting, r.criterion};
  };
  for (const auto& r : rows) {
    if (paper_criteria && r.criterion == Selection::last) continue;
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const PaperMaximum& m) { return m.group == r.group; });
    if (it == out.end()) {
      out.push_back({});
      out.back().group = r.group;
      it = out.end() - 1;
    }
    PaperMaximum& m = *it;
    if (std::find(m.settings.begin(), m.settings.end(), r.setting) == m.settings.end())
      m.settings.push_back(r.setting);
    if (std::find(m.criteria.begin(), m.criteria.end(), r.criterion) == m.criteria.end())
      m.criteria.push_back(r.criterion);
    ++m.rows;
    take(m.max_diff, r.max_diff, r);
    take(m.sd, r.sd, r);
    take(m.class_max_diff, r.class_max_diff, r);
    take(m.max_diff_without_weak, r.max_diff_without_weak, r);
    take(m.time_diff_pct, r.time_diff_pct, r);
    m.weak_runs = std::max(m.weak_runs, r.weak_runs);
    m.runs_losing_a_class = std::max(m.runs_losing_a_class, r.runs_losing_a_class);
  }
  return out;
}

double weak_threshold(std::size_t classes) {
  if (classes == 0) return kNaN;
  const double chance = 1.0 / static_cast<double>(classes);
  return std::min(2 * chance, (1 + chance) / 2);
}

std::string default_table_group(const std::string& varies) {
  return varies.find("algorithmic") != std::string::npos ? "default" : "fixed-seed";
}

}  // namespace detdl::variance
