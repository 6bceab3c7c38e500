#include "variance/study.h"

#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include <toml++/toml.h>

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
  }
  return "?";
}

constexpr SeedSource kAllSources[] = {SeedSource::init, SeedSource::order, SeedSource::augment,
                                      SeedSource::dropout, SeedSource::label_noise, SeedSource::split};

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
  throw std::invalid_argument("unsupported TOML value (dates and times are not study fields) at " + o.str());
}

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::uint64_t& seed_of(nets::Seeds& s, SeedSource src) {
  switch (src) {
    case SeedSource::init: return s.init;
    case SeedSource::order: return s.order;
    case SeedSource::augment: return s.augment;
    case SeedSource::dropout: return s.dropout;
    case SeedSource::label_noise: return s.label_noise;
    case SeedSource::split: return s.split;
  }
  return s.init;
}

// Builds an experiment from {"preset": ..., other fields...} over `base` (fields merge).
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

}  // namespace

std::uint64_t derived_seed(std::uint64_t base, SeedSource source, std::int64_t repetition) {
  return splitmix64(splitmix64(base ^ (static_cast<std::uint64_t>(source) + 1) * 0x632BE59BD9B4E019ull) +
                    static_cast<std::uint64_t>(repetition));
}

Study study_from_json(const json& j, const std::string& where) {
  if (!j.is_object()) throw std::invalid_argument(where + ": expected a table at the top");
  static const std::set<std::string> top{"name",    "repetitions", "selection", "experiment",
                                         "setting", "description", "grid"};
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!top.count(it.key()))
      throw std::invalid_argument(where + ": " + it.key() +
                                  ": unknown field (name, description, repetitions, selection, experiment, grid, setting)");
  Study s;
  s.spec = j;
  if (!j.contains("name") || !j["name"].is_string() || j["name"].get<std::string>().empty())
    throw std::invalid_argument(where + ": name: required, a non-empty string");
  s.name = j["name"];
  if (j.contains("repetitions")) {
    if (!j["repetitions"].is_number_integer() || j["repetitions"].get<std::int64_t>() < 1)
      throw std::invalid_argument(where + ": repetitions: expected an integer >= 1, got " + j["repetitions"].dump());
    s.repetitions = j["repetitions"];
  }
  if (j.contains("selection")) {
    if (!j["selection"].is_array() || j["selection"].empty())
      throw std::invalid_argument(where + ": selection: expected a list of best_loss, best_acc, last");
    s.selection.clear();
    for (const auto& v : j["selection"]) {
      if (!v.is_string() || (v != "best_loss" && v != "best_acc" && v != "last"))
        throw std::invalid_argument(where + ": selection: expected best_loss, best_acc or last, got " + v.dump());
      s.selection.push_back(v);
    }
  }
  const json base_patch = j.value("experiment", json::object());
  const json base = nets::to_json(experiment_over(nets::to_json(nets::Experiment{}), base_patch, where + ": experiment"));
  if (!j.contains("setting") || !j["setting"].is_array() || j["setting"].empty())
    throw std::invalid_argument(where + ": setting: at least one [[setting]] is required");
  // The grid: experiment fields (dotted paths) with lists of values; every setting is run at
  // every combination. Fields are taken in name order (JSON objects are sorted), the last
  // varying fastest; values in list order.
  std::vector<std::pair<std::string, json>> axes;
  if (j.contains("grid")) {
    if (!j["grid"].is_object()) throw std::invalid_argument(where + ": grid: expected a table of lists");
    for (auto it = j["grid"].begin(); it != j["grid"].end(); ++it) {
      if (!it->is_array() || it->empty())
        throw std::invalid_argument(where + ": grid." + it.key() + ": expected a non-empty list of values");
      axes.emplace_back(it.key(), *it);
    }
  }
  std::vector<json> points{json::object()};  // each: {"path": value, ...}
  for (const auto& [path, values] : axes) {
    std::vector<json> next;
    for (const auto& p : points)
      for (const auto& v : values) {
        json q = p;
        q[path] = v;
        next.push_back(q);
      }
    points = std::move(next);
  }
  auto apply_point = [&](json patch, const json& point) {
    for (auto it = point.begin(); it != point.end(); ++it) {
      json* node = &patch;
      std::size_t b = 0;
      const std::string& path = it.key();
      for (std::size_t d = path.find('.'); d != std::string::npos; b = d + 1, d = path.find('.', b)) {
        const std::string k = path.substr(b, d - b);
        if (!node->contains(k)) (*node)[k] = json::object();
        node = &(*node)[k];
      }
      (*node)[path.substr(b)] = *it;
    }
    return patch;
  };
  auto point_label = [](const json& point) {
    std::string label;
    for (auto it = point.begin(); it != point.end(); ++it)
      label += (label.empty() ? "" : " ") + it.key() + "=" + (it->is_string() ? it->get<std::string>() : it->dump());
    return label;
  };
  std::set<std::string> names;
  for (std::size_t i = 0; i < j["setting"].size(); ++i) {
    const json& t = j["setting"][i];
    const std::string at = where + ": setting[" + std::to_string(i + 1) + "]";
    if (!t.is_object()) throw std::invalid_argument(at + ": expected a table");
    static const std::set<std::string> fields{"name",    "vary",           "level",     "fast_ops",
                                              "threads", "device",         "implementation", "experiment"};
    for (auto it = t.begin(); it != t.end(); ++it)
      if (!fields.count(it.key()))
        throw std::invalid_argument(at + "." + it.key() +
                                    ": unknown field (name, vary, level, fast_ops, threads, device, implementation, "
                                    "experiment)");
    Setting st;
    if (!t.contains("name") || !t["name"].is_string() || t["name"].get<std::string>().empty())
      throw std::invalid_argument(at + ".name: required, a non-empty string");
    st.name = t["name"];
    if (!names.insert(st.name).second) throw std::invalid_argument(at + ".name: '" + st.name + "' is used twice");
    if (t.contains("vary")) {
      if (!t["vary"].is_array()) throw std::invalid_argument(at + ".vary: expected a list of seed names");
      for (const auto& v : t["vary"]) {
        if (v == "all") {
          st.vary.assign(std::begin(kAllSources), std::end(kAllSources));
          continue;
        }
        bool found = false;
        for (SeedSource src : kAllSources)
          if (v.is_string() && v.get<std::string>() == source_name(src)) st.vary.push_back(src), found = true;
        if (!found)
          throw std::invalid_argument(at + ".vary: expected all, init, order, augment, dropout, label_noise or split, got " +
                                      v.dump());
      }
    }
    json patch = t.value("experiment", json::object());
    if (!patch.is_object()) throw std::invalid_argument(at + ".experiment: expected a table");
    for (const char* k : {"level", "fast_ops", "threads", "device", "implementation"})
      if (t.contains(k)) patch[k] = t[k];
    for (const json& point : points) {
      // Grid values first, then the setting's own overrides (the setting's word wins).
      Setting sp = st;
      json merged = apply_point(json::object(), point);
      merged.merge_patch(patch);
      const std::string label = point_label(point);
      if (!label.empty()) sp.name = st.name + " [" + label + "]";
      sp.experiment = experiment_over(base, merged, label.empty() ? at : at + " at grid point " + label);
      s.settings.push_back(std::move(sp));
    }
  }
  return s;
}

Study load_study(const std::string& path) {
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
      o << path << ":" << e.source().begin.line << ":" << e.source().begin.column << ": " << e.description();
      throw std::invalid_argument(o.str());
    }
  }
  Study s = study_from_json(j, path);
  s.source = path;
  return s;
}

std::vector<PlanRow> make_plan(const Study& s) {
  std::vector<PlanRow> rows;
  for (const auto& st : s.settings) {
    for (std::int64_t r = 0; r < s.repetitions; ++r) {
      PlanRow row;
      row.setting = st.name;
      row.repetition = r;
      row.experiment = st.experiment;
      for (SeedSource src : st.vary) {
        std::uint64_t& seed = seed_of(row.experiment.seeds, src);
        seed = derived_seed(seed, src, r);
      }
      row.key = run_key(json{{"study", s.name}, {"setting", st.name}, {"repetition", r},
                             {"experiment", nets::to_json(row.experiment)}});
      rows.push_back(std::move(row));
    }
  }
  return rows;
}

}  // namespace detdl::variance
