#include "variance/sweep.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>

#include "nets/butter.h"
#include "nets/data/registry.h"
#include "nets/experiment.h"
#include "variance/grid.h"
#include "variance/study.h"

namespace detdl::variance {
using nlohmann::json;

namespace {

constexpr std::int64_t kMaxCountedPoints = 1'000'000;

SweepCount& count_of(std::vector<SweepCount>& list, const std::string& value) {
  for (auto& c : list)
    if (c.value == value) return c;
  list.push_back({value});
  return list.back();
}

// "butter:SHAPE:DEPTH:SIZE" -> its three parts; false for any other net.
bool butter_parts(const std::string& net, std::string& shape, std::string& depth,
                  std::string& size) {
  if (net.rfind("butter:", 0) != 0) return false;
  const auto a = net.find(':', 7), b = a == std::string::npos ? a : net.find(':', a + 1);
  if (b == std::string::npos) return false;
  shape = net.substr(7, a - 7);
  depth = net.substr(a + 1, b - a - 1);
  size = net.substr(b + 1);
  return true;
}

}  // namespace

DataDims loaded_data_dims(const std::string& data_dir) {
  return [data_dir](const std::string& data) {
    data::DataOptions o;
    o.root = data_dir;
    const auto b = data::load_data(data, o);
    std::int64_t n_in = 1;
    for (auto d : b->sample_shape) n_in *= d;
    return std::make_pair(n_in, b->outputs);
  };
}

double butter_core_seconds_per_work(std::int64_t size) {
  // (log2 size, core-seconds per parameter-row-epoch): `detdl train --preset butter --net
  // butter:rectangle:3:SIZE --data pmlb:wine_quality_white --threads 1`, epochs after the
  // first (docs/scale.md).
  static constexpr std::pair<double, double> kTable[] = {
      {10, 3.28e-10}, {12, 1.51e-10}, {14, 9.14e-11}, {16, 7.0e-11},
      {18, 6.44e-11}, {20, 6.9e-11},  {22, 7.25e-11}};
  const double x = std::log2(static_cast<double>(std::max<std::int64_t>(size, 1)));
  if (x <= kTable[0].first) return kTable[0].second;
  for (std::size_t i = 1; i < std::size(kTable); ++i)
    if (x <= kTable[i].first) {
      const auto [x0, y0] = kTable[i - 1];
      const auto [x1, y1] = kTable[i];
      return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
    }
  return kTable[std::size(kTable) - 1].second;
}

DataRows loaded_data_rows(const std::string& data_dir) {
  return [data_dir](const std::string& data) {
    data::DataOptions o;
    o.root = data_dir;
    return data::load_data(data, o)->train.size();
  };
}

double read_max_size_distance(const json& spec, const std::string& where) {
  if (!spec.contains("conformance")) return -1;
  const json& c = spec["conformance"];
  if (!c.is_object() || c.size() != 1 || !c.contains("max_size_distance"))
    throw std::invalid_argument(where +
                                ": conformance: expected a table with max_size_distance only");
  const json& v = c["max_size_distance"];
  if (!v.is_number() || !(v.get<double>() >= 0) || !std::isfinite(v.get<double>()))
    throw std::invalid_argument(where +
                                ": conformance.max_size_distance: expected a fraction >= 0 "
                                "(0.2: BUTTER's README rule), got " +
                                v.dump());
  return v.get<double>();
}

namespace {
// The widths and parameters of a BUTTER net "butter:SHAPE:DEPTH:SIZE" on data of (n_in,
// n_out); none for any other net.
std::optional<nets::ButterPlan> butter_plan_of(const std::string& net, std::int64_t n_in,
                                               std::int64_t n_out) {
  std::string shape, depth, size;
  if (!butter_parts(net, shape, depth, size)) return std::nullopt;
  const auto s = nets::parse_butter_shape(shape);
  if (!s) throw std::invalid_argument("net '" + net + "': unknown BUTTER shape '" + shape + "'");
  return nets::butter_plan(*s, std::stoll(size), std::stoll(depth), n_in, n_out);
}
}  // namespace

double butter_size_distance(const std::string& net, std::int64_t n_in, std::int64_t n_out) {
  const auto plan = butter_plan_of(net, n_in, n_out);
  return plan ? plan->relative_distance() : std::numeric_limits<double>::quiet_NaN();
}

SweepSummary summarize_sweep(const json& spec, const std::string& where, const DataDims& dims,
                             const DataRows& rows) {
  SweepSummary out;
  out.name = spec.value("name", std::string());
  out.max_size_distance = read_max_size_distance(spec, where);
  const json base = nets::to_json(experiment_over(nets::to_json(nets::Experiment{}),
                                                  spec.value("experiment", json::object()),
                                                  where + ": experiment"));
  const Grid grid = read_grid(spec, where, kMaxCountedPoints);
  out.grid_points = grid.points;
  if (!spec.contains("setting") || !spec["setting"].is_array() || spec["setting"].empty())
    throw std::invalid_argument(where + ": setting: at least one [[setting]] is required");
  out.settings = static_cast<std::int64_t>(spec["setting"].size());
  const std::int64_t study_reps = spec.value("repetitions", std::int64_t{1});
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> dims_of;  // per data set
  std::map<std::string, std::int64_t> rows_of;                           // per data set
  for (const json& point : grid_points(grid))
    for (const json& st : spec["setting"]) {
      json e = apply_grid_point(base, point);
      if (st.contains("experiment") && st["experiment"].is_object())
        e.merge_patch(st["experiment"]);
      const std::int64_t reps = st.value("repetitions", study_reps);
      const std::string data = e.value("data", std::string()), net = e.value("net", std::string());
      std::string shape = "-", depth = "-", size;
      const bool butter = butter_parts(net, shape, depth, size);
      bool outside = false, left_out = false;
      double work = 0, cost = 0;  // per run
      if (butter) {
        auto it = dims_of.find(data);
        if (it == dims_of.end()) it = dims_of.emplace(data, dims(data)).first;
        const auto plan = butter_plan_of(net, it->second.first, it->second.second);
        const double d = plan->relative_distance();
        outside = std::abs(d) > 0.2;
        left_out = out.max_size_distance >= 0 && std::abs(d) > out.max_size_distance;
        if (rows) {
          auto r = rows_of.find(data);
          if (r == rows_of.end()) r = rows_of.emplace(data, rows(data)).first;
          work = static_cast<double>(plan->params) * static_cast<double>(r->second) *
                 static_cast<double>(e.value("epochs", std::int64_t{0}));
          cost = work * butter_core_seconds_per_work(std::stoll(size));
        }
      }
      for (SweepCount* c : {&out.total, &count_of(out.by_data, data),
                            &count_of(out.by_shape, shape), &count_of(out.by_depth, depth)}) {
        c->experiments += 1;
        c->runs += left_out ? 0 : reps;
        c->work += left_out ? 0.0 : work * static_cast<double>(reps);
        c->core_seconds += left_out ? 0.0 : cost * static_cast<double>(reps);
        c->outside_20 += outside;
        c->left_out += left_out;
      }
    }
  return out;
}

}  // namespace detdl::variance
