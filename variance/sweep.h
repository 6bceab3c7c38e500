// What a sweep (a study file with a [grid], e.g. BUTTER's studies/butter/*.toml) asks for,
// counted without planning it: the full BUTTER sweeps are far past what one study may plan
// (the primary sweep alone is 30,576 experiments x 30 repetitions), and a user runs slices of
// them (`--grid data=...`). `detdl study plan FILE --summary` prints this.
//
// An experiment is one (setting, grid point); its runs are its repetitions. For a BUTTER net
// the summary also counts the experiments whose network is more than 20% from its target
// size (the dataset README's rule, which the published data does not always keep: BUTTER.md),
// and those the study file's [conformance] max_size_distance leaves out.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace detdl::variance {

struct SweepCount {
  std::string value;  // the data set, shape or depth
  std::int64_t experiments = 0, runs = 0;
  std::int64_t outside_20 = 0;  // BUTTER nets more than 20% from their size
  std::int64_t left_out = 0;    // experiments the file's [conformance] leaves out
  // The runs' arithmetic, in parameter-row-epochs: sum over the counted runs of the net's
  // parameters x the data set's training rows x the epochs (BUTTER nets, when the training
  // rows are known; 0 otherwise). A run's cost is about proportional to it (docs/scale.md).
  double work = 0;
  // The runs' estimated cost in core-seconds: each run's work x butter_core_seconds_per_work
  // at its size (one run alone on one core of the machine the table was measured on).
  double core_seconds = 0;
};

// Core-seconds per parameter-row-epoch of a BUTTER run of `size` parameters, one run alone on
// one thread, interpolated in log2(size) between measurements at 2^10 .. 2^22 (wine, 1
// thread, the 2-core Xeon of bench/RESULTS.md, 2026-12-02; docs/scale.md has the table) and
// held at the ends. Small nets cost more per parameter: their GEMMs are narrow.
double butter_core_seconds_per_work(std::int64_t size);

struct SweepSummary {
  std::string name;
  std::int64_t grid_points = 0, settings = 0;  // the file's [[setting]]s
  SweepCount total;
  std::vector<SweepCount> by_data, by_shape, by_depth;  // in first-seen order
  double max_size_distance = -1;                        // the file's [conformance]; -1: none
};

// (n_in, n_out) of a data set as BUTTER's nets see it: the flattened row width and the
// output count (the tool loads the data set; tests give a table).
using DataDims = std::function<std::pair<std::int64_t, std::int64_t>(const std::string& data)>;

// Loads each data set (data::load_data, root `data_dir`, "" for the default) to measure it:
// n_in = the row's values, n_out = the outputs.
DataDims loaded_data_dims(const std::string& data_dir);

// The training rows of a data set (the tool loads it; tests give a table).
using DataRows = std::function<std::int64_t(const std::string& data)>;
DataRows loaded_data_rows(const std::string& data_dir);

// `spec`: the study file as JSON (after --grid slices). Grid bounds here are 10^6 points
// (counting, not planning). Throws std::invalid_argument naming `where` for a bad grid.
// `rows` (optional): the data sets' training rows, for SweepCount::work.
SweepSummary summarize_sweep(const nlohmann::json& spec, const std::string& where,
                             const DataDims& dims, const DataRows& rows = {});

// [conformance] max_size_distance: -1 when absent; else a fraction >= 0 (throws otherwise).
double read_max_size_distance(const nlohmann::json& spec, const std::string& where);

// The relative distance (params - size) / size of a BUTTER net "butter:SHAPE:DEPTH:SIZE" on
// data of (n_in, n_out); NaN for any other net.
double butter_size_distance(const std::string& net, std::int64_t n_in, std::int64_t n_out);

}  // namespace detdl::variance
