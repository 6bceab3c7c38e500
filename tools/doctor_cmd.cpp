// `detdl doctor RECORD|STORE`: the training doctor after the fact. Replays the epochs of a
// run record (a JSON file from `detdl train --record`) or of every run in a study store
// through AutoTrainer's rules and detdl's (doctor/detect.h), and prints each diagnosis.
// The gradient and dead-unit rules need the monitor's probes (`--monitor N` or `--doctor`
// when the run trained); without them only the loss and accuracy rules can speak.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
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
  for (const auto& [name, record] : load(f.path)) {
    std::vector<MonitorStats> probes;
    const auto views = doctor::record_epochs(record, probes, name);
    nlohmann::json row{{"run", name}, {"epochs", views.size()}, {"probes", probes.size()}};
    if (!f.json)
      std::printf("%s: %zu epochs, %zu probed%s\n", name.c_str(), views.size(), probes.size(),
                  probes.empty() ? " (no probes: only the loss and accuracy rules apply)" : "");
    for (const auto kind : kinds) {
      const auto d = doctor::diagnose_record(record, kind, params, name);
      row[std::string(doctor::doctor_name(kind))] =
          d ? doctor::to_json(*d, kind) : nlohmann::json(nullptr);
      if (f.json) continue;
      if (d)
        std::printf("  %-11s %s (%s) after epoch %lld: %s%s\n",
                    std::string(doctor::doctor_name(kind)).c_str(),
                    std::string(doctor::problem_name(d->problems.front())).c_str(),
                    std::string(doctor::problem_code(d->problems.front())).c_str(),
                    static_cast<long long>(d->epoch + 1), d->reason.c_str(),
                    d->layer.empty() ? "" : (" [" + d->layer + "]").c_str());
      else
        std::printf("  %-11s no problem\n", std::string(doctor::doctor_name(kind)).c_str());
    }
    all.push_back(row);
  }
  if (f.json) std::cout << all.dump(1) << "\n";
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
