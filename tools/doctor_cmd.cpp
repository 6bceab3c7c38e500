// `detdl doctor RECORD|STORE`: the training doctor after the fact. Replays the epochs of a
// run record (a JSON file from `detdl train --record`) or of every run in a study store
// through AutoTrainer's rules and detdl's (doctor/detect.h), and prints each diagnosis with
// its twin verdict (below), and for a store the verdicts per setting.
// The gradient and dead-unit rules need the monitor's probes (`--monitor N` or `--doctor`
// when the run trained); without them only the loss and accuracy rules can speak.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "doctor/bench.h"
#include "doctor/detect.h"
#include "tools/cli_checks.h"
#include "tools/commands.h"
#include "variance/store.h"

namespace detdl::tools {
namespace {

struct DoctorFlags {
  std::string path, kind = "both";
  double theta = 0.7;
  bool json = false;
};

bool is_sqlite(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[16] = {};
  in.read(magic, sizeof magic);
  return in.gcount() == 16 && std::string(magic, 15) == "SQLite format 3";
}

struct Named {
  std::string name;
  nlohmann::json record;
};

std::vector<Named> load(const std::string& path) {
  std::ifstream probe(path, std::ios::binary);
  if (!probe) throw std::invalid_argument(path + ": cannot read");
  std::vector<Named> out;
  if (is_sqlite(path)) {
    variance::Store store(path);
    for (const auto& study : store.studies())
      for (const auto& r : store.runs(study))
        out.push_back(
            {study + "/" + r.setting + "/" + std::to_string(r.repetition), store.record(r.key)});
    if (out.empty()) throw std::invalid_argument(path + ": the store holds no runs");
    return out;
  }
  std::stringstream ss;
  ss << probe.rdbuf();
  try {
    out.push_back({path, nlohmann::json::parse(ss.str())});
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(path + ": not a JSON run record or a study store (" +
                                std::string(e.what()) + ")");
  }
  return out;
}

std::string fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// Twin judging (docs/doctor.md): a doctor only watching changes no bit, so a stored run that
// trained to the end is the undoctored twin of the run a doctor would have stopped at its
// diagnosis. Its best held-out accuracy judges the diagnosis: a false positive when the
// twin reaches the target, a problem confirmed when it does not; a run that ends under the
// target without a diagnosis is a miss. A record cut short (by a doctor or a stop) has no
// twin: verdict "no_twin".
std::string twin_verdict(bool diagnosed, bool whole, double twin_best, double theta) {
  if (!whole) return "no_twin";
  const bool reaches = twin_best >= theta;
  if (diagnosed) return reaches ? "false_positive" : "confirmed";
  return reaches ? "healthy" : "missed";
}

// Best held-out accuracy over the record's epochs (NaN skipped), as best_held_accuracy.
double twin_best_held(const std::vector<doctor::EpochView>& views) {
  double best = 0.0;
  for (const auto& v : views)
    if (std::isfinite(v.held_acc)) best = std::max(best, v.held_acc);
  return best;
}

// Per setting (a store's study/setting) and doctor: how many runs got each verdict.
struct Tally {
  std::map<std::string, int> verdicts;
  int runs = 0;
};

int run_doctor(const DoctorFlags& f) {
  std::vector<doctor::DoctorKind> kinds;
  if (f.kind == "both")
    kinds = {doctor::DoctorKind::autotrainer, doctor::DoctorKind::detdl};
  else if (const auto k = doctor::parse_doctor(f.kind))
    kinds = {*k};
  else
    throw std::invalid_argument("--kind: expected autotrainer, detdl or both, got '" + f.kind +
                                "'");
  if (!(f.theta >= 0.0 && f.theta <= 1.0))
    throw std::invalid_argument("--theta: expected an accuracy in [0, 1], got " +
                                std::to_string(f.theta));
  doctor::DoctorParams params;
  params.theta = f.theta;
  nlohmann::json all = nlohmann::json::array();
  std::map<std::string, std::map<std::string, Tally>> tallies;  // group -> doctor -> tally
  for (const auto& [name, record] : load(f.path)) {
    std::vector<MonitorStats> probes;
    const auto views = doctor::record_epochs(record, probes, name);
    const bool whole = !record.value("stopped_early", false);
    const double best = twin_best_held(views);
    nlohmann::json row{{"run", name},
                       {"epochs", views.size()},
                       {"probes", probes.size()},
                       {"twin_best_held", whole ? nlohmann::json(best) : nlohmann::json(nullptr)}};
    if (!f.json)
      std::printf("%s: %zu epochs, %zu probed%s; %s\n", name.c_str(), views.size(), probes.size(),
                  probes.empty() ? " (no probes: only the loss and accuracy rules apply)" : "",
                  whole ? ("best held-out accuracy " + fixed(best, 4) + " (the twin)").c_str()
                        : "stopped early: no twin");
    const std::string group = name.substr(0, name.rfind('/'));
    for (const auto kind : kinds) {
      const std::string kname(doctor::doctor_name(kind));
      const auto d = doctor::diagnose_record(record, kind, params, name);
      const std::string verdict = twin_verdict(d.has_value(), whole, best, f.theta);
      nlohmann::json entry = d ? doctor::to_json(*d, kind) : nlohmann::json(nullptr);
      row[kname] = entry;
      row[kname + "_verdict"] = verdict;
      Tally& t = tallies[group][kname];
      ++t.runs;
      ++t.verdicts[verdict];
      if (f.json) continue;
      if (d)
        std::printf("  %-11s %s (%s) after epoch %lld: %s%s -> %s\n", kname.c_str(),
                    std::string(doctor::problem_name(d->problems.front())).c_str(),
                    std::string(doctor::problem_code(d->problems.front())).c_str(),
                    static_cast<long long>(d->epoch + 1), d->reason.c_str(),
                    d->layer.empty() ? "" : (" [" + d->layer + "]").c_str(), verdict.c_str());
      else
        std::printf("  %-11s no problem -> %s\n", kname.c_str(), verdict.c_str());
    }
    all.push_back(row);
  }
  if (f.json) {
    std::cout << all.dump(1) << "\n";
    return 0;
  }
  // A store: the verdicts per setting (a single record's line above says it all).
  if (all.size() > 1) {
    std::printf(
        "\ntwin verdicts (theta %s): confirmed = diagnosed, the twin ends under theta; "
        "false_positive = diagnosed, the twin reaches it; missed = no diagnosis, ends "
        "under it\n%-32s %-12s %5s %9s %14s %7s %8s %8s\n",
        fixed(f.theta, 3).c_str(), "setting", "doctor", "runs", "confirmed", "false_positive",
        "missed", "healthy", "no_twin");
    for (const auto& [group, by_kind] : tallies)
      for (const auto& [kname, t] : by_kind) {
        auto n = [&t = t](const char* v) {
          const auto it = t.verdicts.find(v);
          return it == t.verdicts.end() ? 0 : it->second;
        };
        std::printf("%-32s %-12s %5d %9d %14d %7d %8d %8d\n", group.c_str(), kname.c_str(), t.runs,
                    n("confirmed"), n("false_positive"), n("missed"), n("healthy"), n("no_twin"));
      }
  }
  return 0;
}

struct BenchFlags {
  std::string file, out;
  std::vector<std::string> arms{"autotrainer", "detdl", "random"};
  std::vector<std::string> only;
  bool no_repairs = false, quiet = false;
};

int run_bench_cmd(const BenchFlags& f) {
  doctor::Bench b = doctor::load_bench(f.file);
  if (!f.only.empty()) {
    std::vector<doctor::BenchCase> keep;
    for (const auto& name : f.only) {
      auto it = std::find_if(b.cases.begin(), b.cases.end(),
                             [&](const doctor::BenchCase& c) { return c.name == name; });
      if (it == b.cases.end())
        throw std::invalid_argument("--only-case: no case '" + name + "' in " + f.file);
      keep.push_back(*it);
    }
    b.cases = keep;
  }
  doctor::BenchOptions o;
  o.arms = f.arms;
  o.repairs = !f.no_repairs;
  if (!f.quiet)
    o.log = [](const std::string& line) {
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
    };
  const auto summary = doctor::run_bench(b, f.out, o);
  std::printf("%s", doctor::summary_markdown(summary).c_str());
  return 0;
}

}  // namespace

void add_doctor_bench_command(CLI::App& app) {
  auto f = std::make_shared<BenchFlags>();
  CLI::App* c = app.add_subcommand(
      "doctor-bench",
      "the doctor's benchmark: problem and healthy configurations judged on twin runs "
      "(docs/doctor.md); resumes from --out");
  c->add_option("file", f->file, "benchmark file (studies/doctor/*.toml)")->required();
  c->add_option("--out", f->out, "results folder: cases/NAME.json, summary.md/.json, cases.csv")
      ->required();
  c->add_option("--arm", f->arms, "autotrainer, detdl, random (repeatable; default all three)");
  c->add_option("--only-case", f->only, "run only this case (repeatable)");
  c->add_flag("--no-repairs", f->no_repairs, "detection and twins only");
  c->add_flag("--quiet", f->quiet, "print only the summary");
  c->callback([f] { run_bench_cmd(*f); });
}

void add_doctor_command(CLI::App& app) {
  auto f = std::make_shared<DoctorFlags>();
  CLI::App* c = app.add_subcommand(
      "doctor", "diagnose recorded runs (a JSON run record or a study store) after the fact");
  c->add_option("path", f->path, "run record (.json) or study store (SQLite)")->required();
  c->add_option("--kind", f->kind, "autotrainer, detdl or both (default)");
  c->add_option("--theta", f->theta, "the accuracy target (0.7)")->check(number_text());
  c->add_flag("--json", f->json, "print the diagnoses as JSON");
  c->callback([f] { run_doctor(*f); });
}

}  // namespace detdl::tools
