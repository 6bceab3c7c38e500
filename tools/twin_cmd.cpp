// `detdl twin`: two runs that differ in one thing, and the distance between their weights
// over the steps (variance/twin.h). The base experiment comes from --preset / --config /
// --set, each twin's difference from --a / --b (FIELD=VALUE, as --set):
//
//   detdl twin --preset lenet5 --set epochs=3 --b init_nudge=1 --out nudge.csv
//   detdl twin --preset lenet5 --set epochs=3 --set emulated_ops='["conv"]'
//              --a seeds.impl=1 --b seeds.impl=2 --out conv.csv    (one command)
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/atomic_file.h"
#include "nets/experiment.h"
#include "tools/commands.h"
#include "variance/twin.h"

namespace detdl::tools {
namespace {

struct TwinFlags {
  std::string preset, config, out;
  std::vector<std::string> set, a, b;
  int per_decade = 20;
  bool force = false;
};

nlohmann::json value_of(const std::string& v) {
  try {
    return nlohmann::json::parse(v);
  } catch (const nlohmann::json::exception&) {
    return v;  // a bare word is a string
  }
}

// FIELD=VALUE with a dotted FIELD ("seeds.impl=2"), into j.
void apply(nlohmann::json& j, const std::string& kv, const std::string& flag) {
  const auto eq = kv.find('=');
  if (eq == std::string::npos || eq == 0)
    throw std::invalid_argument(flag + ": expected FIELD=VALUE, got '" + kv + "'");
  nlohmann::json* node = &j;
  std::string path = kv.substr(0, eq);
  for (std::size_t dot; (dot = path.find('.')) != std::string::npos; path = path.substr(dot + 1)) {
    const std::string key = path.substr(0, dot);
    if (!node->contains(key) || !(*node)[key].is_object()) (*node)[key] = nlohmann::json::object();
    node = &(*node)[key];
  }
  (*node)[path] = value_of(kv.substr(eq + 1));
}

nets::Experiment twin_experiment(const TwinFlags& f, const std::vector<std::string>& own,
                                 const std::string& flag) {
  nlohmann::json j =
      f.preset.empty() ? nets::to_json(nets::Experiment{}) : nets::to_json(nets::preset(f.preset));
  if (!f.config.empty()) {
    std::ifstream in(f.config);
    if (!in) throw std::invalid_argument("--config: cannot read " + f.config);
    try {
      j.merge_patch(nlohmann::json::parse(in));
    } catch (const nlohmann::json::exception& e) {
      throw std::invalid_argument("--config: " + f.config + ": " + e.what());
    }
  }
  for (const auto& kv : f.set) apply(j, kv, "--set");
  for (const auto& kv : own) apply(j, kv, flag);
  return nets::experiment_from_json(j, flag == "--a" ? "twin a" : "twin b");
}

}  // namespace

void add_twin_command(CLI::App& app) {
  auto f = std::make_shared<TwinFlags>();
  CLI::App* c = app.add_subcommand(
      "twin", "two runs that differ in one thing: their weight distance over the steps (CSV)");
  c->add_option("--preset", f->preset, "base experiment from a preset");
  c->add_option("--config", f->config, "JSON config over the preset");
  c->add_option("--set", f->set, "FIELD=VALUE for both twins, e.g. epochs=3 (repeatable)");
  c->add_option("--a", f->a, "FIELD=VALUE for twin a only, e.g. seeds.impl=1 (repeatable)");
  c->add_option("--b", f->b, "FIELD=VALUE for twin b only, e.g. init_nudge=1 (repeatable)");
  c->add_option("--per-decade", f->per_decade, "measured steps per factor of 10 (after step 10)")
      ->check(CLI::Range(1, 1000));
  c->add_option("--out", f->out, "CSV: step, l2, relative, max_abs, differing")->required();
  c->add_flag("--force", f->force, "overwrite --out");
  c->callback([f] {
    check_output_path(f->out, f->force, "--out " + f->out);
    const nets::Experiment a = twin_experiment(*f, f->a, "--a");
    const nets::Experiment b = twin_experiment(*f, f->b, "--b");
    if (nets::to_json(a) == nets::to_json(b))
      throw std::invalid_argument("twin: --a and --b give the same experiment (nothing differs)");
    const variance::TwinResult t = variance::run_twin(a, b, f->per_decade);
    std::string csv = "step,l2,relative,max_abs,differing\n";
    char line[160];
    for (const auto& p : t.points) {
      std::snprintf(line, sizeof line, "%lld,%.9g,%.9g,%.9g,%lld\n", static_cast<long long>(p.step),
                    p.l2, p.relative, p.max_abs, static_cast<long long>(p.differing));
      csv += line;
    }
    write_file_atomically(f->out, csv, "--out " + f->out);
    std::printf("parameters %lld, steps %lld, first differing step %lld\n",
                static_cast<long long>(t.parameters),
                static_cast<long long>(t.points.empty() ? 0 : t.points.back().step),
                static_cast<long long>(t.first_differing_step));
    if (!t.points.empty())
      std::printf(
          "final distance: l2 %.4g (relative %.4g), max |a - b| %.4g, %lld weights differ\n",
          t.points.back().l2, t.points.back().relative, t.points.back().max_abs,
          static_cast<long long>(t.points.back().differing));
    if (t.test_rows > 0)
      std::printf(
          "test accuracy a %.4f  b %.4f; predictions differ on %lld of %lld rows (%.2f%%)\n",
          t.test_accuracy_a, t.test_accuracy_b, static_cast<long long>(t.test_disagreements),
          static_cast<long long>(t.test_rows),
          100.0 * static_cast<double>(t.test_disagreements) / static_cast<double>(t.test_rows));
    std::printf("%.1f s, wrote %s\n", t.seconds, f->out.c_str());
  });
}

}  // namespace detdl::tools
