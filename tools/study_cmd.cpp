// `detdl study run|plan|table` and `detdl report`: run a study file into its SQLite store
// (resumable: the same command again runs only what is missing), show its plan, print and
// export its tables, and draw its pictures (docs/studies.md).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <filesystem>
#include <iostream>
#include <set>
#include <sstream>
#include <fstream>
#include <stdexcept>

#include "tools/cli_checks.h"
#include "tools/commands.h"
#include "variance/analysis.h"
#include "variance/runner.h"
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

variance::Study build_study(const StudyFlags& f) {
  nlohmann::json spec = nlohmann::json::object();
  std::string where = "flags";
  if (!f.file.empty()) {
    require_file(f.file, "study");
    spec = variance::load_study(f.file).spec;
    where = f.file + " + flags";
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
  variance::Study s = variance::study_from_json(spec, where);
  s.source = f.file;
  return s;
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
    bool no_step_hashes = false;
    bool no_wait = false;
  };
  auto r = std::make_shared<RunArgs>();
  CLI::App* run =
      study->add_subcommand("run", "run every run of the plan not yet in the store (resumable)");
  add_study_flags(run, r->study);
  run->add_option("--store", r->store, "SQLite store (default: <study name>.sqlite)");
  run->add_option("--jobs", r->opt.jobs, "runs at once (worker processes)")
      ->check(integer_text(1, 256));
  run->add_option("--max-runs", r->opt.max_runs, "start at most this many runs, then stop");
  run->add_option("--only-setting", r->opt.only_settings,
                  "run only this setting's rows (repeat for several; a slice of the plan)");
  run->add_option("--only-repetition", r->opt.only_repetitions,
                  "run only this repetition's rows (repeat for several; a slice of the plan)")
      ->check(CLI::NonNegativeNumber);
  run->add_flag("--no-step-hashes", r->no_step_hashes, "do not record each step's weight hash");
  run->add_flag("--quiet", r->opt.quiet, "no per-run lines");
  run->add_option(
         "--claim-lease", r->opt.claim_lease_seconds,
         "seconds without a heartbeat after which another machine's claim on a row is taken over")
      ->check(CLI::Range(10, 86400));
  run->add_flag(
      "--no-wait", r->no_wait,
      "return when nothing is left to claim, without waiting for rows other runners hold");
  run->callback([r] {
    const variance::Study s = build_study(r->study);
    r->opt.step_hashes = !r->no_step_hashes;
    r->opt.wait_for_others = !r->no_wait;
    // Heartbeats well inside the lease, so that a slow store never makes a live runner stale.
    r->opt.heartbeat_seconds = std::max<std::int64_t>(1, r->opt.claim_lease_seconds / 10);
    const auto sum = variance::run_study(s, r->store.empty() ? default_store(s) : r->store, r->opt);
    if (sum.failed > 0)
      throw std::runtime_error(std::to_string(sum.failed) +
                               " run(s) failed; run the same command again to retry them");
  });

  struct PlanArgs {
    StudyFlags study;
    std::string store;
    std::set<std::string> only_settings;
    std::set<std::int64_t> only_repetitions;
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
  plan->callback([p] {
    const variance::Study s = build_study(p->study);
    const std::string path = p->store.empty() ? default_store(s) : p->store;
    std::set<std::string> done;
    std::map<std::string, std::string> claimed;  // key -> "claimed" (its runner lives) | "stale"
    if (fs::exists(path)) {
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
    const auto full = variance::make_plan(s);
    const auto slice = variance::plan_slice(full, p->only_settings, p->only_repetitions);
    std::printf("%-16s %-22s %4s %-10s %-7s %s\n", "key", "setting", "rep", "level", "status",
                "seeds (init order augment dropout label_noise split [impl])");
    for (const variance::PlanRow* r : slice) {
      const variance::PlanRow& row = *r;
      const auto& sd = row.experiment.seeds;
      const std::string status = done.count(row.key)      ? "stored"
                                 : claimed.count(row.key) ? claimed[row.key]
                                                          : "todo";
      // The impl seed only where the run emulates (it changes nothing elsewhere).
      const std::string impl =
          row.experiment.emulation_on() ? " " + std::to_string(sd.impl) : std::string();
      std::printf("%-16s %-22s %4lld %-10s %-7s %llu %llu %llu %llu %llu %llu%s\n", row.key.c_str(),
                  row.setting.c_str(), static_cast<long long>(row.repetition),
                  std::string(level_name(row.experiment.level)).c_str(), status.c_str(),
                  (unsigned long long)sd.init, (unsigned long long)sd.order,
                  (unsigned long long)sd.augment, (unsigned long long)sd.dropout,
                  (unsigned long long)sd.label_noise, (unsigned long long)sd.split, impl.c_str());
    }
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
    require_file(t->store, "study table");
    const variance::Store store(t->store);
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
    require_file(rep->store, "report");
    const variance::Store store(rep->store);
    const auto a = variance::analyze(store, pick_study(store, rep->study));
    const std::string out = rep->out.empty()
                                ? fs::path(rep->store).replace_extension("").string() + "-report"
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
