// PMLB TSV loading and BUTTER's preparation: real data sets (wine_quality_white, banana)
// checked against counts the test makes itself, the preparation rules on a small
// hand-written table with values computed by hand, and malformed files refused with the
// file's name and position.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "nets/data/pmlb.h"

using namespace detdl;
using namespace detdl::data;
namespace fs = std::filesystem;

namespace {

const std::string kPmlbRoot = DETDL_SHARED_DIR "/data/pmlb";

struct TempDir {
  fs::path path;
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path = fs::temp_directory_path() /
           ("detdl_pmlb_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string p = (path / name).string();
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
};

// The rows of a gzipped TSV, split on tabs (the test's own reader, independent of pmlb.cpp).
std::vector<std::vector<std::string>> read_tsv_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  EXPECT_NE(f, nullptr) << path;
  std::string text;
  char buf[65536];
  for (int got; (got = gzread(f, buf, sizeof buf)) > 0;)
    text.append(buf, static_cast<std::size_t>(got));
  gzclose(f);
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    std::istringstream ls(line);
    for (std::string cell; std::getline(ls, cell, '\t');) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

// prefix + decimal r (written out: gcc 12's -Wrestrict misfires on "lit" + std::to_string).
std::string tag(const char* prefix, int r) {
  std::string s(prefix);
  s += std::to_string(r);
  return s;
}

template <typename F>
void expect_error_containing(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL() << "no exception; expected one containing " << parts.at(0);
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "message: " << msg << "\nmissing: " << p;
  }
}

}  // namespace

TEST(Pmlb, WineQualityWhite) {
  const std::string path = pmlb_path(kPmlbRoot, "wine_quality_white");
  const auto rows = read_tsv_gz(path);
  ASSERT_EQ(rows.size(), 4899u);  // header + 4898
  const auto& header = rows[0];
  const std::size_t target =
      static_cast<std::size_t>(std::find(header.begin(), header.end(), "target") - header.begin());
  ASSERT_LT(target, header.size());
  // Independent count of prepared inputs: distinct numbers per column, then BUTTER's rule.
  std::int64_t expected_inputs = 0;
  for (std::size_t j = 0; j < header.size(); ++j) {
    if (j == target) continue;
    std::set<double> distinct;
    for (std::size_t r = 1; r < rows.size(); ++r) distinct.insert(std::stod(rows[r][j]));
    expected_inputs += distinct.size() == 1    ? 0
                       : distinct.size() == 2  ? 1
                       : distinct.size() <= 20 ? static_cast<std::int64_t>(distinct.size())
                                               : 1;
  }
  std::map<double, std::int64_t> class_counts;
  for (std::size_t r = 1; r < rows.size(); ++r) ++class_counts[std::stod(rows[r][target])];

  const TabularData d = load_pmlb(path);
  EXPECT_EQ(d.task, Task::multiclass);
  EXPECT_EQ(d.n_inputs, expected_inputs);
  EXPECT_EQ(d.n_inputs, 11);  // BUTTER.md's worked example: 11 inputs, 7 outputs
  EXPECT_EQ(d.n_outputs, 7);
  EXPECT_EQ(d.class_values, (std::vector<std::string>{"3", "4", "5", "6", "7", "8", "9"}));
  ASSERT_EQ(d.all.x.shape(), (Shape{4898, 11}));
  ASSERT_EQ(d.all.y.shape(), (Shape{4898}));
  EXPECT_EQ(d.all.y.dtype(), DType::i32);
  // Each continuous column min-max scaled: min exactly 0, max exactly 1.
  for (std::int64_t c = 0; c < 11; ++c) {
    float lo = 2.0f, hi = -1.0f;
    for (std::int64_t r = 0; r < 4898; ++r) {
      lo = std::min(lo, d.all.x.f32()[r * 11 + c]);
      hi = std::max(hi, d.all.x.f32()[r * 11 + c]);
    }
    EXPECT_EQ(lo, 0.0f) << d.input_columns[c];
    EXPECT_EQ(hi, 1.0f) << d.input_columns[c];
  }
  EXPECT_EQ(d.input_columns.front(), "fixed acidity");
  EXPECT_EQ(d.input_columns.back(), "alcohol");
  // Class k is the k-th smallest quality; counts match the test's own tally.
  std::vector<std::int64_t> counts(7, 0);
  for (std::int64_t r = 0; r < 4898; ++r) ++counts.at(static_cast<std::size_t>(d.all.y.i32()[r]));
  std::size_t k = 0;
  for (const auto& [quality, count] : class_counts)
    EXPECT_EQ(counts[k++], count) << "quality " << quality;
  // Row 0: fixed acidity 7.0 in the column's [min, max], scaled in float64.
  double lo = 1e300, hi = -1e300;
  for (std::size_t r = 1; r < rows.size(); ++r) {
    lo = std::min(lo, std::stod(rows[r][0]));
    hi = std::max(hi, std::stod(rows[r][0]));
  }
  EXPECT_EQ(d.all.x.f32()[0], static_cast<float>((7.0 - lo) / (hi - lo)));
}

TEST(Pmlb, BananaWithButtersTaskOverride) {
  ASSERT_EQ(butter_task_override("banana"), Task::regression);
  const TabularData d = load_pmlb(pmlb_path(kPmlbRoot, "banana"), butter_task_override("banana"));
  EXPECT_EQ(d.task, Task::regression);
  EXPECT_EQ(d.n_inputs, 2);
  EXPECT_EQ(d.n_outputs, 1);
  ASSERT_EQ(d.all.y.shape(), (Shape{5300, 1}));
  // BUTTER prepares the target by the input rules even as regression: two values -> 0/1 with
  // the first row's value -> 1 (row 0 is -1.0, row 1 is 1.0), not min-max's -1 -> 0.
  EXPECT_EQ(d.all.y.f32()[0], 1.0f);
  EXPECT_EQ(d.all.y.f32()[1], 0.0f);
  for (std::int64_t r = 0; r < 5300; ++r)
    ASSERT_TRUE(d.all.y.f32()[r] == 0.0f || d.all.y.f32()[r] == 1.0f);
  // Without the override, two values make it binary: the very same targets.
  const TabularData b = load_pmlb(pmlb_path(kPmlbRoot, "banana"));
  EXPECT_EQ(b.task, Task::binary);
  EXPECT_EQ(b.all.y.to_vector(), d.all.y.to_vector());
  EXPECT_EQ(d.class_values, b.class_values);
  EXPECT_EQ(b.all.y.f32()[1], 0.0f);
  EXPECT_EQ(b.class_values, (std::vector<std::string>{"1.0", "-1.0"}));
}

TEST(Pmlb, TaskOverridesAndPaths) {
  EXPECT_EQ(butter_task_override("294_satellite_image"), Task::regression);
  EXPECT_EQ(butter_task_override("201_pol"), Task::multiclass);
  EXPECT_EQ(butter_task_override("adult"), std::nullopt);
  EXPECT_EQ(butter_task_override("wine_quality_white"), std::nullopt);
  EXPECT_EQ(pmlb_path("/r", "adult"), "/r/adult/adult.tsv.gz");
  EXPECT_EQ(task_name(Task::regression), "regression");
  EXPECT_EQ(task_name(Task::binary), "binary");
  EXPECT_EQ(task_name(Task::multiclass), "multiclass");
  for (const char* name : {"201_pol", "294_satellite_image", "adult", "splice"})
    EXPECT_TRUE(fs::exists(pmlb_path(kPmlbRoot, name))) << name;
}

// 21 rows r = 0..20 covering every rule:
//   konst = 7             -> dropped (one value)
//   six   = "6" / "6.0"   -> dropped (one value as a number)
//   two   = 10 or 20      -> one 0/1 column, row 0's value 10 -> 1
//   cat   = 2.5, -1, 10   -> one-hot in numeric order -1 < 2.5 < 10 (not "-1" < "10" < "2.5")
//   word  = pear, apple, fig, kiwi -> one-hot, sorted
//   w     = "w<r>"        -> 21 distinct strings: one-hot (non-numeric), lexicographic
//   cont  = 3r - 10       -> 21 distinct numbers: min-max, (v + 10) / 60
TEST(Pmlb, PreparationRulesOnAHandWrittenTable) {
  TempDir t;
  const char* cats[3] = {"2.5", "-1", "10"};
  const char* words[4] = {"pear", "apple", "fig", "kiwi"};
  std::string text = "konst\tsix\ttwo\tcat\tword\tw\tcont\ttarget\n";
  for (int r = 0; r < 21; ++r)
    text += std::string("7\t") + (r % 2 ? "6.0" : "6") + "\t" + (r % 3 == 0 ? "10" : "20") + "\t" +
            cats[r % 3] + "\t" + words[r % 4] + "\tw" + std::to_string(r) + "\t" +
            std::to_string(3 * r - 10) + "\t" + (r % 2 ? "yes" : "no") + "\n";
  const TabularData d = load_pmlb(t.write("hand.tsv", text));

  std::vector<std::string> names = {"two",        "cat=-1",   "cat=2.5",   "cat=10",
                                    "word=apple", "word=fig", "word=kiwi", "word=pear"};
  std::vector<std::string> w_sorted;
  for (int r = 0; r < 21; ++r) w_sorted.push_back(tag("w", r));
  std::sort(w_sorted.begin(), w_sorted.end());  // w0 w1 w10 w11 .. w19 w2 w20 w3 .. w9
  EXPECT_EQ(w_sorted[2], "w10");
  for (const auto& w : w_sorted) names.push_back("w=" + w);
  names.push_back("cont");
  EXPECT_EQ(d.input_columns, names);
  ASSERT_EQ(d.n_inputs, 1 + 3 + 4 + 21 + 1);
  ASSERT_EQ(d.all.x.shape(), (Shape{21, 30}));

  const float* x = d.all.x.f32();
  for (int r = 0; r < 21; ++r) {
    const float* row = x + r * 30;
    EXPECT_EQ(row[0], r % 3 == 0 ? 1.0f : 0.0f) << r;
    // cat: 2.5 -> column 2, -1 -> column 1, 10 -> column 3.
    const int cat_col = r % 3 == 0 ? 2 : r % 3 == 1 ? 1 : 3;
    for (int c = 1; c <= 3; ++c) EXPECT_EQ(row[c], c == cat_col ? 1.0f : 0.0f) << r;
    // word: pear -> 7, apple -> 4, fig -> 5, kiwi -> 6.
    const int word_col = (int[]){7, 4, 5, 6}[r % 4];
    for (int c = 4; c <= 7; ++c) EXPECT_EQ(row[c], c == word_col ? 1.0f : 0.0f) << r;
    const auto w_col =
        8 + (std::find(w_sorted.begin(), w_sorted.end(), tag("w", r)) - w_sorted.begin());
    for (int c = 8; c < 29; ++c) EXPECT_EQ(row[c], c == w_col ? 1.0f : 0.0f) << r;
    EXPECT_EQ(row[29], static_cast<float>((3.0 * r - 10.0 + 10.0) / 60.0)) << r;
  }
  // target no/yes: two values -> binary, row 0's "no" -> 1.
  EXPECT_EQ(d.task, Task::binary);
  EXPECT_EQ(d.n_outputs, 1);
  ASSERT_EQ(d.all.y.shape(), (Shape{21, 1}));
  for (int r = 0; r < 21; ++r) EXPECT_EQ(d.all.y.f32()[r], r % 2 ? 0.0f : 1.0f);
  EXPECT_EQ(d.class_values, (std::vector<std::string>{"yes", "no"}));
}

TEST(Pmlb, TargetInference) {
  TempDir t;
  auto table = [](int rows, auto target_of) {
    std::string s = "a\ttarget\n";
    for (int r = 0; r < rows; ++r) {
      s += std::to_string(r % 5);
      s += '\t';
      s += target_of(r);
      s += '\n';
    }
    return s;
  };
  // Numeric with 21 distinct values -> regression, min-max: v = r * 0.5 + 1 -> r / 20.
  const auto reg =
      load_pmlb(t.write("reg.tsv", table(21, [](int r) { return std::to_string(r * 0.5 + 1); })));
  EXPECT_EQ(reg.task, Task::regression);
  ASSERT_EQ(reg.all.y.shape(), (Shape{21, 1}));
  for (int r = 0; r < 21; ++r) EXPECT_EQ(reg.all.y.f32()[r], static_cast<float>(r / 20.0));
  // Numeric with 20 distinct values -> multiclass, classes in numeric order (10 before 9 is
  // lexicographic; numeric puts 9 first).
  const auto mc =
      load_pmlb(t.write("mc.tsv", table(40, [](int r) { return std::to_string(19 - r % 20); })));
  EXPECT_EQ(mc.task, Task::multiclass);
  EXPECT_EQ(mc.n_outputs, 20);
  EXPECT_EQ(mc.class_values[9], "9");
  EXPECT_EQ(mc.class_values[10], "10");
  for (int r = 0; r < 40; ++r) EXPECT_EQ(mc.all.y.i32()[r], 19 - r % 20);
  // Text with 25 distinct values -> multiclass, lexicographic.
  const auto txt = load_pmlb(t.write("txt.tsv", table(25, [](int r) { return tag("c", r); })));
  EXPECT_EQ(txt.task, Task::multiclass);
  EXPECT_EQ(txt.n_outputs, 25);
  EXPECT_EQ(txt.class_values[0], "c0");
  EXPECT_EQ(txt.class_values[1], "c1");
  EXPECT_EQ(txt.class_values[2], "c10");
  EXPECT_EQ(txt.all.y.i32()[2], 12);  // "c2" comes after c0, c1, c10..c19
  // Column a has 5 values (<= 20): one-hot.
  EXPECT_EQ(txt.n_inputs, 5);
  // A given task wins over inference; a target that does not fit it is refused.
  const auto mc3 =
      load_pmlb(t.write("three.tsv", table(9, [](int r) { return std::to_string(r % 3); })),
                Task::regression);
  // Regression of a 3-valued target: BUTTER one-hot encodes it (3 outputs, MSE).
  EXPECT_EQ(mc3.task, Task::regression);
  EXPECT_EQ(mc3.n_outputs, 3);
  ASSERT_EQ(mc3.all.y.shape(), (Shape{9, 3}));
  for (int r = 0; r < 9; ++r)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(mc3.all.y.f32()[r * 3 + c], r % 3 == c ? 1.0f : 0.0f);
  // 25 numeric values: min-max, one output.
  const auto wide = load_pmlb(
      t.write("wide.tsv", table(25, [](int r) { return std::to_string(r); })), Task::regression);
  EXPECT_EQ(wide.n_outputs, 1);
  EXPECT_EQ(wide.all.y.f32()[24], 1.0f);
  expect_error_containing(
      [&] {
        load_pmlb(t.write("bin3.tsv", table(9, [](int r) { return std::to_string(r % 3); })),
                  Task::binary);
      },
      {"bin3.tsv", "binary", "got 3"});
  // A text target as regression: one-hot too (BUTTER's rule for a text column).
  const auto regtxt = load_pmlb(
      t.write("regtxt.tsv", table(9, [](int r) { return tag("c", r % 3); })), Task::regression);
  EXPECT_EQ(regtxt.n_outputs, 3);
  EXPECT_EQ(regtxt.class_values[2], "c2");
  expect_error_containing(
      [&] { load_pmlb(t.write("const.tsv", table(9, [](int) { return std::string("1"); }))); },
      {"const.tsv", "target"});
}

TEST(Pmlb, GzippedAndPlainGiveTheSameResult) {
  TempDir t;
  const std::string text = "x\ty\ttarget\n1\ta\t0\n2\tb\t1\n3\tc\t0\n";
  const std::string plain = t.write("p.tsv", text);
  const std::string gz = (t.path / "p.tsv.gz").string();
  gzFile f = gzopen(gz.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  gzwrite(f, text.data(), static_cast<unsigned>(text.size()));
  gzclose(f);
  const auto a = load_pmlb(plain), b = load_pmlb(gz);
  EXPECT_EQ(a.input_columns, b.input_columns);
  EXPECT_EQ(a.all.x.to_vector(), b.all.x.to_vector());
  EXPECT_EQ(a.all.y.to_vector(), b.all.y.to_vector());
  // Windows line ends are accepted.
  std::string crlf;
  for (char c : text) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  EXPECT_EQ(load_pmlb(t.write("crlf.tsv", crlf)).input_columns, a.input_columns);
}

TEST(Pmlb, MalformedFilesAreRefusedWithPosition) {
  TempDir t;
  expect_error_containing([&] { load_pmlb(t.write("notarget.tsv", "a\tb\n1\t2\n3\t4\n")); },
                          {"notarget.tsv", "target"});
  expect_error_containing(
      [&] { load_pmlb(t.write("ragged.tsv", "a\tb\ttarget\n1\t2\t0\n3\t4\n5\t6\t1\n")); },
      {"ragged.tsv", "line 3", "2 cells", "3"});
  expect_error_containing(
      [&] { load_pmlb(t.write("nan.tsv", "a\tb\ttarget\n1\t2\t0\n3\t4\t1\n5\tnan\t1\n")); },
      {"nan.tsv", "line 4", "column 'b'", "nan"});
  expect_error_containing(
      [&] { load_pmlb(t.write("inf.tsv", "a\tb\ttarget\n1\t2\t0\n-inf\t4\t1\n")); },
      {"inf.tsv", "line 3", "column 'a'"});
  expect_error_containing(
      [&] { load_pmlb(t.write("overflow.tsv", "a\tb\ttarget\n1\t2\t0\n3\t1e999\t1\n")); },
      {"overflow.tsv", "line 3", "column 'b'", "1e999"});
  expect_error_containing(
      [&] { load_pmlb(t.write("nantarget.tsv", "a\ttarget\n1\t0.5\n2\tNaN\n3\t1\n")); },
      {"nantarget.tsv", "line 3", "column 'target'"});
  expect_error_containing(
      [&] { load_pmlb(t.write("emptycell.tsv", "a\tb\ttarget\n1\t2\t0\n3\t\t1\n")); },
      {"emptycell.tsv", "line 3", "column 'b'", "empty"});
  expect_error_containing([&] { load_pmlb(t.write("header.tsv", "a\tb\ttarget\n")); },
                          {"header.tsv", "no data"});
  expect_error_containing([&] { load_pmlb(t.write("empty.tsv", "")); }, {"empty.tsv"});
  expect_error_containing([&] { load_pmlb(t.write("blank.tsv", "a\ttarget\n1\t0\n\n2\t1\n")); },
                          {"blank.tsv", "line 3", "empty line"});
  expect_error_containing([&] { load_pmlb(t.write("noinputs.tsv", "a\ttarget\n1\t0\n1\t1\n")); },
                          {"noinputs.tsv", "no input"});
  expect_error_containing([&] { load_pmlb((t.path / "absent.tsv.gz").string()); },
                          {"absent.tsv.gz"});
}

// Every BUTTER data set on the machine loads, with the row counts and classes of
// ../shared/data/SOURCES.md and BUTTER's task table.
TEST(Pmlb, EveryButterDataSetLoads) {
  struct Expect {
    const char* name;
    std::int64_t rows;
    Task task;
    std::int64_t outputs;
  };
  const Expect all[] = {{"529_pollen", 3848, Task::regression, 1},
                        {"537_houses", 20640, Task::regression, 1},
                        {"201_pol", 15000, Task::multiclass, 11},
                        {"sleep", 105908, Task::multiclass, 5},
                        {"wine_quality_white", 4898, Task::multiclass, 7},
                        {"connect_4", 67557, Task::multiclass, 3},
                        {"nursery", 12958, Task::multiclass, 4},
                        {"adult", 48842, Task::binary, 1},
                        {"505_tecator", 240, Task::regression, 1},
                        {"294_satellite_image", 6435, Task::regression, 6},  // one-hot
                        {"splice", 3188, Task::multiclass, 3},
                        {"banana", 5300, Task::regression, 1}};
  for (const Expect& e : all) {
    const TabularData d = load_pmlb(pmlb_path(kPmlbRoot, e.name), butter_task_override(e.name));
    EXPECT_EQ(d.all.size(), e.rows) << e.name;
    EXPECT_EQ(d.task, e.task) << e.name;
    EXPECT_EQ(d.n_outputs, e.outputs) << e.name;
    EXPECT_EQ(d.all.x.dim(1), d.n_inputs) << e.name;
    const auto xv = d.all.x.to_vector();
    EXPECT_TRUE(std::all_of(xv.begin(), xv.end(), [](float v) { return v >= 0.0f && v <= 1.0f; }))
        << e.name;
  }
}
