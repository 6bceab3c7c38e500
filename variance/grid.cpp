#include "variance/grid.h"

#include <set>
#include <stdexcept>

#include "nets/butter.h"
#include "nets/experiment.h"

namespace detdl::variance {
using nlohmann::json;

namespace {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t b = 0;
  for (std::size_t d = path.find('.'); d != std::string::npos; b = d + 1, d = path.find('.', b))
    parts.push_back(path.substr(b, d - b));
  parts.push_back(path.substr(b));
  return parts;
}

std::string field_list(const json& table) {
  std::string list;
  for (auto it = table.begin(); it != table.end(); ++it)
    list += (list.empty() ? "" : ", ") + it.key();
  return list;
}

bool is_butter_axis(const std::string& path) {
  return path == "butter.shape" || path == "butter.depth" || path == "butter.size";
}

// A BUTTER axis value, checked alone: a shape name, a depth of at least 2, a size of at
// least 1 (butter_plan's own checks, which need the data set, come when a run starts).
void check_butter_value(const std::string& path, const json& v, const std::string& field) {
  if (path == "butter.shape") {
    if (!v.is_string() || !nets::parse_butter_shape(v.get<std::string>()))
      throw std::invalid_argument(field +
                                  ": expected a BUTTER shape (rectangle, trapezoid, "
                                  "exponential, wide_first_2x, wide_first_4x, wide_first_8x, "
                                  "wide_first_16x, rectangle_residual), got " +
                                  v.dump());
    return;
  }
  const std::int64_t lo = path == "butter.depth" ? 2 : 1;
  if (!v.is_number_integer() || v.get<std::int64_t>() < lo)
    throw std::invalid_argument(field + ": expected an integer of at least " + std::to_string(lo) +
                                ", got " + v.dump());
}

// Throws unless `path` names a field of nets::Experiment's JSON form. The fields are those
// of a default experiment's JSON plus the ones that form leaves out at their defaults
// (device, implementation, flush_subnormals, init_nudge, validation_rows) and `preset` (a
// whole experiment).
void check_experiment_path(const std::string& path, const std::string& where) {
  json fields = nets::to_json(nets::Experiment{});
  fields["device"] = "cpu";
  fields["implementation"] = "own";
  fields["flush_subnormals"] = false;  // IEEE against TensorFlow's arithmetic: a study's axis
  fields["init_nudge"] = 0;
  fields["validation_rows"] = 0;
  fields["preset"] = "";
  const json* node = &fields;
  std::string prefix = "experiment";
  for (const std::string& part : split_path(path)) {
    if (!node->is_object() || !node->contains(part)) {
      std::string hint;
      if (node->is_object()) hint = " (" + prefix + " fields: " + field_list(*node) + ")";
      throw std::invalid_argument(where + ": grid." + path + ": unknown experiment field '" + path +
                                  "'" + hint);
    }
    node = &(*node)[part];
    prefix += "." + part;
  }
}

}  // namespace

Grid read_grid(const json& study, const std::string& where, std::int64_t max_points) {
  Grid g;
  if (!study.contains("grid")) return g;
  const json& grid = study["grid"];
  if (!grid.is_object()) throw std::invalid_argument(where + ": grid: expected a table of lists");
  for (auto it = grid.begin(); it != grid.end(); ++it) {
    const std::string field = where + ": grid." + it.key();
    if (!is_butter_axis(it.key())) check_experiment_path(it.key(), where);
    if (!it->is_array() || it->empty())
      throw std::invalid_argument(field + ": expected a non-empty list of values");
    if (is_butter_axis(it.key()))
      for (std::size_t i = 0; i < it->size(); ++i)
        check_butter_value(it.key(), (*it)[i], field + "[" + std::to_string(i + 1) + "]");
    // Checked before multiplying, so the product below cannot overflow.
    if (static_cast<std::int64_t>(it->size()) > max_points)
      throw std::invalid_argument(field + ": " + std::to_string(it->size()) +
                                  " values, more than a study's grid may have (" +
                                  std::to_string(max_points) + " combinations)");
    // json's order compares numbers by value, so 1 and 1.0 count as the same value.
    std::set<json> seen;
    for (std::size_t i = 0; i < it->size(); ++i)
      if (!seen.insert((*it)[i]).second)
        throw std::invalid_argument(field + ": the value " + (*it)[i].dump() +
                                    " is listed twice (item " + std::to_string(i + 1) +
                                    "); each value makes one setting, so values must differ");
    g.axes.push_back({it.key(), std::vector<json>(it->begin(), it->end())});
    g.points *= static_cast<std::int64_t>(it->size());
    if (g.points > max_points)
      throw std::invalid_argument(
          where + ": grid: more than " + std::to_string(max_points) +
          " combinations (the product of the list lengths); run a slice (--grid AXIS=V1,V2) or "
          "split the study");
  }
  int butter_axes = 0;
  for (const auto& a : g.axes) butter_axes += is_butter_axis(a.path);
  if (butter_axes != 0 && butter_axes != 3)
    throw std::invalid_argument(where +
                                ": grid: butter.shape, butter.depth and butter.size go together "
                                "(they make the net butter:SHAPE:DEPTH:SIZE); give all three");
  if (butter_axes == 3 && grid.contains("net"))
    throw std::invalid_argument(where +
                                ": grid: net and the butter.* axes both set the net; give one");
  return g;
}

json narrow_axis(const json& axis, const json& want, const std::string& where,
                 const std::string& whose) {
  std::set<json> left(want.begin(), want.end());
  json kept = json::array();
  for (const auto& v : axis)
    if (left.erase(v)) kept.push_back(v);
  if (!left.empty())
    throw std::invalid_argument(where + ": " + left.begin()->dump() + " is not one of " + whose +
                                " values " + axis.dump());
  return kept;
}

std::vector<json> grid_points(const Grid& grid) {
  std::vector<json> points{json::object()};
  for (const auto& axis : grid.axes) {
    std::vector<json> next;
    next.reserve(points.size() * axis.values.size());
    for (const auto& p : points)
      for (const auto& v : axis.values) {
        json q = p;
        q[axis.path] = v;
        next.push_back(std::move(q));
      }
    points = std::move(next);
  }
  return points;
}

json apply_grid_point(json patch, const json& point) {
  if (point.contains("butter.shape") && point.contains("butter.depth") &&
      point.contains("butter.size"))
    patch["net"] = "butter:" + point["butter.shape"].get<std::string>() + ":" +
                   std::to_string(point["butter.depth"].get<std::int64_t>()) + ":" +
                   std::to_string(point["butter.size"].get<std::int64_t>());
  for (auto it = point.begin(); it != point.end(); ++it) {
    if (is_butter_axis(it.key())) continue;
    const auto parts = split_path(it.key());
    json* node = &patch;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
      if (!node->contains(parts[i])) (*node)[parts[i]] = json::object();
      node = &(*node)[parts[i]];
    }
    (*node)[parts.back()] = *it;
  }
  return patch;
}

std::string grid_point_label(const json& point) {
  std::string label;
  for (auto it = point.begin(); it != point.end(); ++it)
    label += (label.empty() ? "" : " ") + it.key() + "=" +
             (it->is_string() ? it->get<std::string>() : it->dump());
  return label;
}

}  // namespace detdl::variance
