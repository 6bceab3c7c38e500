// A study: one experiment run many times under several settings, each fixing or varying
// each source of variance (docs/studies.md). The study file (TOML, or JSON with the same
// structure) names a base experiment, the repetitions and the settings; the plan expands it
// into rows, one per run, each with a stable key.
//
//   name = "lenet1-mnist"
//   repetitions = 5
//   selection = ["best_loss", "best_acc", "last"]
//   [experiment]              # the base: a preset and/or any field of nets::Experiment
//   preset = "lenet1"
//   epochs = 5
//   [[setting]]
//   name = "fixed-portable"   # seeds fixed, portable
//   [[setting]]
//   name = "fixed-fast"
//   level = "fast"
//   threads = 2
//   [[setting]]
//   name = "varied"
//   vary = ["all"]            # or any of init, order, augment, dropout, label_noise, split,
//                             # impl (level = "emulated" or emulated_ops only), init_nudge
//   repetitions = 64          # optional: this setting's own count (else the study's)
//   table_group = "default"   # optional: the settings whose maxima the paper's table
//                             # combines (variance/paper_tables.h)
//   [setting.experiment]      # optional per-setting overrides of the base
//   batch_size = 64
//   [published]               # optional: a paper's max - min per table group, placed in
//   default = 0.108           # the resampled distributions by `study table`
//   [conformance]             # optional: leave out BUTTER nets more than this fraction
//   max_size_distance = 0.2   # from their target size (the README's rule; variance/sweep.h)
//   [grid]                    # optional: every setting at every combination (a sweep);
//   net = ["butter:rectangle:3:1024", "butter:trapezoid:3:1024"]   # setting names get
//   "optimizer.kind" = ["adam", "sgd"]                             # " [net=... optimizer.kind=...]"
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nets/experiment.h"

namespace detdl::variance {

// Bounds on what one study may ask for, checked when the file is read, before anything of
// that size is built: a plan row costs about a kilobyte of memory and its run seconds to
// days, so a study past these is a typo (a few zeros too many), not a study. Split a real
// study of that size into several files that share one store.
inline constexpr std::int64_t kMaxRepetitions = 10'000;
inline constexpr std::int64_t kMaxGridPoints = 10'000;  // combinations of the [grid] lists
inline constexpr std::int64_t kMaxSettings = 10'000;    // [[setting]]s x grid points
inline constexpr std::int64_t kMaxPlanRows = 100'000;   // settings x grid points x repetitions

// The seeds a setting can vary with the repetition.
// `impl` (the implementation seed) varies only where emulation is on (level = "emulated" or
// emulated_ops); "all" means the six algorithmic seeds, not impl.
// `init_nudge` varies which initial weight moves by one ulp (nets::Experiment::init_nudge):
// repetitions that differ by one bit each.
enum class SeedSource { init, order, augment, dropout, label_noise, split, impl, init_nudge };

struct Setting {
  std::string name;
  std::vector<SeedSource> vary;  // these seeds change with the repetition; the rest stay fixed
  nets::Experiment experiment;   // the base with this setting's level, fast ops, threads, overrides
  // This setting's own count (`repetitions` in its table), or 0 for the study's. A setting
  // whose runs are bit-identical needs few; one resampled into 16-run groups needs many.
  std::int64_t repetitions = 0;
  // Which of the paper's maxima this setting counts toward (variance/paper_tables.h): its
  // figures are maxima over the settings of one group (its library combinations). Empty:
  // "default" when an algorithmic seed varies, else "fixed-seed".
  std::string table_group;
};

struct Study {
  std::string name;
  std::string source;  // the file it was read from ("" when built in code)
  std::int64_t repetitions = 1;
  std::vector<std::string> selection{"best_loss", "best_acc", "last"};
  std::vector<Setting> settings;
  // [published]: a paper's max - min test accuracy per table group (fractions), e.g.
  // default = 0.108. `study table` places each in the distribution of the largest max - min
  // over resampled 16-run groups of that group's settings (variance/analysis.h).
  std::map<std::string, double> published;
  // Settings (grid points) left out by [conformance] max_size_distance: BUTTER nets farther
  // than that from their target size (variance/sweep.h). They are not in `settings`.
  std::int64_t left_out_by_conformance = 0;
  nlohmann::json spec;  // the file's content as JSON (stored with the study)
};

// The number of runs a setting plans: its own count, else the study's.
inline std::int64_t repetitions_of(const Study& s, const Setting& st) {
  return st.repetitions > 0 ? st.repetitions : s.repetitions;
}

// One run of the plan. A run is a pure function of its row.
struct PlanRow {
  std::string key;  // stable: variance::run_key of {study, setting, repetition, experiment}
  std::string setting;
  std::int64_t repetition = 0;
  nets::Experiment experiment;  // seeds already derived for this repetition
};

// An experiment from {"preset": ..., other fields...} over `base` (a full experiment's JSON
// form; the preset replaces it, then the fields merge). Errors name `where` and the field.
nets::Experiment experiment_over(const nlohmann::json& base, const nlohmann::json& patch,
                                 const std::string& where);

// A study-like file's content as JSON: .json parsed, anything else read as TOML and
// converted (integers stay integers). Only a regular file of at most 16 MiB is read; errors
// name the file (and line and column for TOML syntax). The doctor's benchmark files use it.
nlohmann::json read_config_file(const std::string& path);

// Reads a study file (.toml, or .json). Errors name the file and the field, e.g.
// "lenet1.toml: setting[2].level: expected portable, repeatable or fast, got 'fastest'".
Study load_study(const std::string& path);
// The file's content as JSON (TOML converted), unchecked: for counting a whole sweep that is
// past what one study may plan (variance/sweep.h). Syntax errors name the file and line.
// A file with `include = "PATH"` (relative to the file) is the included study with the
// file's fields over it: each [grid] axis it gives narrows the included axis to those
// values (values the sweep does not have, or axes it does not have, are errors), its
// [experiment] merges, every other field replaces. Leaving `name` out keeps the sweep's
// name, and so the sweep's run keys: a slice file stores the very runs of the sweep.
nlohmann::json read_study_file(const std::string& path);
// The same from JSON already parsed (where: the name used in errors).
Study study_from_json(const nlohmann::json& j, const std::string& where);

// The seed of `source` for repetition r when it varies: a SplitMix64 mix of (base seed,
// source, r), so repetitions never share a seed and no setting's seeds depend on another's.
std::uint64_t derived_seed(std::uint64_t base, SeedSource source, std::int64_t repetition);

// Every row: settings in file order, repetitions 0 .. repetitions_of(setting)-1. Throws
// std::invalid_argument (naming s.source, or the study) when the plan would exceed
// kMaxPlanRows or two rows get one key.
std::vector<PlanRow> make_plan(const Study& s);

}  // namespace detdl::variance
