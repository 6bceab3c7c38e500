// Everything `detdl study table` and `detdl report` show for one study in a store: the
// dl-variance tables per setting and selection criterion, the comparisons between settings,
// the implementation-only spread, BUTTER's per-epoch summaries and where runs diverge.
#pragma once
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "variance/divergence.h"
#include "variance/paper_tables.h"
#include "variance/stats.h"
#include "variance/store.h"

namespace detdl::variance {

struct DivergencePair {
  std::string setting_a, setting_b;
  std::int64_t repetition = 0;
  std::int64_t first_step = -1;  // 0: never differ; -1: no step hashes
};

struct Analysis {
  std::string study;
  std::vector<std::string> settings;  // in the study file's order
  std::vector<Selection> criteria;
  std::vector<StoredRun> runs;
  std::vector<SettingSummary> summaries;                   // setting-major, then criterion
  std::vector<ImplementationSpread> spreads;               // per setting (criterion: last)
  std::vector<Comparison> comparisons;                     // every pair of settings, per criterion
  std::vector<ButterSummary> butter;                       // per setting
  std::vector<std::vector<std::int64_t>> distinct_states;  // per setting, per step
  std::vector<std::int64_t>
      first_divergence;  // per setting: earliest step any two runs differ (0 none, -1 unknown)
  std::vector<WeightDistance> weight_distances;  // per setting
  std::vector<DivergencePair>
      pairs;  // same repetition, settings whose runs differ only in level / fast ops
  std::vector<std::string> varies;  // per setting: what_varies() of its runs
  // The training monitor's probes (engine/monitor.h) of runs recorded with it (`study run
  // --monitor N`): one row per run, probed epoch and parameter or activation layer.
  struct MonitorRow {
    std::string setting;
    std::int64_t repetition = 0, epoch = 0;  // epoch 1-based, as the record's
    std::string kind, name;                  // "param" + dotted name, or "activation" + index:kind
    double grad_norm = kNaN, weight_norm = kNaN, update_ratio = kNaN, zero_grad = kNaN, dead = kNaN;
  };
  std::vector<MonitorRow> monitor;
  // Settings with more usable runs than one group (kGroupSize): their max - min in 16-run
  // groups resampled from the pool, and the largest over kGroups groups (stats.h).
  struct Groups {
    std::string setting;
    Selection criterion = Selection::last;
    GroupSpread spread;
    // The study file's published figure for this setting's table group (NaN: none) and the
    // share of largest-of-kGroups draws at or below it (group_spread_rank).
    double published = kNaN, published_rank = kNaN;
  };
  std::vector<Groups> groups;
  // The paper's Table 2 / Table 3 rows (classification settings, setting-major then
  // criterion) and its maxima per table group (variance/paper_tables.h).
  std::vector<std::string> table_groups;  // per setting: the study file's, else the default
  std::vector<PaperRow> paper_rows;
  std::vector<PaperMaximum> paper_maxima;
};

// The paper's protocol: groups of 16 runs; its figures are maxima over about 24 groups.
inline constexpr std::size_t kGroupSize = 16, kGroups = 24, kGroupDraws = 4000;

// What differs between a setting's runs, in words, from their stored experiments: the
// algorithmic seeds that differ ("algorithmic: all six seeds", "algorithmic: init, order"),
// "implementation: impl seed" (emulated), "implementation: timing (fast)" (level fast or
// fast ops, where threads and timing decide), "one ulp: init_nudge", joined by " + ";
// "nothing" when every run has the same experiment at a deterministic level.
std::string what_varies(const std::vector<StoredRun>& runs);

// Reads the study's runs from the store and computes everything. Throws std::runtime_error
// when the study is not in the store or has no runs.
Analysis analyze(const Store& store, const std::string& study);

// The table a researcher reads first (one block per criterion).
void print_analysis(const Analysis& a, std::ostream& out);

// analysis_result.csv and analysis_raw.csv (the dl-variance artifact's columns),
// detdl_result.csv, detdl_raw.csv, comparisons.csv, butter_summary.csv,
// implementation_spread.csv, group_spread.csv, paper_table2.csv, paper_table3.csv,
// paper_maxima.csv, divergence.csv, divergence_pairs.csv into
// `dir` (variance/export.h has the columns).
void write_analysis(const Analysis& a, const std::filesystem::path& dir);

}  // namespace detdl::variance
