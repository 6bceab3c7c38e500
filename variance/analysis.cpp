#include "variance/analysis.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>

#include "engine/monitor.h"
#include "variance/divergence.h"
#include "variance/export.h"
#include "variance/study.h"

namespace detdl::variance {
namespace fs = std::filesystem;

namespace {

std::vector<StoredRun> of_setting(const std::vector<StoredRun>& runs, const std::string& s) {
  std::vector<StoredRun> out;
  for (const auto& r : runs)
    if (r.setting == s) out.push_back(r);
  return out;
}

// The experiment without what a level-only (or device, or implementation) comparison ignores.
nlohmann::json algorithmic_part(nlohmann::json e) {
  for (const char* k : {"level", "fast_ops", "emulated_ops", "threads", "device", "implementation"})
    e.erase(k);
  if (e.contains("seeds") && e["seeds"].is_object()) e["seeds"].erase("impl");
  return e;
}

}  // namespace

std::string what_varies(const std::vector<StoredRun>& runs) {
  static const char* const kAlgorithmic[] = {"init",    "order",       "augment",
                                             "dropout", "label_noise", "split"};
  auto field = [](const nlohmann::json& e, const char* group, const char* key) {
    const nlohmann::json* g = group ? (e.contains(group) ? &e[group] : nullptr) : &e;
    return g && g->contains(key) ? (*g)[key] : nlohmann::json();
  };
  auto differs = [&](const char* group, const char* key) {
    for (const auto& r : runs)
      if (field(r.experiment, group, key) != field(runs.front().experiment, group, key))
        return true;
    return false;
  };
  std::vector<std::string> parts;
  std::string seeds;
  int n = 0;
  for (const char* k : kAlgorithmic)
    if (!runs.empty() && differs("seeds", k)) seeds += (n++ ? ", " : "") + std::string(k);
  if (n == 6) seeds = "all six seeds";
  if (n > 0) parts.push_back("algorithmic: " + seeds);
  if (!runs.empty() && differs("seeds", "impl")) parts.push_back("implementation: impl seed");
  bool timing = false;
  for (const auto& r : runs) {
    const auto level = field(r.experiment, nullptr, "level");
    const auto fast = field(r.experiment, nullptr, "fast_ops");
    timing = timing || level == "fast" || (fast.is_array() && !fast.empty());
  }
  if (timing) parts.push_back("implementation: timing (fast)");
  if (!runs.empty() && differs(nullptr, "init_nudge")) parts.push_back("one ulp: init_nudge");
  if (parts.empty()) return "nothing";
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : " + ") + p;
  return out;
}

namespace {

void write_text(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream o(tmp);
    o << text;
    if (!o) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, path);
}

std::string pct(double v) {
  if (std::isnan(v)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", 100.0 * v);
  return b;
}

std::string fixed3(double v) {
  if (std::isnan(v)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.3f", v);
  return b;
}

// 4 significant digits: a loss spread of 1e-7 shows as 1e-07, never as 0.
std::string sig4(double v) {
  if (std::isnan(v)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

// The hard rule of the tables: a spread of exactly 0 between runs whose weights differ is
// said in words, never left as a bare 0 (it is a fact about the metric, not the runs).
constexpr const char* kIdenticalNote = "hashes differ, metric identical";

}  // namespace

Analysis analyze(const Store& store, const std::string& study) {
  Analysis a;
  a.study = study;
  const nlohmann::json spec = store.study_spec(study);
  std::map<std::string, std::string> table_group_of;  // the study file's table_group
  std::map<std::string, double> published;            // the study file's [published]
  a.runs = store.runs(study);
  if (a.runs.empty())
    throw std::runtime_error("study " + study + " in " + store.path() + " has no runs yet");
  // Settings in file order (those with runs), then any others found in the store.
  try {
    const Study s = study_from_json(spec, "stored study " + study);
    published = s.published;
    for (const auto& st : s.settings) {
      a.settings.push_back(st.name);
      if (!st.table_group.empty()) table_group_of[st.name] = st.table_group;
    }
    for (const auto& c : s.selection) a.criteria.push_back(parse_selection(c));
    // Only the runs of the current plan: after a study file is edited, runs stored under
    // the old keys stay in the store but are no longer part of the study.
    std::set<std::string> keys;
    for (const auto& row : make_plan(s)) keys.insert(row.key);
    a.runs.erase(std::remove_if(a.runs.begin(), a.runs.end(),
                                [&](const StoredRun& r) { return !keys.count(r.key); }),
                 a.runs.end());
  } catch (const std::exception&) {
    a.criteria.assign(kSelections.begin(), kSelections.end());
  }
  for (const auto& r : a.runs)
    if (std::find(a.settings.begin(), a.settings.end(), r.setting) == a.settings.end())
      a.settings.push_back(r.setting);
  a.settings.erase(
      std::remove_if(a.settings.begin(), a.settings.end(),
                     [&](const std::string& s) { return of_setting(a.runs, s).empty(); }),
      a.settings.end());

  // Runs in the study file's setting order (the store orders them by name).
  std::stable_sort(a.runs.begin(), a.runs.end(), [&](const StoredRun& x, const StoredRun& y) {
    const auto ix = std::find(a.settings.begin(), a.settings.end(), x.setting) - a.settings.begin();
    const auto iy = std::find(a.settings.begin(), a.settings.end(), y.setting) - a.settings.begin();
    return ix < iy;
  });
  std::map<std::string, std::vector<std::string>> hashes_of;  // key -> step hashes
  for (auto& r : a.runs) {
    const nlohmann::json record = store.record(r.key);
    hashes_of[r.key] = step_hashes(record);
    if (record.contains("epochs") && record["epochs"].is_array())
      for (const auto& e : record["epochs"]) {
        if (!e.is_object() || !e.contains("monitor")) continue;
        MonitorStats m;
        try {
          m = monitor_from_json(e["monitor"]);
        } catch (const std::invalid_argument& ex) {
          throw std::invalid_argument(store.path() + ": run " + r.key + ": " + ex.what());
        }
        const std::int64_t epoch = e.value("epoch", std::int64_t{0});
        for (const auto& p : m.params)
          a.monitor.push_back({r.setting, r.repetition, epoch, "param", p.name, p.grad_norm,
                               p.weight_norm, p.update_ratio, p.zero_grad, kNaN});
        for (const auto& act : m.activations)
          a.monitor.push_back({r.setting, r.repetition, epoch, "activation",
                               std::to_string(act.index) + ":" + act.kind, kNaN, kNaN, kNaN, kNaN,
                               act.dead});
      }
    if (record.contains("test_class_counts") && record["test_class_counts"].is_array())
      r.test_class_counts = record["test_class_counts"].get<std::vector<std::int64_t>>();
    // The epoch times the study's convergence time is made of (EpochRow).
    if (record.contains("epochs") && record["epochs"].is_array())
      for (std::size_t i = 0; i < record["epochs"].size() && i < r.epochs.size(); ++i) {
        const auto& e = record["epochs"][i];
        if (e.contains("train_seconds") && e["train_seconds"].is_number())
          r.epochs[i].train_seconds = e["train_seconds"].get<double>();
        if (e.contains("validation_seconds") && e["validation_seconds"].is_number())
          r.epochs[i].validation_seconds = e["validation_seconds"].get<double>();
      }
  }

  for (const auto& s : a.settings) {
    const auto runs = of_setting(a.runs, s);
    for (Selection c : a.criteria) {
      SettingSummary sum = summarize(runs, c);
      // Churn at the selected epochs (the summary's default is the final predictions).
      std::vector<std::vector<std::int32_t>> preds;
      bool all = true;
      for (const auto& r : runs) {
        try {
          preds.push_back(store.predictions_at(r.key, select_epoch(r, c).epoch));
        } catch (const std::exception&) {
          all = false;
        }
      }
      if (all && preds.size() >= 2) sum.mean_churn = mean_pairwise_churn(preds);
      a.summaries.push_back(std::move(sum));
    }
    a.spreads.push_back(implementation_spread(runs, Selection::last));
    a.varies.push_back(what_varies(runs));
    const auto g = table_group_of.find(s);
    a.table_groups.push_back(g != table_group_of.end() ? g->second
                                                       : default_table_group(a.varies.back()));
    if (!is_regression(runs))
      for (Selection c : a.criteria)
        a.paper_rows.push_back(paper_row(runs, c, a.table_groups.back()));
    for (Selection c : a.criteria) {
      const auto values = selected_metric(runs, c);
      if (values.size() > kGroupSize && !is_regression(runs)) {
        Analysis::Groups g{s, c, group_spread(values, kGroupSize, kGroups, kGroupDraws, 2020)};
        if (const auto p = published.find(a.table_groups.back()); p != published.end()) {
          g.published = p->second;
          g.published_rank =
              group_spread_rank(values, kGroupSize, kGroups, kGroupDraws, 2020, p->second);
        }
        a.groups.push_back(g);
      }
    }
    a.butter.push_back(butter_summary(runs));
    std::vector<std::vector<std::string>> hs;
    bool known = true;
    for (const auto& r : runs) {
      hs.push_back(hashes_of[r.key]);
      known = known && !hs.back().empty();
    }
    a.distinct_states.push_back(known ? distinct_states_per_step(hs) : std::vector<std::int64_t>{});
    std::vector<std::vector<float>> ws;
    for (const auto& r : runs) ws.push_back(store.weights(r.key));
    a.weight_distances.push_back(weight_distance(ws));
    std::int64_t first = known ? 0 : -1;
    if (known)
      for (std::size_t i = 0; i < a.distinct_states.back().size(); ++i)
        if (a.distinct_states.back()[i] > 1) {
          first = static_cast<std::int64_t>(i + 1);
          break;
        }
    a.first_divergence.push_back(first);
  }
  a.paper_maxima = paper_maxima(a.paper_rows);
  for (std::size_t i = 0; i < a.settings.size(); ++i)
    for (std::size_t j = i + 1; j < a.settings.size(); ++j) {
      const auto ra = of_setting(a.runs, a.settings[i]), rb = of_setting(a.runs, a.settings[j]);
      for (Selection c : a.criteria)
        if (ra.size() >= 2 && rb.size() >= 2) a.comparisons.push_back(compare_settings(ra, rb, c));
      for (const auto& x : ra)
        for (const auto& y : rb)
          if (x.repetition == y.repetition &&
              algorithmic_part(x.experiment) == algorithmic_part(y.experiment))
            a.pairs.push_back({x.setting, y.setting, x.repetition,
                               first_divergence_step(hashes_of[x.key], hashes_of[y.key])});
    }
  return a;
}

void print_analysis(const Analysis& a, std::ostream& out) {
  char line[1024];
  int w = 22;  // the setting column: as wide as the longest name (grid points make long ones)
  for (const auto& st : a.settings) w = std::max(w, static_cast<int>(st.size()));
  w = std::min(w, 400);
  out << "study " << a.study << ": " << a.runs.size() << " runs, " << a.settings.size()
      << " settings\n";
  const bool any_regression = std::any_of(a.summaries.begin(), a.summaries.end(),
                                          [](const SettingSummary& s) { return s.regression; });
  std::size_t diverged = 0;
  for (const auto& r : a.runs) diverged += r.diverged;
  if (diverged > 0)
    out << diverged
        << " run(s) diverged (a loss not finite): each table leaves out the runs whose value is "
           "not "
        << "finite at the selected epoch (div/out: diverged / left out)\n";
  for (Selection c : a.criteria) {
    out << "\nselection " << selection_name(c)
        << " (test accuracy in %; SD with its 90% CI; class: the class with the largest max-min "
           "gap)\n";
    std::snprintf(line, sizeof line, "%-*s %3s %8s %8s %8s %20s %8s %13s %7s %7s %9s %7s  %s\n", w,
                  "setting", "n", "mean", "min", "max", "SD [90% CI]", "max-min", "class gap",
                  "hashes", "churn", "time diff", "div/out", "note");
    out << line;
    for (const auto& s : a.summaries) {
      if (s.criterion != c) continue;
      char sd[64], cls[48], td[32], dv[32];
      std::snprintf(sd, sizeof sd, "%s [%s, %s]", fixed3(100 * s.std_acc).c_str(),
                    fixed3(100 * s.std_ci.low).c_str(), fixed3(100 * s.std_ci.high).c_str());
      if (s.class_with_max_diff >= 0)
        std::snprintf(cls, sizeof cls, "%.2f (%lld)", 100 * s.class_max_diff_value,
                      static_cast<long long>(s.class_with_max_diff));
      else
        std::snprintf(cls, sizeof cls, "-");
      std::snprintf(td, sizeof td, "%.1f%%", s.convergence_time_diff_pct);
      std::snprintf(dv, sizeof dv, "%zu/%zu", s.diverged, s.left_out);
      std::string note = s.acc_identical_despite_hashes ? kIdenticalNote : "";
      if (s.regression)
        note += std::string(note.empty() ? "" : "; ") + "regression: see test loss below";
      std::snprintf(line, sizeof line, "%-*s %3zu %8s %8s %8s %20s %8s %13s %7zu %7s %9s %7s  %s\n",
                    w, s.setting.c_str(), s.n, pct(s.mean_acc).c_str(), pct(s.min_acc).c_str(),
                    pct(s.max_acc).c_str(), sd, pct(s.max_diff).c_str(), cls, s.distinct_hashes,
                    pct(s.mean_churn).c_str(), td, dv, note.c_str());
      out << line;
    }
    if (!any_regression) continue;
    // Regression: the spread a regression user compares is the test loss (MSE), printed to
    // 4 significant digits so that no nonzero spread reads as 0.
    out << "\nselection " << selection_name(c)
        << ", regression settings (test loss; SD with its 90% CI)\n";
    std::snprintf(line, sizeof line, "%-*s %3s %11s %11s %11s %36s %11s %7s %7s  %s\n", w,
                  "setting", "n", "mean", "min", "max", "SD [90% CI]", "max-min", "hashes",
                  "div/out", "note");
    out << line;
    for (const auto& s : a.summaries) {
      if (s.criterion != c || !s.regression) continue;
      char sd[96], dv[32];
      std::snprintf(sd, sizeof sd, "%s [%s, %s]", sig4(s.loss.std).c_str(),
                    sig4(s.loss.std_ci.low).c_str(), sig4(s.loss.std_ci.high).c_str());
      std::snprintf(dv, sizeof dv, "%zu/%zu", s.diverged, s.left_out);
      std::snprintf(line, sizeof line, "%-*s %3zu %11s %11s %11s %36s %11s %7zu %7s  %s\n", w,
                    s.setting.c_str(), s.n, sig4(s.loss.mean).c_str(), sig4(s.loss.min).c_str(),
                    sig4(s.loss.max).c_str(), sd, sig4(s.loss.max_diff).c_str(), s.distinct_hashes,
                    dv, s.loss.identical_despite_hashes ? kIdenticalNote : "");
      out << line;
    }
  }
  if (!a.groups.empty()) {
    out << "\n"
        << kGroupSize << "-run groups resampled from the settings with more runs (test "
        << "accuracy max-min in %: one group, and the largest of " << kGroups
        << " groups as a published maximum over library combinations is; median [5%, 95%])\n";
    std::snprintf(line, sizeof line, "%-*s %10s %5s %28s %28s  %s\n", w, "setting", "criterion",
                  "pool", "one group", "largest of groups",
                  "published (share of largest-of draws at or below it)");
    out << line;
    for (const auto& g : a.groups) {
      char one[64], big[64];
      std::snprintf(one, sizeof one, "%s [%s, %s]", pct(g.spread.one_group_median).c_str(),
                    pct(g.spread.one_group_p05).c_str(), pct(g.spread.one_group_p95).c_str());
      std::snprintf(big, sizeof big, "%s [%s, %s]", pct(g.spread.largest_median).c_str(),
                    pct(g.spread.largest_p05).c_str(), pct(g.spread.largest_p95).c_str());
      char pub[64] = "-";
      if (!std::isnan(g.published))
        std::snprintf(pub, sizeof pub, "%s (%.3f)", pct(g.published).c_str(), g.published_rank);
      std::snprintf(line, sizeof line, "%-*s %10s %5zu %28s %28s  %s\n", w, g.setting.c_str(),
                    std::string(selection_name(g.criterion)).c_str(), g.spread.pool, one, big, pub);
      out << line;
    }
  }
  if (!a.paper_rows.empty()) {
    // The paper's Table 2 and 3 (variance/paper_tables.h), then its figures: maxima over
    // each table group's settings and criteria.
    out << "\nthe paper's Table 2 and 3 (test accuracy in %; per class: the largest gap and the "
           "largest SD, class in brackets; rel SD = SD / mean; weak: accuracy under twice chance; "
           "lost: a class under chance)\n";
    std::snprintf(line, sizeof line, "%-*s %10s %3s %8s %20s %12s %26s %5s %5s %9s %8s %10s %8s\n",
                  w, "setting", "criterion", "n", "max-min", "SD [90% CI]", "class gap",
                  "class SD [90% CI]", "weak", "lost", "w/o weak", "rel SD", "class rel",
                  "time rel");
    out << line;
    for (const auto& r : a.paper_rows) {
      char sd[64], cg[32], cs[64], cr[32];
      std::snprintf(sd, sizeof sd, "%s [%s, %s]", fixed3(100 * r.sd).c_str(),
                    fixed3(100 * r.sd_ci.low).c_str(), fixed3(100 * r.sd_ci.high).c_str());
      std::snprintf(cg, sizeof cg, "%s (%lld)", pct(r.class_max_diff).c_str(),
                    static_cast<long long>(r.class_of_max_diff));
      std::snprintf(cs, sizeof cs, "%s [%s, %s] (%lld)", fixed3(100 * r.class_max_sd).c_str(),
                    fixed3(100 * r.class_sd_ci.low).c_str(),
                    fixed3(100 * r.class_sd_ci.high).c_str(),
                    static_cast<long long>(r.class_of_max_sd));
      std::snprintf(cr, sizeof cr, "%s (%lld)", fixed3(r.class_max_relative_sd).c_str(),
                    static_cast<long long>(r.class_of_max_relative_sd));
      std::snprintf(line, sizeof line,
                    "%-*s %10s %3zu %8s %20s %12s %26s %5zu %5zu %9s %8s %10s %8s\n", w,
                    r.setting.c_str(), std::string(selection_name(r.criterion)).c_str(), r.n,
                    pct(r.max_diff).c_str(), sd, cg, cs, r.weak_runs, r.runs_losing_a_class,
                    pct(r.max_diff_without_weak).c_str(), fixed3(r.relative_sd).c_str(), cr,
                    fixed3(r.time_relative_sd).c_str());
      out << line;
    }
    out << "\nthe paper's figures: the largest value over a table group's settings and criteria "
           "(best_loss and best_acc as the paper; every criterion when a study selects neither; "
           "in %; where it came from in brackets)\n";
    for (const auto& m : a.paper_maxima) {
      auto fig = [&](const char* name, const PaperFigure& f, bool fraction) {
        out << "  " << name << " " << (fraction ? pct(f.value) : fixed3(f.value));
        if (!std::isnan(f.value))
          out << " (" << f.setting << ", " << selection_name(f.criterion) << ")";
        out << "\n";
      };
      std::string crit;
      for (Selection c : m.criteria)
        crit += (crit.empty() ? "" : ", ") + std::string(selection_name(c));
      out << "group " << m.group << ": " << m.settings.size() << " setting(s) x " << crit << " ("
          << m.rows << " rows)\n";
      fig("max-min test accuracy      ", m.max_diff, true);
      fig("  without weak runs        ", m.max_diff_without_weak, true);
      fig("SD                         ", m.sd, true);
      fig("per-class max-min          ", m.class_max_diff, true);
      fig("convergence time diff (%)  ", m.time_diff_pct, false);
      out << "  weak runs (most in a row)   " << m.weak_runs << "; runs losing a class "
          << m.runs_losing_a_class << "\n";
    }
  }
  out << "\nspread by what each setting varies (last epoch; test accuracy in %, test loss for "
         "regression) and divergence\n";
  std::snprintf(line, sizeof line, "%-*s %14s %32s %18s %22s  %s\n", w, "setting", "bit-identical",
                "max-min [90% bootstrap CI]", "first diverging step", "weight dist (relative)",
                "varies; note");
  out << line;
  for (std::size_t i = 0; i < a.settings.size(); ++i) {
    const auto& sp = a.spreads[i];
    const bool regression = is_regression(of_setting(a.runs, a.settings[i]));
    auto value = [&](double v) { return regression ? sig4(v) : pct(v); };
    char ci[96], fd[32];
    std::snprintf(ci, sizeof ci, "%s [%s, %s]", value(sp.spread).c_str(),
                  value(sp.spread_ci.low).c_str(), value(sp.spread_ci.high).c_str());
    const auto f = a.first_divergence[i];
    if (f < 0)
      std::snprintf(fd, sizeof fd, "unknown");
    else if (f == 0)
      std::snprintf(fd, sizeof fd, "never");
    else
      std::snprintf(fd, sizeof fd, "%lld", static_cast<long long>(f));
    char wd[48];
    const auto& dist = a.weight_distances[i];
    if (std::isnan(dist.mean_l2))
      std::snprintf(wd, sizeof wd, "-");
    else
      std::snprintf(wd, sizeof wd, "%.4g (%.2e)", dist.mean_l2, dist.relative);
    std::string note = a.varies[i];
    if (!sp.exactly_zero && sp.spread == 0) note += std::string("; ") + kIdenticalNote;
    if (sp.left_out > 0)
      note += "; " + std::to_string(sp.left_out) + " run(s) left out (not finite)";
    std::snprintf(line, sizeof line, "%-*s %14s %32s %18s %22s  %s\n", w, a.settings[i].c_str(),
                  sp.exactly_zero ? "yes" : "no", ci, fd, wd, note.c_str());
    out << line;
  }
  if (!a.pairs.empty()) {
    out << "\nruns that differ only in level / fast ops: first step with different weights (0: "
           "never)\n";
    std::map<std::pair<std::string, std::string>, std::vector<std::int64_t>> by;
    for (const auto& p : a.pairs) by[{p.setting_a, p.setting_b}].push_back(p.first_step);
    for (const auto& [k, v] : by) {
      out << "  " << k.first << " vs " << k.second << ":";
      for (auto s : v) out << " " << s;
      out << "\n";
    }
  }
}

void write_analysis(const Analysis& a, const fs::path& dir) {
  fs::create_directories(dir);
  // The study's own two tables (its seed README's columns), then detdl's richer ones.
  std::vector<StudyRow> study_rows;
  for (std::size_t i = 0; i < a.settings.size(); ++i) {
    const auto runs = of_setting(a.runs, a.settings[i]);
    const bool seeds_vary = a.varies[i].find("algorithmic") != std::string::npos;
    for (Selection c : a.criteria)
      if (!is_regression(runs)) study_rows.push_back(study_row(runs, c, seeds_vary));
  }
  write_study_result(dir / "analysis_result.csv", study_rows);
  write_study_raw(dir / "analysis_raw.csv", study_rows);
  write_analysis_result(dir / "detdl_result.csv", a.summaries);
  write_analysis_raw(dir / "detdl_raw.csv", a.runs, a.criteria);
  write_comparisons(dir / "comparisons.csv", a.comparisons);
  write_butter_summary(dir / "butter_summary.csv", a.butter);
  if (!a.monitor.empty()) {
    std::string m =
        "setting,repetition,epoch,kind,name,grad_norm,weight_norm,update_ratio,"
        "zero_grad,dead\n";
    for (const auto& r : a.monitor)
      m += csv_field(r.setting) + "," + std::to_string(r.repetition) + "," +
           std::to_string(r.epoch) + "," + r.kind + "," + csv_field(r.name) + "," +
           csv_number(r.grad_norm) + "," + csv_number(r.weight_norm) + "," +
           csv_number(r.update_ratio) + "," + csv_number(r.zero_grad) + "," + csv_number(r.dead) +
           "\n";
    write_text(dir / "monitor.csv", m);
  }
  std::string s =
      "setting,n,exactly_zero,spread,spread_ci_low,spread_ci_high,sd,sd_ci_low,sd_ci_high,first_"
      "divergence_step,"
      "mean_weight_distance,relative_weight_distance,varies\n";
  for (std::size_t i = 0; i < a.settings.size(); ++i) {
    const auto& sp = a.spreads[i];
    s += csv_field(a.settings[i]) + "," + std::to_string(sp.n) + "," +
         (sp.exactly_zero ? "1" : "0") + "," + csv_number(sp.spread) + "," +
         csv_number(sp.spread_ci.low) + "," + csv_number(sp.spread_ci.high) + "," +
         csv_number(sp.sd) + "," + csv_number(sp.sd_ci.low) + "," + csv_number(sp.sd_ci.high) +
         "," + csv_number(a.first_divergence[i]) + "," + csv_number(a.weight_distances[i].mean_l2) +
         "," + csv_number(a.weight_distances[i].relative) + "," + csv_field(a.varies[i]) + "\n";
  }
  write_text(dir / "implementation_spread.csv", s);
  s = "setting,criterion,pool,group_size,groups,one_group_median,one_group_p05,one_group_p95,"
      "largest_median,largest_p05,largest_p95,published,published_rank\n";
  for (const auto& g : a.groups)
    s += csv_field(g.setting) + "," + std::string(selection_name(g.criterion)) + "," +
         std::to_string(g.spread.pool) + "," + std::to_string(g.spread.group_size) + "," +
         std::to_string(g.spread.groups) + "," + csv_number(g.spread.one_group_median) + "," +
         csv_number(g.spread.one_group_p05) + "," + csv_number(g.spread.one_group_p95) + "," +
         csv_number(g.spread.largest_median) + "," + csv_number(g.spread.largest_p05) + "," +
         csv_number(g.spread.largest_p95) + "," + csv_number(g.published) + "," +
         csv_number(g.published_rank) + "\n";
  write_text(dir / "group_spread.csv", s);
  write_paper_tables(dir, a.paper_rows, a.paper_maxima);
  s = "setting,step,distinct_states\n";
  for (std::size_t i = 0; i < a.settings.size(); ++i)
    for (std::size_t k = 0; k < a.distinct_states[i].size(); ++k)
      s += csv_field(a.settings[i]) + "," + std::to_string(k + 1) + "," +
           std::to_string(a.distinct_states[i][k]) + "\n";
  write_text(dir / "divergence.csv", s);
  s = "setting_a,setting_b,repetition,first_divergence_step\n";
  for (const auto& p : a.pairs)
    s += csv_field(p.setting_a) + "," + csv_field(p.setting_b) + "," +
         std::to_string(p.repetition) + "," + std::to_string(p.first_step) + "\n";
  write_text(dir / "divergence_pairs.csv", s);
}

}  // namespace detdl::variance
