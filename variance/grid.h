// The [grid] of a study file: experiment fields (dotted paths, e.g. "optimizer.kind") with
// lists of values; every setting runs at every combination (docs/studies.md). Axes are taken
// in name order (JSON objects are sorted), the last varying fastest; values in list order.
//
// Checked here, before any combination is built: every path names an experiment field, no
// list is empty or repeats a value (a repeated value would make two settings of one name
// and the same runs twice), and the number of combinations is bounded.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace detdl::variance {

struct GridAxis {
  std::string path;  // "epochs", "optimizer.kind"
  std::vector<nlohmann::json> values;
};

struct Grid {
  std::vector<GridAxis> axes;
  std::int64_t points = 1;  // combinations: the product of the list lengths (1 without a grid)
};

// BUTTER's sweep axes: "butter.shape", "butter.depth" and "butter.size" are not experiment
// fields; given together (all three, and no `net` axis) they make each point's net
// "butter:SHAPE:DEPTH:SIZE" (apply_grid_point), and the setting's name carries them as the
// other axes ("[butter.depth=3 butter.shape=rectangle butter.size=1024 data=...]").
//
// Reads j["grid"] (absent: no axes, one point). `where`: the file, for errors, which read
// e.g. "study.toml: grid.nope.field: unknown experiment field 'nope.field' (...)".
// `max_points`: more combinations than this is an error naming the grid.
Grid read_grid(const nlohmann::json& study, const std::string& where, std::int64_t max_points);

// A slice of an axis: the values of `axis` that are in `want`, in the axis's own order (so
// the slice's settings keep the sweep's names and keys). A wanted value the axis does not
// have is an error: "<where>: <value> is not one of <whose> values [...]".
nlohmann::json narrow_axis(const nlohmann::json& axis, const nlohmann::json& want,
                           const std::string& where, const std::string& whose);

// Every combination, each {"path": value, ...}, in the documented order.
std::vector<nlohmann::json> grid_points(const Grid& grid);

// `patch` with each path of `point` set (intermediate tables created); a point with the three
// butter.* axes sets `net` instead of them.
nlohmann::json apply_grid_point(nlohmann::json patch, const nlohmann::json& point);

// "net=mlp:8 optimizer.kind=adam" ("" for the empty point): the suffix of a setting's name.
std::string grid_point_label(const nlohmann::json& point);

}  // namespace detdl::variance
