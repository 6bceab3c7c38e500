#include "variance/export.h"

#include <unistd.h>

#include <charconv>
#include <cmath>
#include <fstream>
#include <stdexcept>
#include <system_error>

namespace detdl::variance {

namespace {

using Row = std::vector<std::string>;

std::string join(const Row& row) {
  std::string line;
  for (std::size_t i = 0; i < row.size(); ++i) {
    if (i) line += ',';
    line += row[i];
  }
  line += '\n';
  return line;
}

// Writes header + rows to a temporary file beside `path`, then renames it over `path`.
void write_table(const std::filesystem::path& path, const Row& header,
                 const std::vector<Row>& rows) {
  for (const auto& r : rows)
    if (r.size() != header.size())
      throw std::logic_error("csv " + path.string() + ": row of " + std::to_string(r.size()) +
                             " fields under a header of " + std::to_string(header.size()));
  const std::filesystem::path tmp = path.string() + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("csv " + path.string() + ": cannot open " + tmp.string());
    std::vector<std::string> quoted;
    for (const auto& h : header) quoted.push_back(csv_field(h));
    out << join(quoted);
    for (const auto& r : rows) out << join(r);
    out.flush();
    if (!out) {
      out.close();
      std::filesystem::remove(tmp);
      throw std::runtime_error("csv " + path.string() + ": write failed");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    throw std::runtime_error("csv " + path.string() + ": rename failed: " + ec.message());
  }
}

std::string number(std::size_t v) { return std::to_string(v); }

}  // namespace

std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string csv_number(double value) {
  if (std::isnan(value)) return "";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, value);  // shortest round trip, C locale
  return std::string(buf, res.ptr);
}

std::string csv_number(std::int64_t value) { return std::to_string(value); }

void write_analysis_result(const std::filesystem::path& path,
                           const std::vector<SettingSummary>& summaries) {
  const Row header = {"setting",
                      "criterion",
                      "n",
                      "max_acc",
                      "min_acc",
                      "mean_acc",
                      "std_acc",
                      "std_ci_low",
                      "std_ci_high",
                      "max_diff",
                      "class_max_diff",
                      "class_with_max_diff",
                      "mean_convergence_time",
                      "max_convergence_time_diff_pct",
                      "min_epoch",
                      "max_epoch",
                      "distinct_hashes",
                      "mean_churn",
                      "regression",
                      "diverged",
                      "left_out",
                      "acc_identical_despite_hashes",
                      "max_loss",
                      "min_loss",
                      "mean_loss",
                      "std_loss",
                      "std_loss_ci_low",
                      "std_loss_ci_high",
                      "loss_max_diff",
                      "loss_identical_despite_hashes"};
  std::vector<Row> rows;
  for (const auto& s : summaries)
    rows.push_back({csv_field(s.setting),
                    std::string(selection_name(s.criterion)),
                    number(s.n),
                    csv_number(s.max_acc),
                    csv_number(s.min_acc),
                    csv_number(s.mean_acc),
                    csv_number(s.std_acc),
                    csv_number(s.std_ci.low),
                    csv_number(s.std_ci.high),
                    csv_number(s.max_diff),
                    csv_number(s.class_max_diff_value),
                    s.class_with_max_diff < 0 ? "" : csv_number(s.class_with_max_diff),
                    csv_number(s.mean_convergence_time),
                    csv_number(s.convergence_time_diff_pct),
                    csv_number(s.min_epoch),
                    csv_number(s.max_epoch),
                    number(s.distinct_hashes),
                    csv_number(s.mean_churn),
                    s.regression ? "1" : "0",
                    number(s.diverged),
                    number(s.left_out),
                    s.acc_identical_despite_hashes ? "1" : "0",
                    csv_number(s.loss.max),
                    csv_number(s.loss.min),
                    csv_number(s.loss.mean),
                    csv_number(s.loss.std),
                    csv_number(s.loss.std_ci.low),
                    csv_number(s.loss.std_ci.high),
                    csv_number(s.loss.max_diff),
                    s.loss.identical_despite_hashes ? "1" : "0"});
  write_table(path, header, rows);
}

void write_analysis_raw(const std::filesystem::path& path, const std::vector<StoredRun>& runs,
                        const std::vector<Selection>& criteria) {
  struct Line {
    const StoredRun* run;
    Selection criterion;
    SelectedEpoch selected;
  };
  std::vector<Line> lines;
  std::size_t classes = 0;
  for (const auto& r : runs)
    for (const Selection c : criteria) {
      lines.push_back({&r, c, select_epoch(r, c)});
      classes = std::max(classes, lines.back().selected.class_accuracy.size());
    }
  Row header = {"setting",          "repetition",        "key",
                "criterion",        "selected_epoch",    "test_accuracy",
                "convergence_time", "convergence_epoch", "weight_hash",
                "test_loss",        "regression",        "diverged"};
  for (std::size_t c = 0; c < classes; ++c) header.push_back("acc_class_" + std::to_string(c));
  std::vector<Row> rows;
  for (const auto& l : lines) {
    const SelectedEpoch& s = l.selected;
    Row row = {csv_field(l.run->setting),
               csv_number(l.run->repetition),
               csv_field(l.run->key),
               std::string(selection_name(l.criterion)),
               csv_number(s.epoch),
               csv_number(s.test_accuracy),
               csv_number(s.convergence_time),
               csv_number(s.epoch),
               csv_field(s.weight_hash),
               csv_number(s.test_loss),
               l.run->is_regression() ? "1" : "0",
               l.run->diverged ? "1" : "0"};
    for (std::size_t c = 0; c < classes; ++c)
      row.push_back(c < s.class_accuracy.size() ? csv_number(s.class_accuracy[c]) : "");
    rows.push_back(std::move(row));
  }
  write_table(path, header, rows);
}

void write_butter_summary(const std::filesystem::path& path,
                          const std::vector<ButterSummary>& summaries) {
  const Row header = {"setting", "epoch", "series", "count", "finite", "min",
                      "max",     "mean",  "std",    "q1",    "median", "q3"};
  std::vector<Row> rows;
  auto add = [&rows](const std::string& setting, const std::string& epoch,
                     const std::string& series, const SeriesSummary& s) {
    rows.push_back({csv_field(setting), epoch, csv_field(series), number(s.count), number(s.finite),
                    csv_number(s.min), csv_number(s.max), csv_number(s.mean), csv_number(s.std),
                    csv_number(s.q1), csv_number(s.median), csv_number(s.q3)});
  };
  for (const auto& b : summaries) {
    for (const auto& e : b.per_epoch) add(b.setting, csv_number(e.epoch), e.series, e.summary);
    for (const auto& x : b.extrema) {
      add(b.setting, "", x.name + "_epoch", x.epoch);
      add(b.setting, "", x.name, x.value);
    }
  }
  write_table(path, header, rows);
}

namespace {

Row study_prefix(const StudyRow& r) {
  return {"detdl",
          csv_field(r.backend_version),
          "",
          "",
          csv_field(r.network),
          csv_number(static_cast<std::int64_t>(r.random_seed)),
          csv_field(r.criterion)};
}

}  // namespace

void write_study_result(const std::filesystem::path& path, const std::vector<StudyRow>& rows) {
  const Row header = {"backend",
                      "backend_version",
                      "cuda_version",
                      "cudnn_version",
                      "network",
                      "random_seed",
                      "stopping_type",
                      "no_try",
                      "max_accuracy_diff",
                      "max_accuracy",
                      "min_accuracy",
                      "std_dev_accuracy",
                      "mean_accuracy",
                      "max_diff_label",
                      "max_per_label_acc_diff",
                      "max_label_accuracy",
                      "min_label_accuracy",
                      "no_samples_max_diff",
                      "max_std_label",
                      "max_per_label_acc_std",
                      "no_samples_max_std",
                      "max_convergent_diff",
                      "max_convergent",
                      "min_convergent",
                      "std_dev_convergent",
                      "mean_convergent",
                      "max_convergent_diff_epoch",
                      "max_convergent_epoch",
                      "min_convergent_epoch",
                      "std_dev_convergent_epoch",
                      "mean_convergent_epoch",
                      "setting",
                      "max_per_label_acc_diff_study_loop",
                      "max_per_label_acc_std_study_loop"};
  std::vector<Row> out;
  for (const auto& r : rows) {
    Row row = study_prefix(r);
    for (const std::string& v : {csv_number(static_cast<std::int64_t>(r.no_try)),
                                 csv_number(r.max_accuracy_diff),
                                 csv_number(r.max_accuracy),
                                 csv_number(r.min_accuracy),
                                 csv_number(r.std_dev_accuracy),
                                 csv_number(r.mean_accuracy),
                                 csv_number(r.max_diff_label),
                                 csv_number(r.max_per_label_acc_diff),
                                 csv_number(r.max_label_accuracy),
                                 csv_number(r.min_label_accuracy),
                                 csv_number(r.no_samples_max_diff),
                                 csv_number(r.max_std_label),
                                 csv_number(r.max_per_label_acc_std),
                                 csv_number(r.no_samples_max_std),
                                 csv_number(r.max_convergent_diff),
                                 csv_number(r.max_convergent),
                                 csv_number(r.min_convergent),
                                 csv_number(r.std_dev_convergent),
                                 csv_number(r.mean_convergent),
                                 csv_number(r.max_convergent_diff_epoch),
                                 csv_number(r.max_convergent_epoch),
                                 csv_number(r.min_convergent_epoch),
                                 csv_number(r.std_dev_convergent_epoch),
                                 csv_number(r.mean_convergent_epoch),
                                 csv_field(r.setting),
                                 csv_number(r.max_per_label_acc_diff_study_loop),
                                 csv_number(r.max_per_label_acc_std_study_loop)})
      row.push_back(v);
    out.push_back(std::move(row));
  }
  write_table(path, header, out);
}

void write_study_raw(const std::filesystem::path& path, const std::vector<StudyRow>& rows) {
  const Row header = {"backend",  "backend_version", "cuda_version",     "cudnn_version",
                      "network",  "random_seed",     "stopping_type",    "try",
                      "accuracy", "convergent",      "convergent_epoch", "setting"};
  std::vector<Row> out;
  for (const auto& r : rows)
    for (const auto& t : r.tries) {
      Row row = study_prefix(r);
      for (const std::string& v :
           {csv_number(t.repetition), csv_number(t.accuracy), csv_number(t.convergent),
            csv_number(t.convergent_epoch), csv_field(r.setting)})
        row.push_back(v);
      out.push_back(std::move(row));
    }
  write_table(path, header, out);
}

void write_comparisons(const std::filesystem::path& path,
                       const std::vector<Comparison>& comparisons) {
  const Row header = {"setting_a",     "setting_b",
                      "criterion",     "levene_p",
                      "mannwhitney_u", "mannwhitney_p_two_sided",
                      "cohens_d",      "mannwhitney_p_scipy_legacy_one_sided"};
  std::vector<Row> rows;
  for (const auto& c : comparisons)
    rows.push_back({csv_field(c.setting_a), csv_field(c.setting_b),
                    std::string(selection_name(c.criterion)), csv_number(c.levene_p),
                    csv_number(c.mannwhitney_u), csv_number(c.mannwhitney_p),
                    csv_number(c.cohens_d), csv_number(c.mannwhitney_p_legacy)});
  write_table(path, header, rows);
}

void write_paper_tables(const std::filesystem::path& dir, const std::vector<PaperRow>& rows,
                        const std::vector<PaperMaximum>& maxima) {
  auto label = [](std::int64_t l) { return csv_number(l); };
  std::vector<Row> t2, t3, mx;
  for (const auto& r : rows) {
    const std::string crit(selection_name(r.criterion));
    t2.push_back({csv_field(r.setting), csv_field(r.group), crit, number(r.n), number(r.classes),
                  csv_number(r.mean), csv_number(r.max_diff), csv_number(r.sd),
                  csv_number(r.sd_ci.low), csv_number(r.sd_ci.high), csv_number(r.class_max_diff),
                  label(r.class_of_max_diff), csv_number(r.class_max_sd),
                  csv_number(r.class_sd_ci.low), csv_number(r.class_sd_ci.high),
                  label(r.class_of_max_sd), number(r.weak_runs), number(r.runs_losing_a_class),
                  csv_number(r.max_diff_without_weak)});
    t3.push_back({csv_field(r.setting), csv_field(r.group), crit, number(r.n),
                  csv_number(r.relative_sd), csv_number(r.class_max_relative_sd),
                  label(r.class_of_max_relative_sd), csv_number(r.time_relative_sd),
                  csv_number(r.time_diff_pct)});
  }
  for (const auto& m : maxima) {
    std::string settings, criteria;
    for (const auto& s : m.settings) settings += (settings.empty() ? "" : "; ") + s;
    for (Selection c : m.criteria)
      criteria += (criteria.empty() ? "" : "; ") + std::string(selection_name(c));
    const std::pair<const char*, const PaperFigure*> figures[] = {
        {"max_accuracy_diff", &m.max_diff},
        {"max_accuracy_diff_without_weak", &m.max_diff_without_weak},
        {"std_accuracy", &m.sd},
        {"max_per_label_acc_diff", &m.class_max_diff},
        {"convergence_time_diff_pct", &m.time_diff_pct}};
    for (const auto& [name, f] : figures)
      mx.push_back({csv_field(m.group), name, csv_number(f->value),
                    std::isnan(f->value) ? "" : csv_field(f->setting),
                    std::isnan(f->value) ? "" : std::string(selection_name(f->criterion)),
                    csv_field(settings), csv_field(criteria), number(m.rows), number(m.weak_runs),
                    number(m.runs_losing_a_class)});
  }
  write_table(
      dir / "paper_table2.csv",
      {"setting", "table_group", "criterion", "n", "classes", "mean_accuracy", "max_accuracy_diff",
       "std_accuracy", "std_ci_low", "std_ci_high", "max_per_label_acc_diff", "label_of_max_diff",
       "max_per_label_acc_std", "label_std_ci_low", "label_std_ci_high", "label_of_max_std",
       "weak_runs", "runs_losing_a_class", "max_accuracy_diff_without_weak"},
      t2);
  write_table(dir / "paper_table3.csv",
              {"setting", "table_group", "criterion", "n", "relative_std_accuracy_pct",
               "max_per_label_relative_std_pct", "label_of_max_relative_std",
               "convergence_time_relative_std_pct", "convergence_time_diff_pct"},
              t3);
  write_table(dir / "paper_maxima.csv",
              {"table_group", "figure", "value", "setting", "criterion", "settings", "criteria",
               "rows", "weak_runs", "runs_losing_a_class"},
              mx);
}

}  // namespace detdl::variance
