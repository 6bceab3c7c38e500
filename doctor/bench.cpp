#include "doctor/bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "doctor/detect.h"
#include "doctor/repair.h"
#include "engine/atomic_file.h"
#include "variance/study.h"

namespace detdl::doctor {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

bool file_name_ok(const std::string& s) {
  if (s.empty() || s.size() > 100) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return false;
  return s != "." && s != "..";
}

json diagnosis_json(const std::optional<Diagnosis>& d) {
  if (!d) return nullptr;
  json j = to_json(*d, DoctorKind::detdl);
  j.erase("doctor");
  return j;
}

double mean(const std::vector<double>& v) {
  if (v.empty()) return std::nan("");
  double s = 0.0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

}  // namespace

Bench load_bench(const std::string& path) {
  const json j = variance::read_config_file(path);
  if (!j.is_object()) throw std::invalid_argument(path + ": expected a table of fields");
  Bench b;
  static const std::set<std::string> known{"name",       "theta",      "repair_seed",
                                           "max_rounds", "experiment", "case"};
  for (const auto& [k, v] : j.items())
    if (!known.count(k))
      throw std::invalid_argument(path + ": unknown field '" + k +
                                  "' (name, theta, repair_seed, max_rounds, experiment, case)");
  try {
    b.name = j.at("name").get<std::string>();
    b.theta = j.value("theta", 0.7);
    b.repair_seed = j.value("repair_seed", std::uint64_t{1});
    b.max_rounds = j.value("max_rounds", 10);
  } catch (const json::exception& e) {
    throw std::invalid_argument(path + ": " + e.what());
  }
  if (!(b.theta > 0.0 && b.theta <= 1.0))
    throw std::invalid_argument(path + ": theta: expected an accuracy in (0, 1]");
  if (b.max_rounds < 1 || b.max_rounds > 100)
    throw std::invalid_argument(path + ": max_rounds: expected 1 to 100");
  const json defaults = j.value("experiment", json::object());
  const json base = nets::to_json(variance::experiment_over(nets::to_json(nets::Experiment{}),
                                                            defaults, path + ": experiment"));
  if (!j.contains("case") || !j.at("case").is_array() || j.at("case").empty())
    throw std::invalid_argument(path + ": no [[case]] entries");
  std::set<std::string> names;
  std::size_t i = 0;
  for (const json& c : j.at("case")) {
    const std::string where = path + ": case[" + std::to_string(i++) + "]";
    if (!c.is_object()) throw std::invalid_argument(where + ": expected a table");
    for (const auto& [k, v] : c.items())
      if (k != "name" && k != "expect" && k != "note" && k != "theta" && k != "experiment")
        throw std::invalid_argument(where + ": unknown field '" + k +
                                    "' (name, expect, note, theta, experiment)");
    BenchCase bc;
    if (!c.contains("name") || !c.at("name").is_string() ||
        !file_name_ok(bc.name = c.at("name").get<std::string>()))
      throw std::invalid_argument(where + ".name: expected letters, digits, '.', '_' or '-'");
    if (!names.insert(bc.name).second)
      throw std::invalid_argument(where + ".name: '" + bc.name + "' twice");
    if (!c.contains("expect") || !c.at("expect").is_string())
      throw std::invalid_argument(where + ".expect: expected a problem name or healthy");
    bc.expect = c.at("expect").get<std::string>();
    if (bc.expect != "healthy") {
      const auto p = parse_problem(bc.expect);
      if (!p)
        throw std::invalid_argument(where +
                                    ".expect: expected vanishing_gradient, "
                                    "exploding_gradient, dying_relu, oscillating_loss, "
                                    "slow_convergence or healthy, got '" +
                                    bc.expect + "'");
      bc.expect = std::string(problem_name(*p));
    }
    bc.note = c.value("note", std::string());
    if (c.contains("theta")) {
      if (!c.at("theta").is_number() || !(c.at("theta").get<double>() > 0.0) ||
          c.at("theta").get<double>() > 1.0)
        throw std::invalid_argument(where + ".theta: expected an accuracy in (0, 1]");
      bc.theta = c.at("theta").get<double>();
    }
    bc.experiment = variance::experiment_over(base, c.value("experiment", json::object()),
                                              where + ".experiment");
    b.cases.push_back(std::move(bc));
  }
  return b;
}

json run_bench_case(const Bench& b, const BenchCase& c, const BenchOptions& o) {
  auto log = [&](const std::string& s) {
    if (o.log) o.log(c.name + ": " + s);
  };
  DoctorParams params;
  params.theta = c.theta > 0.0 ? c.theta : b.theta;
  const double theta = params.theta;
  const std::int64_t epochs = c.experiment.epochs;
  // The twin: the full budget, probed every epoch, both doctors watching. Each doctor sees
  // the probes of its own schedule only (DoctorParams::monitor), as it would live.
  Doctor at(DoctorKind::autotrainer, epochs, params), dd(DoctorKind::detdl, epochs, params);
  nets::RunOptions ro;
  ro.monitor.every = 1;
  std::int64_t steps_per_epoch = 0;
  ro.on_start = [&](const data::DataBundle& bundle, const nets::NetSpec&) {
    const std::int64_t rows = bundle.train.size(), batch = c.experiment.batch_size;
    steps_per_epoch = (rows + batch - 1) / batch;
  };
  double probe_seconds = 0.0, epoch_seconds = 0.0;
  ro.stop_after_epoch = [&](const EpochStats& s) {
    for (const auto& [kind, doctor] : {std::pair<DoctorKind, Doctor*>{DoctorKind::autotrainer, &at},
                                       std::pair<DoctorKind, Doctor*>{DoctorKind::detdl, &dd}}) {
      EpochView v = epoch_view(s);
      if (!params.monitor(kind).probes(s.epoch, steps_per_epoch, c.experiment.batch_size))
        v.probe = nullptr;
      doctor->observe(v);
    }
    if (s.monitor) probe_seconds += s.monitor->seconds;
    epoch_seconds += s.seconds;
    return false;  // watching
  };
  const auto t0 = std::chrono::steady_clock::now();
  const nets::RunOutput twin = nets::run_experiment(c.experiment, ro);
  const double twin_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double twin_acc = best_held_accuracy(twin.result);
  const bool twin_reaches = twin_acc >= theta && twin.result.nonfinite_loss_steps == 0;
  json r{{"name", c.name},
         {"expect", c.expect},
         {"note", c.note},
         {"theta", theta},
         {"experiment", nets::to_json(c.experiment)},
         {"twin",
          {{"best_held_accuracy", twin_acc},
           {"last_test_accuracy",
            twin.result.epochs.empty() ? 0.0 : twin.result.epochs.back().test_accuracy},
           {"reaches", twin_reaches},
           {"nonfinite_loss_steps", twin.result.nonfinite_loss_steps},
           {"weight_hash", twin.result.weight_hash},
           {"epochs", twin.result.epochs.size()},
           {"seconds", twin_seconds},
           {"epoch_seconds", epoch_seconds},
           {"probe_seconds", probe_seconds}}}};
  log("twin best held-out accuracy " + std::to_string(twin_acc) +
      (twin_reaches ? " (reaches)" : " (fails)"));

  for (const std::string& arm : o.arms) {
    const bool random = arm == "random";
    if (arm != "autotrainer" && arm != "detdl" && !random)
      throw std::invalid_argument("doctor bench: unknown arm '" + arm +
                                  "' (autotrainer, detdl, random)");
    const Doctor& detector = arm == "detdl" ? dd : at;
    const auto& d = detector.diagnosis();
    json a{{"diagnosis", diagnosis_json(d)},
           {"detected", d.has_value()},
           {"as_expected", d && std::string(problem_name(d->problems.front())) == c.expect},
           {"false_positive", d.has_value() && twin_reaches}};
    if (d && o.repairs) {
      RepairOptions ropt;
      ropt.doctor.kind = arm == "detdl" ? DoctorKind::detdl : DoctorKind::autotrainer;
      ropt.doctor.params = params;
      ropt.repair_seed = b.repair_seed;
      ropt.max_rounds = b.max_rounds;
      ropt.random = random;
      ropt.known_initial = d;
      ropt.known_initial_accuracy = twin_acc;
      const RepairResult rr = repair(c.experiment, ropt);
      double after = twin_acc;
      if (rr.solved)
        after = rr.tries.back().best_held_accuracy;
      else
        for (const auto& t : rr.tries) after = std::max(after, t.best_held_accuracy);
      a["repair"] = to_json(rr);
      a["repair"].erase("initial");
      a["solved"] = rr.solved;
      a["runs"] = rr.tries.size();
      a["repaired_accuracy"] = after;
      a["repair_counts"] = !twin_reaches && after >= theta;
      log(arm + ": " + std::string(problem_name(d->problems.front())) + ", " +
          (rr.solved ? "solved" : "not solved") + " in " + std::to_string(rr.tries.size()) +
          " runs, accuracy " + std::to_string(after));
    } else {
      log(arm + ": " + (d ? std::string(problem_name(d->problems.front())) : "no problem"));
    }
    r[arm] = a;
  }
  return r;
}

json summarize_bench(const Bench& b, const std::vector<json>& results) {
  json s{{"name", b.name}, {"theta", b.theta}, {"cases", results.size()}};
  std::map<std::string, int> per_expect;
  for (const auto& r : results) ++per_expect[r.at("expect").get<std::string>()];
  s["cases_per_expectation"] = per_expect;
  std::vector<double> overhead;
  for (const auto& r : results) {
    const auto& t = r.at("twin");
    const double es = t.value("epoch_seconds", 0.0), ps = t.value("probe_seconds", 0.0);
    if (r.at("expect") == "healthy" && es > ps && es > 0.0) overhead.push_back(ps / (es - ps));
  }
  // The monitor's cost on the healthy twins, probing every epoch (detdl's schedule;
  // AutoTrainer's probes every third epoch: a third of it).
  s["probe_overhead_every_epoch"] = number_or_null(mean(overhead));
  json arms = json::object();
  for (const std::string arm : {"autotrainer", "detdl", "random"}) {
    bool any = false;
    for (const auto& r : results) any = any || r.contains(arm);
    if (!any) continue;
    json a;
    std::map<std::string, std::pair<int, int>> detection;  // expect -> (detected as expected, any)
    int healthy_flagged = 0, fp = 0, diagnosed = 0, twin_fails = 0, counts = 0, solved = 0;
    std::vector<double> before, after, runs;
    for (const auto& r : results) {
      if (!r.contains(arm)) continue;
      const auto& x = r.at(arm);
      const std::string expect = r.at("expect");
      const bool det = x.at("detected");
      auto& dcount = detection[expect];
      dcount.first += x.at("as_expected").get<bool>() ? 1 : 0;
      dcount.second += det ? 1 : 0;
      if (expect == "healthy" && det) ++healthy_flagged;
      if (!det) continue;
      ++diagnosed;
      if (x.at("false_positive").get<bool>()) ++fp;
      if (!r.at("twin").at("reaches").get<bool>() && x.contains("repaired_accuracy")) {
        ++twin_fails;
        before.push_back(r.at("twin").at("best_held_accuracy"));
        after.push_back(x.at("repaired_accuracy"));
        if (x.at("repair_counts").get<bool>()) ++counts;
      }
      if (x.value("solved", false)) ++solved;
      if (x.contains("runs")) runs.push_back(x.at("runs").get<double>());
    }
    json det = json::object();
    for (const auto& [k, v] : detection)
      det[k] = {{"cases", per_expect[k]}, {"as_expected", v.first}, {"any_problem", v.second}};
    a["detection"] = det;
    a["diagnosed"] = diagnosed;
    a["healthy_flagged"] = healthy_flagged;
    a["false_positives"] = fp;
    a["twin_fails_among_diagnosed"] = twin_fails;
    a["repairs_that_count"] = counts;
    a["solved_by_own_monitor"] = solved;
    a["accuracy_before"] = number_or_null(mean(before));
    a["accuracy_after"] = number_or_null(mean(after));
    a["mean_runs_per_repair"] = number_or_null(mean(runs));
    arms[arm] = a;
  }
  s["arms"] = arms;
  return s;
}

std::string summary_markdown(const json& s) {
  std::ostringstream o;
  auto pct = [](int a, int b) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%d/%d (%.0f%%)", a, b, b > 0 ? 100.0 * a / b : 0.0);
    return std::string(buf);
  };
  auto num = [](const json& v) {
    if (v.is_null()) return std::string("-");
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", v.get<double>());
    return std::string(buf);
  };
  o << "# Doctor benchmark: " << s.at("name").get<std::string>() << "\n\n"
    << s.at("cases").get<int>() << " cases, accuracy target " << s.at("theta").get<double>()
    << "; judged on exact twin runs (doctor/bench.h).\n\n";
  const auto& arms = s.at("arms");
  o << "| | ";
  for (const auto& [name, a] : arms.items()) o << name << " | ";
  o << "\n|---|";
  for (std::size_t i = 0; i < arms.size(); ++i) o << "---|";
  o << "\n";
  std::set<std::string> expects;
  for (const auto& [name, a] : arms.items())
    for (const auto& [k, v] : a.at("detection").items()) expects.insert(k);
  for (const auto& e : expects) {
    o << "| " << (e == "healthy" ? "healthy: flagged" : e + ": detected as expected") << " | ";
    for (const auto& [name, a] : arms.items()) {
      const auto& d = a.at("detection");
      if (!d.contains(e)) {
        o << "- | ";
        continue;
      }
      const int n = d.at(e).at("cases");
      o << pct(e == "healthy" ? d.at(e).at("any_problem").get<int>()
                              : d.at(e).at("as_expected").get<int>(),
               n)
        << " | ";
    }
    o << "\n";
  }
  auto row = [&](const char* label, const std::function<std::string(const json&)>& f) {
    o << "| " << label << " | ";
    for (const auto& [name, a] : arms.items()) o << f(a) << " | ";
    o << "\n";
  };
  row("diagnosed", [](const json& a) { return std::to_string(a.at("diagnosed").get<int>()); });
  row("false positives (twin reaches the target)", [&](const json& a) {
    return pct(a.at("false_positives").get<int>(), a.at("diagnosed").get<int>());
  });
  row("repairs that count (twin fails, repaired reaches)", [&](const json& a) {
    return pct(a.at("repairs_that_count").get<int>(),
               a.at("twin_fails_among_diagnosed").get<int>());
  });
  row("solved by its own monitor",
      [](const json& a) { return std::to_string(a.at("solved_by_own_monitor").get<int>()); });
  row("accuracy before -> after", [&](const json& a) {
    return num(a.at("accuracy_before")) + " -> " + num(a.at("accuracy_after"));
  });
  row("runs per repair", [&](const json& a) { return num(a.at("mean_runs_per_repair")); });
  o << "\nMonitor cost on the healthy twins, probing every epoch: "
    << num(s.at("probe_overhead_every_epoch")) << " of the epoch time.\n";
  return o.str();
}

json run_bench(const Bench& b, const std::string& out_dir, const BenchOptions& o) {
  for (const auto& arm : o.arms)
    if (arm != "autotrainer" && arm != "detdl" && arm != "random")
      throw std::invalid_argument("--arm: unknown arm '" + arm + "' (autotrainer, detdl, random)");
  const fs::path cases = fs::path(out_dir) / "cases";
  std::error_code ec;
  fs::create_directories(cases, ec);
  if (!fs::is_directory(cases))
    throw std::invalid_argument("--out " + out_dir + ": cannot create " + cases.string());
  std::vector<json> results;
  for (const auto& c : b.cases) {
    const fs::path p = cases / (c.name + ".json");
    if (fs::exists(p)) {
      std::ifstream in(p);
      try {
        json r = json::parse(in);
        // Stored for this very case, with every arm asked for (and its repair, if asked).
        bool complete = r.value("name", std::string()) == c.name &&
                        r.value("experiment", json()) == nets::to_json(c.experiment);
        for (const auto& arm : o.arms)
          complete =
              complete && r.contains(arm) &&
              (!o.repairs || !r.at(arm).value("detected", false) || r.at(arm).contains("repair"));
        if (complete) {
          results.push_back(std::move(r));
          if (o.log) o.log(c.name + ": stored, skipped");
          continue;
        }
      } catch (const json::exception&) {
      }
      if (o.log) o.log(c.name + ": stored result is stale, incomplete or unreadable: run again");
    }
    json r = run_bench_case(b, c, o);
    write_file_atomically(p.string(), r.dump(1) + "\n", p.string());
    results.push_back(std::move(r));
  }
  const json s = summarize_bench(b, results);
  write_file_atomically((fs::path(out_dir) / "summary.json").string(), s.dump(1) + "\n",
                        out_dir + "/summary.json");
  write_file_atomically((fs::path(out_dir) / "summary.md").string(), summary_markdown(s),
                        out_dir + "/summary.md");
  std::ostringstream csv;
  csv << "case,expect,twin_best_held_accuracy,twin_reaches";
  for (const std::string arm : {"autotrainer", "detdl", "random"})
    csv << "," << arm << "_diagnosis," << arm << "_epoch," << arm << "_false_positive," << arm
        << "_solved," << arm << "_runs," << arm << "_repaired_accuracy";
  csv << "\n";
  for (const auto& r : results) {
    csv << r.at("name").get<std::string>() << "," << r.at("expect").get<std::string>() << ","
        << r.at("twin").at("best_held_accuracy").get<double>() << ","
        << (r.at("twin").at("reaches").get<bool>() ? "true" : "false");
    for (const std::string arm : {"autotrainer", "detdl", "random"}) {
      if (!r.contains(arm)) {
        csv << ",,,,,,";
        continue;
      }
      const auto& a = r.at(arm);
      const auto& d = a.at("diagnosis");
      csv << "," << (d.is_null() ? "" : d.at("problems")[0].get<std::string>()) << ","
          << (d.is_null() ? "" : std::to_string(d.at("epoch").get<int>())) << ","
          << (a.at("false_positive").get<bool>() ? "true" : "false") << ","
          << (a.contains("solved") ? (a.at("solved").get<bool>() ? "true" : "false") : "") << ","
          << (a.contains("runs") ? std::to_string(a.at("runs").get<int>()) : "") << ","
          << (a.contains("repaired_accuracy")
                  ? std::to_string(a.at("repaired_accuracy").get<double>())
                  : "");
    }
    csv << "\n";
  }
  write_file_atomically((fs::path(out_dir) / "cases.csv").string(), csv.str(),
                        out_dir + "/cases.csv");
  // Every repair run: what was tried, in which round, and what the retrained run showed.
  std::ostringstream tries;
  tries << "case,arm,round,problem,solution,try,describe,outcome,diagnosis,epochs,"
           "best_held_accuracy,weight_hash\n";
  auto quoted = [](const std::string& t) { return "\"" + t + "\""; };
  for (const auto& r : results)
    for (const std::string arm : {"autotrainer", "detdl", "random"}) {
      if (!r.contains(arm) || !r.at(arm).contains("repair")) continue;
      for (const auto& t : r.at(arm).at("repair").at("tries")) {
        const auto& d = t.at("diagnosis");
        tries << r.at("name").get<std::string>() << "," << arm << "," << t.at("round").get<int>()
              << "," << t.at("problem").get<std::string>() << ","
              << t.at("solution").get<std::string>() << "," << t.at("try").get<int>() << ","
              << quoted(t.at("describe").get<std::string>()) << ","
              << t.at("outcome").get<std::string>() << ","
              << (d.is_null() ? "" : d.at("problems")[0].get<std::string>()) << ","
              << t.at("epochs").get<std::int64_t>() << ","
              << t.at("best_held_accuracy").get<double>() << ","
              << t.at("weight_hash").get<std::string>() << "\n";
      }
    }
  write_file_atomically((fs::path(out_dir) / "tries.csv").string(), tries.str(),
                        out_dir + "/tries.csv");
  return s;
}

}  // namespace detdl::doctor
