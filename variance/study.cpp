#include "variance/study.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include <toml++/toml.h>

#include "variance/grid.h"
#include "variance/sweep.h"
#include "variance/run_key.h"

namespace detdl::variance {
using nlohmann::json;

namespace {

std::string_view source_name(SeedSource s) {
  switch (s) {
    case SeedSource::init: return "init";
    case SeedSource::order: return "order";
    case SeedSource::augment: return "augment";
    case SeedSource::dropout: return "dropout";
    case SeedSource::label_noise: return "label_noise";
    case SeedSource::split: return "split";
    case SeedSource::impl: return "impl";
    case SeedSource::init_nudge: return "init_nudge";
  }
  return "?";
}

constexpr SeedSource kAllSources[] = {SeedSource::init,        SeedSource::order,
                                      SeedSource::augment,     SeedSource::dropout,
                                      SeedSource::label_noise, SeedSource::split};

// TOML -> JSON, keeping integers as integers (so JSON-side type checks hold).
json to_json(const toml::node& n) {
  if (auto t = n.as_table()) {
    json j = json::object();
    for (auto&& [k, v] : *t) j[std::string(k.str())] = to_json(v);
    return j;
  }
  if (auto a = n.as_array()) {
    json j = json::array();
    for (auto&& v : *a) j.push_back(to_json(v));
    return j;
  }
  if (auto v = n.as_integer()) return v->get();
  if (auto v = n.as_floating_point()) return v->get();
  if (auto v = n.as_boolean()) return v->get();
  if (auto v = n.as_string()) return v->get();
  std::ostringstream o;
  o << n.source().begin;
  throw std::invalid_argument("unsupported TOML value (dates and times are not study fields) at " +
                              o.str());
}

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::uint64_t& seed_of(nets::Experiment& e, SeedSource src) {
  nets::Seeds& s = e.seeds;
  switch (src) {
    case SeedSource::init: return s.init;
    case SeedSource::order: return s.order;
    case SeedSource::augment: return s.augment;
    case SeedSource::dropout: return s.dropout;
    case SeedSource::label_noise: return s.label_noise;
    case SeedSource::split: return s.split;
    case SeedSource::impl: return s.impl;
    case SeedSource::init_nudge: return e.init_nudge;
  }
  return s.init;
}

// A repetitions count (the study's or a setting's); `where` ends with ": " or ".".
std::int64_t read_repetitions(const json& r, const std::string& where) {
  // An unsigned above INT64_MAX would read back negative: bound it as unsigned first.
  if (!r.is_number_integer() ||
      (r.is_number_unsigned() && r.get<std::uint64_t>() > kMaxRepetitions) ||
      r.get<std::int64_t>() < 1 || r.get<std::int64_t>() > kMaxRepetitions)
    throw std::invalid_argument(where + "repetitions: expected an integer from 1 to " +
                                std::to_string(kMaxRepetitions) + ", got " + r.dump());
  return r.get<std::int64_t>();
}

}  // namespace

nets::Experiment experiment_over(const json& base, const json& patch, const std::string& where) {
  json merged = base;
  json p = patch;
  if (!p.is_object()) throw std::invalid_argument(where + ": expected a table");
  if (p.contains("preset")) {
    if (!p["preset"].is_string()) throw std::invalid_argument(where + ".preset: expected a string");
    try {
      merged = nets::to_json(nets::preset(p["preset"].get<std::string>()));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(where + ".preset: " + e.what());
    }
    p.erase("preset");
  }
  merged.merge_patch(p);
  return nets::experiment_from_json(merged, where);
}

std::uint64_t derived_seed(std::uint64_t base, SeedSource source, std::int64_t repetition) {
  return splitmix64(
      splitmix64(base ^ (static_cast<std::uint64_t>(source) + 1) * 0x632BE59BD9B4E019ull) +
      static_cast<std::uint64_t>(repetition));
}

Study study_from_json(const json& j, const std::string& where) {
  if (!j.is_object()) throw std::invalid_argument(where + ": expected a table at the top");
  // JSON study files: a null would delete a preset's field when the settings merge (the
  // same rule as `detdl train --config`).
  nets::reject_nulls(j, where);
  static const std::set<std::string> top{"name",       "repetitions", "selection",
                                         "experiment", "setting",     "description",
                                         "grid",       "published",   "conformance"};
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!top.count(it.key()))
      throw std::invalid_argument(where + ": " + it.key() +
                                  ": unknown field (name, description, repetitions, selection, "
                                  "experiment, grid, setting, published, conformance)");
  Study s;
  s.spec = j;
  if (j.contains("published")) {
    if (!j["published"].is_object())
      throw std::invalid_argument(where +
                                  ": published: expected a table of table group = fraction");
    for (auto it = j["published"].begin(); it != j["published"].end(); ++it) {
      const double v = it.value().is_number() ? it.value().get<double>() : -1.0;
      if (!(v >= 0.0 && v <= 1.0))
        throw std::invalid_argument(where + ": published." + it.key() +
                                    ": expected a max - min test accuracy as a fraction in [0, "
                                    "1], got " +
                                    it.value().dump());
      s.published[it.key()] = v;
    }
  }
  if (!j.contains("name") || !j["name"].is_string() || j["name"].get<std::string>().empty())
    throw std::invalid_argument(where + ": name: required, a non-empty string");
  s.name = j["name"];
  if (j.contains("repetitions")) s.repetitions = read_repetitions(j["repetitions"], where + ": ");
  if (j.contains("selection")) {
    if (!j["selection"].is_array() || j["selection"].empty())
      throw std::invalid_argument(where +
                                  ": selection: expected a list of best_loss, best_acc, last");
    s.selection.clear();
    for (const auto& v : j["selection"]) {
      if (!v.is_string() || (v != "best_loss" && v != "best_acc" && v != "last"))
        throw std::invalid_argument(
            where + ": selection: expected best_loss, best_acc or last, got " + v.dump());
      s.selection.push_back(v);
    }
  }
  // [conformance] max_size_distance: BUTTER nets farther from their size are left out.
  const double max_size_distance = read_max_size_distance(j, where);
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> dims_of;
  const json base_patch = j.value("experiment", json::object());
  const json base = nets::to_json(
      experiment_over(nets::to_json(nets::Experiment{}), base_patch, where + ": experiment"));
  if (!j.contains("setting") || !j["setting"].is_array() || j["setting"].empty())
    throw std::invalid_argument(where + ": setting: at least one [[setting]] is required");
  // Every count is checked against its bound before anything of that size is built.
  const Grid grid = read_grid(j, where, kMaxGridPoints);
  for (const auto& axis : grid.axes)
    for (std::size_t v = 0; v < axis.values.size() && axis.path.rfind("butter.", 0) != 0; ++v) {
      // Each value alone over the base: a bad value is named by its place in the grid.
      try {
        experiment_over(base, apply_grid_point(json::object(), json{{axis.path, axis.values[v]}}),
                        "experiment");
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(where + ": grid." + axis.path + "[" + std::to_string(v + 1) +
                                    "]: " + e.what());
      }
    }
  const auto file_settings = static_cast<std::int64_t>(j["setting"].size());
  if (file_settings > kMaxSettings || file_settings * grid.points > kMaxSettings)
    throw std::invalid_argument(where + ": setting: " + std::to_string(file_settings) +
                                " settings x " + std::to_string(grid.points) +
                                " grid points is more than a study may have (" +
                                std::to_string(kMaxSettings) + " settings)");
  // Both factors are bounded above, so the product fits.
  if (file_settings * grid.points * s.repetitions > kMaxPlanRows)
    throw std::invalid_argument(
        where + ": repetitions: " + std::to_string(file_settings) + " settings x " +
        std::to_string(grid.points) + " grid points x " + std::to_string(s.repetitions) +
        " repetitions = " + std::to_string(file_settings * grid.points * s.repetitions) +
        " runs, more than one study may plan (" + std::to_string(kMaxPlanRows) + ")");
  const std::vector<json> points = grid_points(grid);
  std::map<std::string, std::string> names;  // expanded setting name -> where it came from
  // Runs planned so far, settings with their own repetitions counted at their own.
  std::int64_t planned = file_settings * grid.points * s.repetitions;
  for (std::size_t i = 0; i < j["setting"].size(); ++i) {
    const json& t = j["setting"][i];
    const std::string at = where + ": setting[" + std::to_string(i + 1) + "]";
    if (!t.is_object()) throw std::invalid_argument(at + ": expected a table");
    static const std::set<std::string> fields{
        "name",           "vary",       "level",        "fast_ops",    "threads",    "device",
        "implementation", "experiment", "emulated_ops", "repetitions", "table_group"};
    for (auto it = t.begin(); it != t.end(); ++it)
      if (!fields.count(it.key()))
        throw std::invalid_argument(
            at + "." + it.key() +
            ": unknown field (name, vary, level, fast_ops, emulated_ops, threads, device, "
            "implementation, experiment, repetitions, table_group)");
    Setting st;
    if (t.contains("table_group")) {
      if (!t["table_group"].is_string() || t["table_group"].get<std::string>().empty())
        throw std::invalid_argument(at + ".table_group: expected a non-empty string, got " +
                                    t["table_group"].dump());
      st.table_group = t["table_group"];
    }
    if (t.contains("repetitions")) {
      st.repetitions = read_repetitions(t["repetitions"], at + ".");
      planned += (st.repetitions - s.repetitions) * grid.points;
      if (planned > kMaxPlanRows)
        throw std::invalid_argument(
            at + ".repetitions: the study would plan " + std::to_string(planned) +
            " runs, more than one study may plan (" + std::to_string(kMaxPlanRows) + ")");
    }
    if (!t.contains("name") || !t["name"].is_string() || t["name"].get<std::string>().empty())
      throw std::invalid_argument(at + ".name: required, a non-empty string");
    st.name = t["name"];
    if (t.contains("vary")) {
      if (!t["vary"].is_array())
        throw std::invalid_argument(at + ".vary: expected a list of seed names");
      for (const auto& v : t["vary"]) {
        if (v == "all") {
          st.vary.assign(std::begin(kAllSources), std::end(kAllSources));
          continue;
        }
        bool found = false;
        for (SeedSource src : kAllSources)
          if (v.is_string() && v.get<std::string>() == source_name(src))
            st.vary.push_back(src), found = true;
        if (v == "impl") st.vary.push_back(SeedSource::impl), found = true;
        if (v == "init_nudge") st.vary.push_back(SeedSource::init_nudge), found = true;
        if (!found)
          throw std::invalid_argument(
              at +
              ".vary: expected all, init, order, augment, dropout, label_noise, split, impl or "
              "init_nudge, got " +
              v.dump());
      }
    }
    json patch = t.value("experiment", json::object());
    if (!patch.is_object()) throw std::invalid_argument(at + ".experiment: expected a table");
    for (const char* k :
         {"level", "fast_ops", "emulated_ops", "threads", "device", "implementation"})
      if (t.contains(k)) patch[k] = t[k];
    for (const json& point : points) {
      // Grid values first, then the setting's own overrides (the setting's word wins).
      Setting sp = st;
      json merged = apply_grid_point(json::object(), point);
      merged.merge_patch(patch);
      const std::string label = grid_point_label(point);
      const std::string here = label.empty() ? at : at + " [" + label + "]";
      if (!label.empty()) sp.name = st.name + " [" + label + "]";
      const auto [other, fresh] = names.emplace(sp.name, here);
      if (!fresh)
        throw std::invalid_argument(at + ".name: '" + sp.name + "' is used twice (also " +
                                    other->second.substr(where.size() + 2) +
                                    "); setting names must be unique");
      if (merged.contains("preset")) {
        // The setting's (or grid point's) preset takes the place of the base's preset: the
        // base's other fields still apply over it, and the setting's own over those, so a
        // file's `epochs = 2` holds for every preset its settings name.
        json over = base_patch;
        over.erase("preset");
        json own = merged;
        own.erase("preset");
        over.merge_patch(own);
        over["preset"] = merged["preset"];
        sp.experiment = experiment_over(nets::to_json(nets::Experiment{}), over, here);
      } else {
        sp.experiment = experiment_over(base, merged, here);
      }
      // Varying the impl seed of a run that emulates nothing gives identical runs.
      if (std::find(sp.vary.begin(), sp.vary.end(), SeedSource::impl) != sp.vary.end() &&
          !sp.experiment.emulation_on())
        throw std::invalid_argument(at +
                                    ".vary: impl varies nothing unless the setting emulates "
                                    "(level = \"emulated\" or emulated_ops)");
      // A run of no epochs fails at its start: refuse the study now, before any run.
      if (sp.experiment.epochs < 1) {
        const std::string field =
            patch.contains("epochs") ? at + ".experiment.epochs"
            : point.contains("epochs")
                ? where + ": grid.epochs (" + here.substr(where.size() + 2) + ")"
                : where + ": experiment.epochs (" + here.substr(where.size() + 2) + ")";
        throw std::invalid_argument(field + ": " + std::to_string(sp.experiment.epochs) +
                                    " epochs cannot run; expected at least 1 (setting '" + sp.name +
                                    "')");
      }
      if (max_size_distance >= 0 && sp.experiment.net.rfind("butter:", 0) == 0) {
        auto it = dims_of.find(sp.experiment.data);
        if (it == dims_of.end())
          it = dims_of
                   .emplace(sp.experiment.data,
                            loaded_data_dims(sp.experiment.data_dir)(sp.experiment.data))
                   .first;
        const double d =
            butter_size_distance(sp.experiment.net, it->second.first, it->second.second);
        if (std::abs(d) > max_size_distance) {
          ++s.left_out_by_conformance;
          continue;
        }
      }
      s.settings.push_back(std::move(sp));
    }
  }
  return s;
}

namespace {

// `child` over the study file it includes: grid axes narrowed to the child's values (each a
// value of the included axis, kept in the included order), the experiment merged, every
// other field replaced. `depth` bounds include chains (and so cycles).
json with_include(json child, const std::string& path, int depth) {
  if (!child.is_object() || !child.contains("include")) return child;
  const std::string where = path + ": include";
  if (!child["include"].is_string() || child["include"].get<std::string>().empty())
    throw std::invalid_argument(where + ": expected the path of a study file");
  if (depth >= 4) throw std::invalid_argument(where + ": more than 4 nested includes (a cycle?)");
  std::filesystem::path inc = child["include"].get<std::string>();
  if (inc.is_relative()) inc = std::filesystem::path(path).parent_path() / inc;
  json parent = with_include(read_config_file(inc.string()), inc.string(), depth + 1);
  child.erase("include");
  for (auto it = child.begin(); it != child.end(); ++it) {
    if (it.key() == "experiment" && it->is_object() && parent.contains("experiment")) {
      parent["experiment"].merge_patch(*it);
    } else if (it.key() == "grid" && it->is_object()) {
      if (!parent.contains("grid") || !parent["grid"].is_object())
        throw std::invalid_argument(path + ": grid: the included " + inc.string() +
                                    " has no grid to narrow");
      for (auto axis = it->begin(); axis != it->end(); ++axis) {
        const std::string field = path + ": grid." + axis.key();
        if (!parent["grid"].contains(axis.key()))
          throw std::invalid_argument(field + ": not an axis of the included " + inc.string() +
                                      " (an include narrows its sweep's axes, it adds none)");
        if (!axis->is_array() || axis->empty())
          throw std::invalid_argument(field + ": expected a non-empty list of values");
        parent["grid"][axis.key()] =
            narrow_axis(parent["grid"][axis.key()], *axis, field, "the included axis's");
      }
    } else {
      parent[it.key()] = *it;
    }
  }
  return parent;
}

}  // namespace

json read_config_file(const std::string& path) {
  // A study file is a few kilobytes; an include may name anything (a device, a huge file),
  // so only a regular file of bounded size is read.
  constexpr std::uintmax_t kMaxStudyFileBytes = 16u << 20;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw std::runtime_error("study file " + path + ": cannot read it (no such regular file)");
  if (std::filesystem::file_size(path, ec) > kMaxStudyFileBytes)
    throw std::runtime_error("study file " + path + ": larger than 16 MiB, not a study file");
  std::ifstream in(path);
  if (!in) throw std::runtime_error("study file " + path + ": cannot read it");
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  json j;
  const bool is_json = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  if (is_json) {
    try {
      j = json::parse(text);
    } catch (const json::exception& e) {
      throw std::invalid_argument(path + ": not valid JSON: " + e.what());
    }
  } else {
    try {
      j = to_json(toml::parse(text, path));
    } catch (const toml::parse_error& e) {
      std::ostringstream o;
      o << path << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
        << e.description();
      throw std::invalid_argument(o.str());
    }
  }
  return j;
}

json read_study_file(const std::string& path) {
  return with_include(read_config_file(path), path, 0);
}

Study load_study(const std::string& path) {
  Study s = study_from_json(read_study_file(path), path);
  s.source = path;
  return s;
}

std::vector<PlanRow> make_plan(const Study& s) {
  const std::string where = s.source.empty() ? "study " + s.name : s.source;
  // A Study built in code skips study_from_json's bounds: check the size before allocating.
  std::int64_t total = 0;
  for (const auto& st : s.settings) {
    const std::int64_t reps = repetitions_of(s, st);
    if (reps < 0 || reps > kMaxRepetitions || (total += reps) > kMaxPlanRows)
      throw std::invalid_argument(where + ": repetitions: " + std::to_string(s.settings.size()) +
                                  " settings x " + std::to_string(s.repetitions) +
                                  " repetitions is more than one study may plan (" +
                                  std::to_string(kMaxPlanRows) + " runs)");
  }
  std::vector<PlanRow> rows;
  rows.reserve(static_cast<std::size_t>(total));
  std::map<std::string, std::string> owner;  // key -> "setting 'x' repetition r"
  for (const auto& st : s.settings) {
    for (std::int64_t r = 0; r < repetitions_of(s, st); ++r) {
      PlanRow row;
      row.setting = st.name;
      row.repetition = r;
      row.experiment = st.experiment;
      for (SeedSource src : st.vary) {
        std::uint64_t& seed = seed_of(row.experiment, src);
        seed = derived_seed(seed, src, r);
      }
      row.key = run_key(json{{"study", s.name},
                             {"setting", st.name},
                             {"repetition", r},
                             {"experiment", nets::to_json(row.experiment)}});
      // Two rows of one key would be one run counted twice (the store keeps one of them).
      const std::string who = "setting '" + st.name + "' repetition " + std::to_string(r);
      const auto [it, fresh] = owner.emplace(row.key, who);
      if (!fresh)
        throw std::invalid_argument(where + ": setting: " + who + " and " + it->second +
                                    " have the same run key " + row.key +
                                    "; setting names must be unique");
      rows.push_back(std::move(row));
    }
  }
  return rows;
}

}  // namespace detdl::variance
