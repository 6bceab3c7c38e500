// `detdl study run|plan|table` and `detdl report`: run a study file into its SQLite store
// (resumable: the same command again runs only what is missing), show its plan, print and
// export its tables, and draw its pictures (docs/studies.md).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <filesystem>
#include <iostream>
#include <set>
#include <sstream>
#include <fstream>
#include <stdexcept>
#include <tuple>

#include "tools/cli_checks.h"
#include "tools/commands.h"
#include "variance/analysis.h"
#include "variance/grid.h"
#include "variance/mpi_runner.h"
#include "variance/pg_store.h"
#include "variance/runner.h"
#include "variance/sweep.h"
#include "variance/store.h"
#include "variance/study.h"

namespace detdl::tools {
namespace fs = std::filesystem;

namespace {

std::string default_store(const variance::Study& s) { return s.name + ".sqlite"; }

// The study to analyse: --study, or the store's only study.
std::string pick_study(const variance::Store& store, const std::string& wanted) {
  const auto names = store.studies();
  if (!wanted.empty()) {
    if (std::find(names.begin(), names.end(), wanted) == names.end())
      throw std::invalid_argument("--study: no study '" + wanted + "' in " + store.path());
    return wanted;
  }
  if (names.size() == 1) return names[0];
  if (names.empty()) throw std::invalid_argument(store.path() + ": holds no study");
  std::string list;
  for (const auto& n : names) list += " " + n;
  throw std::invalid_argument(store.path() +
                              " holds several studies; choose one with --study:" + list);
}

void require_file(const std::string& path, const std::string& what) {
  if (!fs::exists(path)) throw std::invalid_argument(what + ": no such file " + path);
}

// The report script beside the executable's source tree, or installed next to it.
std::string report_script() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  for (const fs::path& p :
       {fs::path(DETDL_SOURCE_DIR) / "tools/report.py", exe.parent_path() / "report.py"})
    if (fs::exists(p)) return p.string();
  throw std::runtime_error("report: tools/report.py not found");
}

std::string python() {
  // Debian's python has matplotlib (python3-matplotlib); a pyenv python on PATH may not.
  return fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

// A study from a file and/or flags (the flags are the file's equivalent: --name,
// --repetitions, --selection, --preset and --set FIELD=VALUE for the base experiment,
// --setting SPEC for each setting; flags override the file, --setting replaces its settings).
struct StudyFlags {
  std::string file, name, preset;
  std::int64_t repetitions = 0;
  std::vector<std::string> set, settings, selection;
  std::vector<std::string> grid;  // PATH=V1,V2,...: keep only these values of a grid axis
};

void add_study_flags(CLI::App* c, StudyFlags& f) {
  c->add_option("file", f.file, "study file (.toml or .json); optional when --setting is given");
  c->add_option("--name", f.name, "study name (overrides the file's)");
  c->add_option("--repetitions", f.repetitions, "runs per setting")->check(integer_text(1));
  c->add_option("--selection", f.selection, "selection criteria: best_loss, best_acc, last");
  c->add_option("--preset", f.preset, "base experiment from a preset (lenet1, ..., butter)");
  c->add_option(
      "--set", f.set,
      "FIELD=VALUE for the base experiment, e.g. epochs=5, data=mnist, optimizer.kind=adam");
  c->add_option("--grid", f.grid,
                "PATH=V1,V2,... keep only these values of the study's grid axis PATH (a slice of a "
                "sweep, e.g. data=wine_quality_white or butter.size=1024,2048; repeat for several "
                "axes)");
  c->add_option(
      "--setting", f.settings,
      "a setting: "
      "name=NAME[,level=L][,threads=T][,vary=init+order|all|impl][,fast_ops=conv_wgrad+matmul]"
      "[,emulated_ops=conv+math]");
}

nlohmann::json parse_value(const std::string& v) {
  try {
    return nlohmann::json::parse(v);
  } catch (const nlohmann::json::exception&) {
    return v;  // a bare word is a string
  }
}

std::vector<std::string> split_on(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t b = 0;
  for (;;) {
    const auto p = s.find(sep, b);
    out.push_back(s.substr(b, p == std::string::npos ? std::string::npos : p - b));
    if (p == std::string::npos) return out;
    b = p + 1;
  }
}

// The study file's JSON with the flags applied; `where` names the file (+ flags) for errors.
nlohmann::json build_spec(const StudyFlags& f, std::string& where) {
  nlohmann::json spec = nlohmann::json::object();
  where = "flags";
  if (!f.file.empty()) {
    require_file(f.file, "study");
    spec = variance::read_study_file(f.file);  // checked by study_from_json after the flags
    const bool flags = !f.name.empty() || f.repetitions > 0 || !f.selection.empty() ||
                       !f.preset.empty() || !f.set.empty() || !f.settings.empty() ||
                       !f.grid.empty();
    where = flags ? f.file + " + flags" : f.file;
  } else if (f.settings.empty()) {
    throw std::invalid_argument("study: give a study file or at least one --setting");
  }
  if (!f.name.empty()) spec["name"] = f.name;
  if (f.repetitions > 0) spec["repetitions"] = f.repetitions;
  if (!f.selection.empty()) spec["selection"] = f.selection;
  if (!spec.contains("experiment")) spec["experiment"] = nlohmann::json::object();
  if (!f.preset.empty()) spec["experiment"]["preset"] = f.preset;
  for (const auto& kv : f.set) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      throw std::invalid_argument("--set: expected FIELD=VALUE, got '" + kv + "'");
    nlohmann::json* node = &spec["experiment"];
    const auto path = split_on(kv.substr(0, eq), '.');
    for (std::size_t i = 0; i + 1 < path.size(); ++i) {
      if (!node->contains(path[i])) (*node)[path[i]] = nlohmann::json::object();
      node = &(*node)[path[i]];
    }
    (*node)[path.back()] = parse_value(kv.substr(eq + 1));
  }
  for (const auto& kv : f.grid) {
    // A slice keeps the sweep's own values (and their order): a value the sweep does not
    // have would make runs that are not the sweep's, so it is refused.
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == kv.size())
      throw std::invalid_argument("--grid: expected PATH=V1,V2,..., got '" + kv + "'");
    const std::string path = kv.substr(0, eq);
    if (!spec.contains("grid") || !spec["grid"].contains(path) || !spec["grid"][path].is_array())
      throw std::invalid_argument("--grid " + path + ": the study has no grid axis '" + path + "'");
    nlohmann::json want = nlohmann::json::array();
    for (const auto& v : split_on(kv.substr(eq + 1), ',')) want.push_back(parse_value(v));
    spec["grid"][path] =
        variance::narrow_axis(spec["grid"][path], want, "--grid " + path, "the axis's");
  }
  if (!f.settings.empty()) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& spec_text : f.settings) {
      nlohmann::json st = nlohmann::json::object();
      for (const auto& part : split_on(spec_text, ',')) {
        const auto eq = part.find('=');
        if (eq == std::string::npos)
          throw std::invalid_argument(
              "--setting: expected KEY=VALUE pairs separated by commas, got '" + part + "'");
        const std::string k = part.substr(0, eq), v = part.substr(eq + 1);
        if (k == "vary" || k == "fast_ops" || k == "emulated_ops") {
          st[k] = split_on(v, '+');
        } else if (k == "threads") {
          st[k] = parse_value(v);
        } else {
          st[k] = v;
        }
      }
      list.push_back(st);
    }
    spec["setting"] = list;
  }
  if (!spec.contains("name") && !f.file.empty()) spec["name"] = fs::path(f.file).stem().string();
  return spec;
}

variance::Study build_study(const StudyFlags& f) {
  std::string where;
  const nlohmann::json spec = build_spec(f, where);
  variance::Study s = variance::study_from_json(spec, where);
  s.source = f.file;
  // The store keeps the whole study, not the --grid slice a runner was given: the tables
  // analyse every run of the study (its plan's keys), so a stored slice would hide the runs
  // of the study's other slices (a sweep run size by size showed only the last size's).
  if (!f.grid.empty()) {
    StudyFlags whole = f;
    whole.grid.clear();
    s.spec = build_spec(whole, where);
  }
  return s;
}

// `study plan --summary`: what the sweep asks for, counted without planning it.
// A store to read: an SQLite path as it is, or a PostgreSQL URL copied into a temporary
// SQLite store first (removed when the returned holder goes).
struct ReadableStore {
  std::string path, temp;
  ~ReadableStore() {
    std::error_code ec;
    if (!temp.empty()) fs::remove(temp, ec);
  }
};
std::unique_ptr<ReadableStore> readable_store(const std::string& store, const char* command) {
  auto r = std::make_unique<ReadableStore>();
  if (!variance::is_postgres_url(store)) {
    require_file(store, command);
    r->path = store;
    return r;
  }
  r->temp = (fs::temp_directory_path() / ("detdl-read-" + std::to_string(::getpid()) + ".sqlite"))
                .string();
  fs::remove(r->temp);
  variance::merge_postgres_into_sqlite(store, r->temp);
  r->path = r->temp;
  return r;
}

void print_sweep_summary(const variance::SweepSummary& m) {
  std::printf("sweep %s: %lld grid points x %lld setting(s) = %lld experiments, %lld runs\n",
              m.name.c_str(), static_cast<long long>(m.grid_points),
              static_cast<long long>(m.settings), static_cast<long long>(m.total.experiments),
              static_cast<long long>(m.total.runs));
  std::printf("  BUTTER nets more than 20%% from their size: %lld experiments",
              static_cast<long long>(m.total.outside_20));
  if (m.max_size_distance >= 0)
    std::printf("; left out by [conformance] max_size_distance = %g: %lld (their runs not counted)",
                m.max_size_distance, static_cast<long long>(m.total.left_out));
  else
    std::printf(" (kept: the file has no [conformance])");
  std::printf("\n");
  constexpr double kYear = 365.25 * 24 * 3600;
  if (m.total.work > 0)  // docs/scale.md: the cost model
    std::printf(
        "  work: %.3g parameter-row-epochs; estimated cost %.3g core-years (%.3g "
        "core-hours per run; one run per core, docs/scale.md)\n",
        m.total.work, m.total.core_seconds / kYear,
        m.total.runs > 0 ? m.total.core_seconds / 3600.0 / static_cast<double>(m.total.runs) : 0.0);
  for (const auto& [title, list] :
       {std::pair{"data set", &m.by_data}, std::pair{"shape", &m.by_shape},
        std::pair{"depth", &m.by_depth}}) {
    std::printf("\n%-22s %11s %11s %11s %9s %12s\n", title, "experiments", "runs", "outside 20%",
                "left out", "core-years");
    for (const auto& c : *list)
      std::printf("%-22s %11lld %11lld %11lld %9lld %12.3g\n", c.value.c_str(),
                  static_cast<long long>(c.experiments), static_cast<long long>(c.runs),
                  static_cast<long long>(c.outside_20), static_cast<long long>(c.left_out),
                  c.core_seconds / kYear);
  }
}

}  // namespace

void add_study_command(CLI::App& app) {
  CLI::App* study = app.add_subcommand(
      "study", "variance studies: run a study file, show its plan, print its tables");
  study->require_subcommand(1);

  struct RunArgs {
    StudyFlags study;
    std::string store;
    variance::RunnerOptions opt;
    bool no_step_hashes = false, no_epoch_predictions = false;
    bool no_wait = false;
    std::string shard;
    bool mpi = false;
    bool no_checkpoints = false;
  };
  auto r = std::make_shared<RunArgs>();
  CLI::App* run =
      study->add_subcommand("run", "run every run of the plan not yet in the store (resumable)");
  add_study_flags(run, r->study);
  run->add_option("--store", r->store,
                  "SQLite store (default: <study name>.sqlite), or a PostgreSQL URL "
                  "(postgresql://...: runners on many machines share it; docs/scale.md)");
  run->add_option("--jobs", r->opt.jobs, "runs at once (worker processes)")
      ->check(integer_text(1, 256));
  run->add_option("--max-runs", r->opt.max_runs, "start at most this many runs, then stop");
  run->add_option("--batch", r->opt.batch,
                  "train at most this many repetitions of a setting together (BUTTER nets on "
                  "the CPU; each keeps the bits it has alone); 1: every run alone")
      ->capture_default_str()
      ->check(integer_text(1, 4096));
  run->add_option("--only-setting", r->opt.only_settings,
                  "run only this setting's rows (repeat for several; a slice of the plan)");
  run->add_option("--only-repetition", r->opt.only_repetitions,
                  "run only this repetition's rows (repeat for several; a slice of the plan)")
      ->check(CLI::NonNegativeNumber);
  run->add_flag("--mpi", r->mpi,
                "under mpirun -np N: rank 0 hands rows to the other ranks as they free up and "
                "stores their results (docs/scale.md); runs go alone, without claims");
  run->add_option("--shard", r->shard,
                  "run only shard I of N of the plan (I/N, 0 <= I < N; rows by key): N runners "
                  "(a Slurm array) cover the plan once, each into its own store; then study merge");
  run->add_flag("--no-step-hashes", r->no_step_hashes, "do not record each step's weight hash");
  run->add_option("--monitor", r->opt.monitor_every,
                  "the training monitor every N epochs into each record (report: monitor.png; "
                  "runs go alone, not batched)")
      ->check(integer_text(1, 1'000'000));
  run->add_flag("--no-epoch-predictions", r->no_epoch_predictions,
                "do not record each epoch's test predictions (long runs, large test sets)");
  run->add_flag("--quiet", r->opt.quiet, "no per-run lines");
  run->add_option("--checkpoint-dir", r->opt.checkpoint_dir,
                  "where runs keep their checkpoints, one file each (default: the store's "
                  "path + .checkpoints; for PostgreSQL, <study name>.checkpoints here): a run "
                  "that dies resumes there when the study runs again");
  run->add_option("--checkpoint-every", r->opt.checkpoint_seconds,
                  "seconds between a run's checkpoints (written at epoch ends; 0: every epoch)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e9));
  run->add_flag("--no-checkpoints", r->no_checkpoints, "runs write no checkpoints");
  run->add_option(
         "--claim-lease", r->opt.claim_lease_seconds,
         "seconds without a heartbeat after which another machine's claim on a row is taken over")
      ->check(CLI::Range(10, 86400));
  run->add_flag(
      "--no-wait", r->no_wait,
      "return when nothing is left to claim, without waiting for rows other runners hold");
  run->callback([r, run] {
    const variance::Study s = build_study(r->study);
    if (!r->shard.empty())
      std::tie(r->opt.shard_index, r->opt.shard_count) = variance::parse_shard(r->shard);
    r->opt.step_hashes = !r->no_step_hashes;
    r->opt.epoch_predictions = !r->no_epoch_predictions;
    r->opt.wait_for_others = !r->no_wait;
    // Heartbeats well inside the lease, so that a slow store never makes a live runner stale.
    r->opt.heartbeat_seconds = std::max<std::int64_t>(1, r->opt.claim_lease_seconds / 10);
    const std::string store = r->store.empty() ? default_store(s) : r->store;
    if (r->no_checkpoints && (run->count("--checkpoint-dir") || run->count("--checkpoint-every")))
      throw std::invalid_argument(
          "--no-checkpoints: --checkpoint-dir and --checkpoint-every do not apply");
    if (r->no_checkpoints)
      r->opt.checkpoint_dir.clear();
    else if (r->opt.checkpoint_dir.empty())
      r->opt.checkpoint_dir = (variance::is_postgres_url(store) ? s.name : store) + ".checkpoints";
    if (variance::is_postgres_url(store) && r->mpi)
      throw std::invalid_argument("--mpi: rank 0 writes an SQLite store; --store " + store +
                                  " is PostgreSQL (merge the SQLite store into it afterwards)");
    if (r->mpi) {
      if (run->count("--jobs") || run->count("--batch") || run->count("--claim-lease") ||
          r->no_wait)
        throw std::invalid_argument(
            "--mpi: --jobs, --batch, --claim-lease and --no-wait do not apply (one row per rank; "
            "rank 0 alone writes the store)");
      const auto sum = variance::run_study_mpi(s, store, r->opt);
      if (sum.failed > 0)
        throw std::runtime_error(std::to_string(sum.failed) +
                                 " run(s) failed; run the same command again to retry them");
      return;
    }
    const auto sum = variance::run_study(s, store, r->opt);
    if (sum.failed > 0)
      throw std::runtime_error(std::to_string(sum.failed) +
                               " run(s) failed; run the same command again to retry them");
  });

  struct PlanArgs {
    StudyFlags study;
    std::string store;
    std::set<std::string> only_settings;
    std::set<std::int64_t> only_repetitions;
    bool summary = false;
    std::string shard;
    std::string checkpoint_dir;
  };
  auto p = std::make_shared<PlanArgs>();
  CLI::App* plan =
      study->add_subcommand("plan", "list the plan's runs with their keys, seeds and status");
  add_study_flags(plan, p->study);
  plan->add_option("--store", p->store, "SQLite store (default: <study name>.sqlite)");
  plan->add_option("--only-setting", p->only_settings, "list only this setting's rows (repeat)");
  plan->add_option("--only-repetition", p->only_repetitions,
                   "list only this repetition's rows (repeat)")
      ->check(CLI::NonNegativeNumber);
  plan->add_option("--shard", p->shard,
                   "list only shard I of N (I/N), as study run --shard runs it");
  plan->add_option("--checkpoint-dir", p->checkpoint_dir,
                   "where study run keeps batches' checkpoints (as its option); a row with one "
                   "shows its epochs: todo@420");
  plan->add_flag("--summary", p->summary,
                 "count the experiments and runs per data set, BUTTER shape and depth (and the "
                 "nets outside BUTTER's 20% size rule) without planning: for whole sweeps");
  plan->callback([p] {
    if (p->summary) {
      std::string where;
      const nlohmann::json spec = build_spec(p->study, where);
      const std::string dir =
          spec.contains("experiment") ? spec["experiment"].value("data_dir", "") : "";
      print_sweep_summary(variance::summarize_sweep(spec, where, variance::loaded_data_dims(dir),
                                                    variance::loaded_data_rows(dir)));
      return;
    }
    const variance::Study s = build_study(p->study);
    const std::string path = p->store.empty() ? default_store(s) : p->store;
    std::set<std::string> done;
    std::map<std::string, std::string> claimed;  // key -> "claimed" (its runner lives) | "stale"
    if (variance::is_postgres_url(path)) {       // stored rows; claims are the database's
      done = variance::open_row_store(path, variance::RunnerOptions{}.claim_lease_seconds)
                 ->run_keys(s.name);
    } else if (fs::exists(path)) {
      const variance::Store store(path);
      done = store.run_keys(s.name);
      const auto me = variance::Claimant::self();
      const auto now = static_cast<std::int64_t>(std::time(nullptr));
      for (const auto& c : store.claims(s.name))
        claimed[c.key] =
            variance::claim_is_stale(c, me, now, variance::RunnerOptions{}.claim_lease_seconds)
                ? "stale"
                : "claimed";
    }
    // Rows not stored that a batch left a checkpoint of (study run's default folder).
    const std::string ck_dir =
        p->checkpoint_dir.empty()
            ? (variance::is_postgres_url(path) ? s.name : path) + ".checkpoints"
            : p->checkpoint_dir;
    const auto full = variance::make_plan(s);
    auto slice = variance::plan_slice(full, p->only_settings, p->only_repetitions);
    if (!p->shard.empty()) {
      const auto [index, count] = variance::parse_shard(p->shard);
      std::erase_if(slice, [index = index, count = count](const variance::PlanRow* row) {
        return variance::shard_of(row->key, count) != index;
      });
    }
    std::printf("%-16s %-22s %4s %-10s %-9s %s\n", "key", "setting", "rep", "level", "status",
                "seeds (init order augment dropout label_noise split [impl])");
    for (const variance::PlanRow* r : slice) {
      const variance::PlanRow& row = *r;
      const auto& sd = row.experiment.seeds;
      std::string status = done.count(row.key)      ? "stored"
                           : claimed.count(row.key) ? claimed[row.key]
                                                    : "todo";
      if (!done.count(row.key)) {  // "todo@420": a checkpoint after 420 epochs ("@?": unreadable)
        const std::int64_t at =
            variance::checkpoint_epochs(variance::checkpoint_path(ck_dir, row.key));
        if (at != -1) status += "@" + (at >= 0 ? std::to_string(at) : std::string("?"));
      }
      // The impl seed only where the run emulates (it changes nothing elsewhere).
      const std::string impl =
          row.experiment.emulation_on() ? " " + std::to_string(sd.impl) : std::string();
      std::printf("%-16s %-22s %4lld %-10s %-9s %llu %llu %llu %llu %llu %llu%s\n", row.key.c_str(),
                  row.setting.c_str(), static_cast<long long>(row.repetition),
                  std::string(level_name(row.experiment.level)).c_str(), status.c_str(),
                  (unsigned long long)sd.init, (unsigned long long)sd.order,
                  (unsigned long long)sd.augment, (unsigned long long)sd.dropout,
                  (unsigned long long)sd.label_noise, (unsigned long long)sd.split, impl.c_str());
    }
  });

  struct MergeArgs {
    std::string out;
    std::vector<std::string> shards;
  };
  auto m = std::make_shared<MergeArgs>();
  CLI::App* merge = study->add_subcommand(
      "merge",
      "join study stores (the shards of study run --shard, runs of several machines) into one: "
      "rows it lacks are copied, identical rows kept once, conflicting rows refused");
  merge
      ->add_option("out", m->out,
                   "store to merge into: an SQLite file (created if missing) or a PostgreSQL URL "
                   "(postgresql://...; tables created if missing)")
      ->required();
  merge
      ->add_option("shards", m->shards,
                   "stores to merge from: SQLite files, or PostgreSQL URLs when OUT is SQLite")
      ->required();
  merge->callback([m] {
    const bool to_pg = variance::is_postgres_url(m->out);
    for (const auto& shard : m->shards) {
      if (shard == m->out)
        throw std::invalid_argument("study merge: " + shard + " is the output store itself");
      if (variance::is_postgres_url(shard)) {
        if (to_pg)
          throw std::invalid_argument("study merge: from PostgreSQL into PostgreSQL (" + shard +
                                      "): merge into an SQLite store first");
      } else if (!fs::exists(shard)) {
        throw std::invalid_argument("study merge: no store " + shard);
      }
    }
    std::unique_ptr<variance::Store> out;
    if (!to_pg) out = std::make_unique<variance::Store>(m->out);
    std::int64_t added = 0, identical = 0;
    for (const auto& shard : m->shards) {
      if (!to_pg && !variance::is_postgres_url(shard) && fs::equivalent(shard, m->out))
        throw std::invalid_argument("study merge: " + shard + " is the output store itself");
      const auto got = to_pg ? variance::merge_sqlite_into_postgres(shard, m->out)
                       : variance::is_postgres_url(shard)
                           ? variance::merge_postgres_into_sqlite(shard, m->out)
                           : out->merge_from(shard);
      std::printf("%s: %lld run(s) added, %lld already there\n", shard.c_str(),
                  static_cast<long long>(got.added), static_cast<long long>(got.identical));
      added += got.added, identical += got.identical;
    }
    std::printf("%s: %lld run(s) added from %zu store(s), %lld already there\n", m->out.c_str(),
                static_cast<long long>(added), m->shards.size(), static_cast<long long>(identical));
  });

  struct TableArgs {
    std::string store, study, out;
  };
  auto t = std::make_shared<TableArgs>();
  CLI::App* table =
      study->add_subcommand("table", "print the study's tables; with --out also write them as CSV");
  table->add_option("store", t->store, "SQLite store")->required();
  table->add_option("--study", t->study, "study name (default: the store's only study)");
  table->add_option("--out", t->out, "directory for the CSV files");
  table->callback([t] {
    const auto local = readable_store(t->store, "study table");
    const variance::Store store(local->path);
    const auto a = variance::analyze(store, pick_study(store, t->study));
    variance::print_analysis(a, std::cout);
    if (!t->out.empty()) {
      variance::write_analysis(a, t->out);
      std::cout << "\nCSV files in " << t->out << "\n";
    }
  });

  auto rep = std::make_shared<TableArgs>();
  CLI::App* report =
      app.add_subcommand("report", "CSV tables, PNG pictures and one HTML page for a study");
  report->add_option("store", rep->store, "SQLite store")->required();
  report->add_option("--study", rep->study, "study name (default: the store's only study)");
  report->add_option("--out", rep->out, "output directory (default: <store>-report)");
  report->callback([rep] {
    const auto local = readable_store(rep->store, "report");
    const variance::Store store(local->path);
    const auto a = variance::analyze(store, pick_study(store, rep->study));
    const std::string out = rep->out.empty()
                                ? (variance::is_postgres_url(rep->store)
                                       ? std::string("postgres")
                                       : fs::path(rep->store).replace_extension("").string()) +
                                      "-report"
                                : rep->out;
    variance::write_analysis(a, out);
    // The table as text, for the HTML page.
    {
      std::ostringstream text;
      variance::print_analysis(a, text);
      std::ofstream(fs::path(out) / "table.txt") << text.str();
    }
    const std::string cmd = python() + " '" + report_script() + "' '" + out + "' '" + a.study + "'";
    const int rc = std::system(cmd.c_str());
    if (rc != 0)
      throw std::runtime_error("report: drawing failed (" + cmd + "); the CSV files are in " + out);
    std::cout << "report: " << (fs::path(out) / "index.html").string() << "\n";
  });
}

}  // namespace detdl::tools
