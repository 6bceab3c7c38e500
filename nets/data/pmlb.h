// PMLB tabular data sets (the BUTTER study's 13 data sets) and BUTTER's preparation of them
// (../shared/design/BUTTER.md, "Data preparation"). The preparation looks at each column of
// the whole set, before any split, so the split only selects rows of prepared data.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/dataset.h"

namespace detdl::data {

enum class Task { regression, binary, multiclass };
std::string_view task_name(Task t);  // "regression", "binary", "multiclass"

struct TabularData {
  // x float32 (N, F) prepared inputs; y: regression float32 (N, O) in [0, 1], binary float32
  // (N, 1) in {0, 1}, multiclass int32 (N) class index.
  Dataset all;
  Task task = Task::regression;
  std::int64_t n_inputs = 0;   // F
  std::int64_t n_outputs = 0;  // 1 for binary, K for multiclass, regression: 1 or K (one-hot)
  std::vector<std::string> input_columns;  // after preparation; one-hot columns are "col=value"
  // Original target text of each class index: multiclass K entries; binary (and a two-valued
  // regression target) 2 entries ([0] the value mapped to 0, [1] the first row's value,
  // mapped to 1); a one-hot regression target its K columns' values; min-max regression none.
  std::vector<std::string> class_values;
};

// Reads a PMLB TSV (.tsv or .tsv.gz: a header row, tab-separated cells, the label column
// named `target`) and prepares it as BUTTER does. Each input column:
//   one distinct value              -> dropped;
//   two                             -> one 0/1 column (equal to the first row's value -> 1);
//   <= 20, or any non-numeric cell  -> one-hot, categories in sorted order (numeric order for
//                                      numeric columns, else byte-wise lexicographic);
//   otherwise                       -> min-max scaled to [0, 1] (in double, then rounded).
// Distinct values of a numeric column are compared as numbers ("6" == "6.0"); a category's
// name is its first occurrence's text. The target: `task` if given, else inferred (two
// distinct values -> binary with the 0/1 rule above; numeric with > 20 distinct -> regression
// min-max scaled to [0, 1]; otherwise multiclass, classes in sorted order). A regression
// target is prepared as BUTTER prepares it, by the input rules: two values -> one 0/1
// column, <= 20 (or text) -> one-hot columns (n_outputs = K, y float32 (N, K)), otherwise
// min-max (so banana trains one 0/1 output and 294_satellite_image six one-hot outputs).
// Errors (std::runtime_error naming the file, and the line and column where there is one):
// unreadable file, no `target` column, ragged row, empty line or cell, no data rows, NaN/inf
// in a numeric column, a target that does not fit the task, no input column left.
TabularData load_pmlb(const std::string& path, std::optional<Task> task = std::nullopt);

// BUTTER's own task table where it differs from PMLB's metadata: banana and
// 294_satellite_image -> regression, 201_pol -> multiclass; nullopt otherwise.
std::optional<Task> butter_task_override(std::string_view dataset_name);

// <root>/<name>/<name>.tsv.gz, PMLB's layout (root e.g. ../shared/data/pmlb).
std::string pmlb_path(const std::string& root, const std::string& name);

}  // namespace detdl::data
