#include "nets/data/pmlb.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <stdexcept>

#include "nets/data/idx.h"  // read_file_bytes

namespace detdl::data {

namespace {

// More distinct values than this (in a numeric column) make a column continuous.
constexpr std::size_t kMaxCategories = 20;

// A cell as a number: surrounding spaces and one leading '+' allowed, the rest must be
// consumed. NaN and inf parse (and are rejected later, with their position).
bool parse_number(std::string_view s, double& out) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (end != s.data() + s.size()) return false;
  // Overflow / underflow: still a number (strtod gives +-HUGE_VAL, rejected later as
  // non-finite, or the nearest denormal / 0), not a category.
  if (ec == std::errc::result_out_of_range) out = std::strtod(std::string(s).c_str(), nullptr);
  return ec == std::errc() || ec == std::errc::result_out_of_range;
}

// The cells of a TSV, column by column (views into the file's text).
struct Table {
  std::vector<std::string> names;
  std::vector<std::vector<std::string_view>> columns;  // columns[j][row]
  std::int64_t rows = 0;
};

Table parse_tsv(const std::string& path, const std::string& text) {
  Table t;
  std::size_t pos = 0;
  std::int64_t line_no = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::string where = path + ": line " + std::to_string(line_no);
    if (line.empty()) throw std::runtime_error(where + ": empty line");
    std::vector<std::string_view> cells;
    for (std::size_t a = 0;;) {
      const std::size_t b = line.find('\t', a);
      cells.push_back(line.substr(a, b == std::string_view::npos ? std::string_view::npos : b - a));
      if (b == std::string_view::npos) break;
      a = b + 1;
    }
    if (line_no == 1) {
      for (auto c : cells) t.names.emplace_back(c);
      t.columns.resize(cells.size());
      continue;
    }
    if (cells.size() != t.names.size())
      throw std::runtime_error(where + ": " + std::to_string(cells.size()) +
                               " cells, the header has " + std::to_string(t.names.size()) +
                               " (ragged row)");
    for (std::size_t j = 0; j < cells.size(); ++j) {
      if (cells[j].empty())
        throw std::runtime_error(where + ", column '" + t.names[j] + "': empty cell");
      t.columns[j].push_back(cells[j]);
    }
    ++t.rows;
  }
  if (line_no == 0) throw std::runtime_error(path + ": empty file");
  if (t.rows == 0) throw std::runtime_error(path + ": no data rows after the header");
  return t;
}

// One column's distinct values: each row's code = the rank of its value among the sorted
// distinct values.
struct ColumnValues {
  bool numeric = true;
  std::vector<double> number;         // numeric columns: each row's value
  std::vector<std::int32_t> code;     // each row's category rank
  std::vector<std::string> category;  // sorted distinct values, as first written
  double min = 0.0, max = 0.0;
};

ColumnValues analyse(const std::string& path, const Table& t, std::size_t j) {
  const auto& cells = t.columns[j];
  ColumnValues v;
  v.number.resize(cells.size());
  for (std::size_t r = 0; r < cells.size() && v.numeric; ++r)
    v.numeric = parse_number(cells[r], v.number[r]);
  v.code.resize(cells.size());
  if (v.numeric) {
    for (std::size_t r = 0; r < cells.size(); ++r)
      if (!std::isfinite(v.number[r]))
        throw std::runtime_error(path + ": line " + std::to_string(r + 2) + ", column '" +
                                 t.names[j] + "': non-finite value '" + std::string(cells[r]) +
                                 "' in a numeric column");
    std::map<double, std::int32_t> first;  // value -> first row holding it
    for (std::size_t r = 0; r < cells.size(); ++r)
      first.emplace(v.number[r], static_cast<std::int32_t>(r));
    std::map<double, std::int32_t> rank;
    for (const auto& [value, row] : first) {
      rank.emplace(value, static_cast<std::int32_t>(v.category.size()));
      v.category.emplace_back(cells[static_cast<std::size_t>(row)]);
    }
    for (std::size_t r = 0; r < cells.size(); ++r) v.code[r] = rank.at(v.number[r]);
    v.min = first.begin()->first;
    v.max = first.rbegin()->first;
  } else {
    v.number.clear();
    std::map<std::string_view, std::int32_t> rank;
    for (auto c : cells) rank.emplace(c, 0);
    for (auto& [text, k] : rank) {
      k = static_cast<std::int32_t>(v.category.size());
      v.category.emplace_back(text);
    }
    for (std::size_t r = 0; r < cells.size(); ++r) v.code[r] = rank.at(cells[r]);
  }
  return v;
}

float min_max(double value, double lo, double hi) {
  // A column spanning more than DBL_MAX (e.g. -1e308 .. 1e308) overflows hi - lo to inf and
  // would give NaN (fuzz_pmlb): scale halves there, which cannot overflow. Other columns
  // keep the formula above bit for bit.
  if (!std::isfinite(hi - lo)) return static_cast<float>((value / 2 - lo / 2) / (hi / 2 - lo / 2));
  return static_cast<float>((value - lo) / (hi - lo));
}

// The prepared columns of one input column, appended column by column to `out` (each a
// vector over rows).
void prepare_input(const std::string& path, const std::string& name, const ColumnValues& v,
                   std::vector<std::vector<float>>& out, std::vector<std::string>& names) {
  const std::size_t k = v.category.size(), n = v.code.size();
  if (k == 1) return;  // constant: carries no information
  // One-hot of a text column grows with its distinct values (an ID column: rows x rows
  // floats); refused before it is allocated rather than by the allocator.
  constexpr std::size_t kMaxPreparedValues = std::size_t{1} << 30;  // 4 GiB of float32
  const std::size_t width = (k > 2 && (k <= kMaxCategories || !v.numeric)) ? k : 1;
  if (n > 0 && out.size() + width > kMaxPreparedValues / n)
    throw std::runtime_error(path + ": column '" + name + "': " + std::to_string(k) +
                             " distinct values one-hot over " + std::to_string(n) +
                             " rows make more than " + std::to_string(kMaxPreparedValues) +
                             " prepared input values");
  if (k == 2) {
    std::vector<float> col(n);
    for (std::size_t r = 0; r < n; ++r) col[r] = v.code[r] == v.code[0] ? 1.0f : 0.0f;
    out.push_back(std::move(col));
    names.push_back(name);
  } else if (k <= kMaxCategories || !v.numeric) {
    for (std::size_t c = 0; c < k; ++c) {
      std::vector<float> col(n);
      for (std::size_t r = 0; r < n; ++r)
        col[r] = v.code[r] == static_cast<std::int32_t>(c) ? 1.0f : 0.0f;
      out.push_back(std::move(col));
      names.push_back(name + "=" + v.category[c]);
    }
  } else {
    std::vector<float> col(n);
    for (std::size_t r = 0; r < n; ++r) col[r] = min_max(v.number[r], v.min, v.max);
    out.push_back(std::move(col));
    names.push_back(name);
  }
}

}  // namespace

std::string_view task_name(Task t) {
  switch (t) {
    case Task::regression: return "regression";
    case Task::binary: return "binary";
    case Task::multiclass: return "multiclass";
  }
  return "?";
}

TabularData load_pmlb(const std::string& path, std::optional<Task> task) {
  // A text table with no size field; its length is bounded instead. The largest PMLB file
  // BUTTER uses is a few tens of MB of text; 1 GiB bounds what a small gzip may inflate to.
  constexpr std::uint64_t kMaxPmlbTextBytes = std::uint64_t{1} << 30;
  const std::vector<std::uint8_t> bytes = read_file_bytes(path, kMaxPmlbTextBytes);
  const std::string text(bytes.begin(), bytes.end());
  const Table t = parse_tsv(path, text);
  const auto target_it = std::find(t.names.begin(), t.names.end(), "target");
  if (target_it == t.names.end())
    throw std::runtime_error(path + ": line 1: no `target` column in the header");
  if (std::find(target_it + 1, t.names.end(), "target") != t.names.end())
    throw std::runtime_error(path + ": line 1: more than one `target` column");
  const auto target_col = static_cast<std::size_t>(target_it - t.names.begin());
  const std::int64_t n = t.rows;

  TabularData out;
  std::vector<std::vector<float>> columns;
  for (std::size_t j = 0; j < t.names.size(); ++j)
    if (j != target_col)
      prepare_input(path, t.names[j], analyse(path, t, j), columns, out.input_columns);
  if (columns.empty())
    throw std::runtime_error(path + ": no input column left after dropping constant columns");
  out.n_inputs = static_cast<std::int64_t>(columns.size());
  out.all.x = Tensor::empty({n, out.n_inputs});
  float* x = out.all.x.f32();
  for (std::int64_t r = 0; r < n; ++r)
    for (std::int64_t c = 0; c < out.n_inputs; ++c) x[r * out.n_inputs + c] = columns[c][r];

  const ColumnValues y = analyse(path, t, target_col);
  const std::size_t k = y.category.size();
  const std::string where = path + ": column 'target'";
  if (k < 2) throw std::runtime_error(where + ": a single distinct value, nothing to learn");
  out.task = task                                ? *task
             : k == 2                            ? Task::binary
             : (y.numeric && k > kMaxCategories) ? Task::regression
                                                 : Task::multiclass;
  switch (out.task) {
    case Task::binary: {
      if (k != 2)
        throw std::runtime_error(where + ": binary task needs 2 distinct values, got " +
                                 std::to_string(k));
      out.all.y = Tensor::empty({n, 1});
      for (std::int64_t r = 0; r < n; ++r)
        out.all.y.f32()[r] = y.code[r] == y.code[0] ? 1.0f : 0.0f;
      out.class_values = {y.category[1 - y.code[0]], y.category[y.code[0]]};
      out.n_outputs = 1;
      break;
    }
    case Task::regression: {
      // BUTTER prepares the target column by the inputs' rules and then regresses whatever
      // columns come out (sigmoid outputs, MSE): banana's two values become one 0/1 column
      // (the first row's value -> 1), 294_satellite_image's six become six one-hot columns.
      if (k == 2) {
        out.all.y = Tensor::empty({n, 1});
        for (std::int64_t r = 0; r < n; ++r)
          out.all.y.f32()[r] = y.code[r] == y.code[0] ? 1.0f : 0.0f;
        out.class_values = {y.category[1 - y.code[0]], y.category[y.code[0]]};
        out.n_outputs = 1;
      } else if (k <= kMaxCategories || !y.numeric) {
        const auto kk = static_cast<std::int64_t>(k);
        out.all.y = Tensor::zeros({n, kk});
        for (std::int64_t r = 0; r < n; ++r) out.all.y.f32()[r * kk + y.code[r]] = 1.0f;
        out.class_values = y.category;
        out.n_outputs = kk;
      } else {
        out.all.y = Tensor::empty({n, 1});
        for (std::int64_t r = 0; r < n; ++r)
          out.all.y.f32()[r] = min_max(y.number[r], y.min, y.max);
        out.n_outputs = 1;
      }
      break;
    }
    case Task::multiclass: {
      out.all.y = Tensor::empty({n}, DType::i32);
      for (std::int64_t r = 0; r < n; ++r) out.all.y.i32()[r] = y.code[r];
      out.class_values = y.category;
      out.n_outputs = static_cast<std::int64_t>(k);
      break;
    }
  }
  return out;
}

std::optional<Task> butter_task_override(std::string_view dataset_name) {
  if (dataset_name == "banana" || dataset_name == "294_satellite_image") return Task::regression;
  if (dataset_name == "201_pol") return Task::multiclass;
  return std::nullopt;
}

std::string pmlb_path(const std::string& root, const std::string& name) {
  return (std::filesystem::path(root) / name / (name + ".tsv.gz")).string();
}

}  // namespace detdl::data
