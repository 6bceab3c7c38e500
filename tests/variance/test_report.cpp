// `detdl study table` and `detdl report` on a small study: the table names every setting,
// the CSVs have their rows, the pictures and the HTML page are written; bad input is named.
// Then issue 9's table rules: regression settings measured in test loss, no silent zero
// spread between differing weights, diverged runs counted and left out, picture ticks.
#include <gtest/gtest.h>

#include "tests/cli_run.h"
#include <sys/wait.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "variance/analysis.h"
#include "variance/store.h"

namespace {
namespace fs = std::filesystem;

using Result = detdl::test_util::CliResult;
Result run(const std::string& args) { return detdl::test_util::run_detdl(args); }

std::size_t lines(const fs::path& p) {
  std::ifstream in(p);
  std::size_t n = 0;
  for (std::string l; std::getline(in, l);) ++n;
  return n;
}

// The label a setting's spread gets comes from what its runs' experiments differ in.
TEST(Report, WhatVariesIsReadFromTheRuns) {
  using detdl::variance::StoredRun;
  using detdl::variance::what_varies;
  auto runs_with = [](std::vector<nlohmann::json> experiments) {
    std::vector<StoredRun> runs;
    for (auto& e : experiments) {
      StoredRun r;
      r.experiment = std::move(e);
      runs.push_back(std::move(r));
    }
    return runs;
  };
  const nlohmann::json base = {{"level", "portable"},
                               {"fast_ops", nlohmann::json::array()},
                               {"seeds",
                                {{"init", 1},
                                 {"order", 1},
                                 {"augment", 1},
                                 {"dropout", 1},
                                 {"label_noise", 1},
                                 {"split", 1}}}};
  EXPECT_EQ(what_varies(runs_with({base, base})), "nothing");
  auto all = base;
  for (auto& [k, v] : all["seeds"].items()) v = 2;
  EXPECT_EQ(what_varies(runs_with({base, all})), "algorithmic: all six seeds");
  auto two = base;
  two["seeds"]["init"] = 5;
  two["seeds"]["split"] = 5;
  EXPECT_EQ(what_varies(runs_with({base, two})), "algorithmic: init, split");
  auto impl1 = base, impl2 = base;
  impl1["level"] = impl2["level"] = "emulated";
  impl1["seeds"]["impl"] = 1;
  impl2["seeds"]["impl"] = 2;
  EXPECT_EQ(what_varies(runs_with({impl1, impl2})), "implementation: impl seed");
  auto fast = base;
  fast["level"] = "fast";
  EXPECT_EQ(what_varies(runs_with({fast, fast})), "implementation: timing (fast)");
  auto nudge = base;
  nudge["init_nudge"] = 3;
  EXPECT_EQ(what_varies(runs_with({base, nudge})), "one ulp: init_nudge");
  auto fast_all = all;
  fast_all["fast_ops"] = {"conv_wgrad"};
  EXPECT_EQ(what_varies(runs_with({base, fast_all})),
            "algorithmic: all six seeds + implementation: timing (fast)");
}

// A setting with more runs than one 16-run group gets the resampled-groups block and CSV;
// one with 16 or fewer does not.
TEST(Report, SettingsWithMoreRunsThanAGroupAreResampled) {
  const fs::path dir = fs::temp_directory_path() / ("detdl_groups_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "g.toml") << "name = \"g\"\nrepetitions = 3\nselection = [\"last\"]\n"
                                   "[experiment]\nnet = \"mlp:4\"\ndata = \"blobs\"\nepochs = 1\n"
                                   "batch_size = 128\n[[setting]]\nname = \"pool\"\n"
                                   "vary = [\"all\"]\nrepetitions = 18\n[[setting]]\n"
                                   "name = \"small\"\nvary = [\"all\"]\n"
                                   "[published]\ndefault = 0.5\n";
  const std::string store = (dir / "g.sqlite").string();
  auto r = run("study run " + (dir / "g.toml").string() + " --store " + store + " --quiet");
  ASSERT_EQ(r.status, 0) << r.output;
  r = run("study table " + store + " --out " + (dir / "csv").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const auto block = r.output.find("16-run groups resampled");
  ASSERT_NE(block, std::string::npos) << r.output;
  const std::string rest = r.output.substr(block, r.output.find("\n\n", block) - block);
  EXPECT_NE(rest.find("pool"), std::string::npos) << rest;
  EXPECT_EQ(rest.find("small"), std::string::npos) << rest;
  EXPECT_EQ(lines(dir / "csv" / "group_spread.csv"), 2u);  // header + pool x last
  // The published figure of pool's table group ("default": its seeds vary) placed in the
  // largest-of-24 distribution: the share of draws at or below 50%, a fraction.
  EXPECT_NE(rest.find("50.00 ("), std::string::npos) << rest;
  std::ifstream csv(dir / "csv" / "group_spread.csv");
  std::string header, row;
  std::getline(csv, header);
  std::getline(csv, row);
  EXPECT_NE(header.find(",published,published_rank"), std::string::npos) << header;
  const std::string rank = row.substr(row.rfind(',') + 1);
  ASSERT_FALSE(rank.empty()) << row;
  EXPECT_GE(std::stod(rank), 0.0);
  EXPECT_LE(std::stod(rank), 1.0);
  EXPECT_NE(row.find(",0.5,"), std::string::npos) << row;
  fs::remove_all(dir);
}

TEST(Report, TinyStudyTablesPicturesAndPage) {
  const fs::path dir = fs::temp_directory_path() / ("detdl_report_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string store = (dir / "tiny.sqlite").string();
  const std::string study = std::string(DETDL_SOURCE_DIR) + "/studies/tiny.toml";
  auto r = run("study run " + study + " --store " + store + " --jobs 2 --quiet");
  ASSERT_EQ(r.status, 0) << r.output;
  r = run("study table " + store);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("the paper's Table 2 and 3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("group default: 2 setting(s) x best_loss, best_acc (4 rows)"),
            std::string::npos)
      << r.output;
  for (const char* s :
       {"fixed-portable", "fixed-fast", "varied-portable", "varied-order", "best_loss", "best_acc"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s << "\n" << r.output;
  // fixed seeds + portable: one hash, bit-identical.
  const auto line = r.output.substr(
      r.output.find("fixed-portable", r.output.find("spread by what each setting varies")));
  EXPECT_NE(line.substr(0, line.find('\n')).find("yes"), std::string::npos) << line;
  // Each setting's line says what its runs vary (tiny.toml: nothing, timing, all seeds, order).
  EXPECT_NE(line.substr(0, line.find('\n')).find("nothing"), std::string::npos) << line;
  for (const auto& [setting, varies] : std::vector<std::pair<std::string, std::string>>{
           {"fixed-fast", "implementation: timing (fast)"},
           {"varied-portable", "algorithmic: all six seeds"},
           {"varied-order", "algorithmic: order"}}) {
    const auto at = r.output.find(setting, r.output.find("spread by what each setting varies"));
    ASSERT_NE(at, std::string::npos) << setting;
    const std::string l = r.output.substr(at, r.output.find('\n', at) - at);
    EXPECT_NE(l.find(varies), std::string::npos) << l;
  }

  const fs::path out = dir / "report";
  r = run("report " + store + " --out " + out.string());
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* f :
       {"analysis_result.csv", "analysis_raw.csv", "detdl_result.csv", "detdl_raw.csv",
        "group_spread.csv", "comparisons.csv", "butter_summary.csv", "implementation_spread.csv",
        "divergence.csv", "paper_table2.csv", "paper_table3.csv", "paper_maxima.csv",
        "accuracy_spread.png", "class_spread.png", "loss_curves.png", "divergence.png",
        "index.html"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  // The paper's tables: a row per setting and criterion; its figures per table group, the
  // seeds-varied settings in "default", fixed-portable and fixed-fast in "fixed-seed".
  EXPECT_EQ(lines(out / "paper_table2.csv"), 1u + 4 * 3);
  EXPECT_EQ(lines(out / "paper_table3.csv"), 1u + 4 * 3);
  EXPECT_EQ(lines(out / "paper_maxima.csv"), 1u + 2 * 5);  // header + groups x figures
  {
    std::ifstream f(out / "paper_maxima.csv");
    std::stringstream all;
    all << f.rdbuf();
    EXPECT_NE(all.str().find("default,max_accuracy_diff,"), std::string::npos) << all.str();
    EXPECT_NE(all.str().find("fixed-portable; fixed-fast,best_loss; best_acc,4,"),
              std::string::npos)
        << all.str();
    // fixed-portable's runs are bit-identical, so the fixed-seed maximum comes from fixed-fast
    // or is 0 with fixed-portable (the first row) named.
    EXPECT_NE(all.str().find("\nfixed-seed,max_accuracy_diff,"), std::string::npos) << all.str();
  }

  EXPECT_EQ(lines(out / "analysis_result.csv"), 1u + 4 * 3);  // header + settings x criteria
  EXPECT_EQ(lines(out / "analysis_raw.csv"), 1u + 12 * 3);    // header + runs x criteria
  EXPECT_EQ(lines(out / "detdl_result.csv"), 1u + 4 * 3);
  EXPECT_EQ(lines(out / "detdl_raw.csv"), 1u + 12 * 3);
  {  // the study's own columns, in its order, then the setting
    std::ifstream f(out / "analysis_result.csv");
    std::string header, row;
    std::getline(f, header);
    std::getline(f, row);
    EXPECT_EQ(header.rfind("backend,backend_version,cuda_version,cudnn_version,network,"
                           "random_seed,stopping_type,no_try,max_accuracy_diff,",
                           0),
              0u)
        << header;
    EXPECT_NE(header.find(",max_std_label,max_per_label_acc_std,no_samples_max_std,"),
              std::string::npos);
    EXPECT_NE(header.find(",mean_convergent_epoch,setting,max_per_label_acc_diff_study_loop,"),
              std::string::npos);
    EXPECT_EQ(row.rfind("detdl,", 0), 0u) << row;
    EXPECT_NE(row.find(",mlp:16,1,best_loss,3,"), std::string::npos) << row;  // fixed-portable
    std::ifstream r(out / "analysis_raw.csv");
    std::getline(r, header);
    EXPECT_EQ(header,
              "backend,backend_version,cuda_version,cudnn_version,network,random_seed,"
              "stopping_type,try,accuracy,convergent,convergent_epoch,setting");
  }
  std::ifstream html(out / "index.html");
  std::stringstream page;
  page << html.rdbuf();
  EXPECT_NE(page.str().find("accuracy_spread.png"), std::string::npos);
  EXPECT_GT(fs::file_size(out / "accuracy_spread.png"), 1000u);

  r = run("report " + (dir / "missing.sqlite").string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("missing.sqlite"), std::string::npos) << r.output;
  std::ofstream(dir / "junk.sqlite") << "not a database";
  r = run("study table " + (dir / "junk.sqlite").string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("junk.sqlite"), std::string::npos) << r.output;
  fs::remove_all(dir);
}

}  // namespace

namespace {

TEST(StudyFlags, FlagsAreTheStudyFilesEquivalent) {
  // A study built from flags alone: same plan as the same study written as a file.
  auto r =
      run("study plan --name f --repetitions 2 --set net=mlp:8 --set epochs=2 --setting name=a "
          "--setting name=b,level=fast,threads=2,vary=init+order");
  ASSERT_EQ(r.status, 0) << r.output;
  const fs::path dir = fs::temp_directory_path() / ("detdl_flags_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "f.toml")
      << "name = \"f\"\nrepetitions = 2\n[experiment]\nnet = \"mlp:8\"\nepochs = 2\n"
         "[[setting]]\nname = \"a\"\n[[setting]]\nname = \"b\"\nlevel = \"fast\"\nthreads = 2\n"
         "vary = [\"init\", \"order\"]\n";
  const auto f = run("study plan " + (dir / "f.toml").string());
  ASSERT_EQ(f.status, 0) << f.output;
  EXPECT_EQ(r.output, f.output);
  // Flags override a file.
  const auto o = run("study plan " + (dir / "f.toml").string() + " --repetitions 3");
  EXPECT_NE(o.output.find(" b                         2 "), std::string::npos) << o.output;
  // Bad flags are named.
  auto bad = run("study plan --name f --setting name=a,colour");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.output.find("--setting"), std::string::npos) << bad.output;
  bad = run("study plan --name f --set epochs --setting name=a");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.output.find("--set"), std::string::npos) << bad.output;
  bad = run("study plan --name f --setting name=a,level=fastest");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.output.find("setting[1].level"), std::string::npos) << bad.output;
  fs::remove_all(dir);
}

}  // namespace

// ---- issue 9: regression tables, the zero-spread rule, diverged runs, picture ticks ------

namespace {

using nlohmann::json;

// A run record as run_experiment writes it, cut down to what the store needs: `losses` per
// epoch (NaN -> null, as nlohmann writes it), test accuracy `acc` at every epoch.
json record_of(const std::string& task, const std::vector<double>& losses, double acc,
               const std::string& hash, bool diverged) {
  json epochs = json::array();
  for (std::size_t e = 0; e < losses.size(); ++e) {
    const json loss = std::isfinite(losses[e]) ? json(losses[e]) : json(nullptr);
    epochs.push_back({{"epoch", e + 1},
                      {"seconds", 0.5},
                      {"weight_hash", hash + std::to_string(e)},
                      {"train", {{"loss", loss}, {"accuracy", acc}}},
                      {"test", {{"loss", loss}, {"accuracy", acc}, {"mean_squared_error", loss}}}});
  }
  return {{"record_version", 1},
          {"experiment", {{"data", task == "regression" ? "537_houses" : "blobs"}}},
          {"data", {{"task", task}}},
          {"epochs", epochs},
          {"weight_hash", hash},
          {"diverged", diverged}};
}

fs::path fresh_dir(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("detdl_report_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string line_of(const std::string& text, const std::string& start_of_block,
                    const std::string& setting) {
  const auto block = text.find(start_of_block);
  if (block == std::string::npos) return "(no block '" + start_of_block + "')";
  const auto at = text.find("\n" + setting + " ", block);
  if (at == std::string::npos) return "(no line '" + setting + "')";
  return text.substr(at + 1, text.find('\n', at + 1) - at - 1);
}

// Issue 9 (6): three regression runs with three final hashes and accuracy 0: the table
// shows the test loss spread, and the accuracy's zero spread is flagged, not silent.
TEST(Report, RegressionTableShowsTestLossSpreadAndFlagsZeroAccuracySpread) {
  const fs::path dir = fresh_dir("regression");
  const std::string store = (dir / "houses.sqlite").string();
  {
    detdl::variance::Store s(store);
    s.put_study("houses", json::object());
    const double last[] = {0.0412, 0.0398, 0.0431};
    for (int i = 0; i < 3; ++i)
      ASSERT_TRUE(s.put_run(
          "k" + std::to_string(i), "houses", "varied", i,
          record_of("regression", {0.08, last[i]}, 0.0, "hash" + std::to_string(i), false)));
    // A classification setting with one accuracy and three hashes: flagged too.
    for (int i = 0; i < 3; ++i)
      ASSERT_TRUE(s.put_run(
          "c" + std::to_string(i), "houses", "cls", i,
          record_of("multiclass", {0.5, 0.4 + 0.01 * i}, 0.9, "chash" + std::to_string(i), false)));
  }
  const auto r = run("study table " + store);
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string acc = line_of(r.output, "selection last (test accuracy", "varied");
  EXPECT_NE(acc.find("hashes differ, metric identical"), std::string::npos) << acc;
  EXPECT_NE(acc.find("regression: see test loss below"), std::string::npos) << acc;
  EXPECT_NE(line_of(r.output, "selection last (test accuracy", "cls")
                .find("hashes differ, metric identical"),
            std::string::npos)
      << r.output;
  const std::string loss =
      line_of(r.output, "selection last, regression settings (test loss", "varied");
  // mean 0.04137, min 0.0398, max 0.0431, max-min 0.0033, 3 hashes, nothing flagged
  EXPECT_NE(loss.find("0.04137"), std::string::npos) << loss;
  EXPECT_NE(loss.find("0.0398"), std::string::npos) << loss;
  EXPECT_NE(loss.find("0.0431"), std::string::npos) << loss;
  EXPECT_NE(loss.find("0.0033"), std::string::npos) << loss;
  EXPECT_EQ(loss.find("hashes differ, metric identical"), std::string::npos) << loss;
  // The implementation-only block measures the loss for the regression setting.
  const std::string impl = line_of(r.output, "spread by what each setting varies", "varied");
  EXPECT_NE(impl.find("0.0033"), std::string::npos) << impl;
  EXPECT_NE(line_of(r.output, "spread by what each setting varies", "cls")
                .find("hashes differ, metric identical"),
            std::string::npos)
      << r.output;

  // The CSVs and pictures: the loss spread is drawn for the regression setting.
  const fs::path out = dir / "report";
  const auto rep = run("report " + store + " --out " + out.string());
  ASSERT_EQ(rep.status, 0) << rep.output;
  EXPECT_TRUE(fs::exists(out / "loss_spread.png"));
  std::ifstream csv(out / "detdl_result.csv");
  std::stringstream text;
  text << csv.rdbuf();
  EXPECT_NE(text.str().find(",loss_max_diff,"), std::string::npos);
  EXPECT_NE(text.str().find("\nvaried,last,3,0,0,0,0,"), std::string::npos) << text.str();
  fs::remove_all(dir);
}

// Issue 9 (6) end to end: a real regression study (PMLB 537_houses, BUTTER's rectangle
// net) with three distinct final hashes never reports a zero spread without saying so, and
// reports the test loss spread.
TEST(Report, RegressionStudyOn537Houses) {
  const std::string data = std::string(DETDL_SHARED_DIR) + "/data";
  if (!fs::exists(data + "/pmlb/537_houses")) GTEST_SKIP() << "no " << data << "/pmlb/537_houses";
  const fs::path dir = fresh_dir("houses");
  std::ofstream(dir / "houses.toml")
      << "name = \"houses\"\nrepetitions = 3\n[experiment]\ndata = \"537_houses\"\n"
         "data_dir = \""
      << data
      << "\"\nnet = \"butter:rectangle:2:64\"\nepochs = 2\n"
         "batch_size = 256\n[[setting]]\nname = \"varied\"\nvary = [\"all\"]\n";
  const std::string store = (dir / "houses.sqlite").string();
  auto r = run("study run " + (dir / "houses.toml").string() + " --store " + store + " --quiet");
  ASSERT_EQ(r.status, 0) << r.output;
  r = run("study table " + store);
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* crit : {"best_loss", "best_acc", "last"}) {
    const std::string loss = line_of(
        r.output, std::string("selection ") + crit + ", regression settings (test loss", "varied");
    std::istringstream fields(loss);
    std::string setting, n, mean, min, max;
    fields >> setting >> n >> mean >> min >> max;
    EXPECT_EQ(n, "3") << loss;
    EXPECT_LT(std::stod(min), std::stod(max)) << loss;             // three weights, three losses
    EXPECT_NE(loss.find("       3 "), std::string::npos) << loss;  // three hashes
    // The accuracy line: a spread, or the words that say there is none.
    const std::string acc =
        line_of(r.output, std::string("selection ") + crit + " (test accuracy", "varied");
    std::istringstream af(acc);
    std::string a_setting, a_n, a_mean, a_min, a_max;
    af >> a_setting >> a_n >> a_mean >> a_min >> a_max;
    if (a_min == a_max)
      EXPECT_NE(acc.find("hashes differ, metric identical"), std::string::npos) << acc;
  }
  const auto rep = run("report " + store + " --out " + (dir / "out").string());
  ASSERT_EQ(rep.status, 0) << rep.output;
  EXPECT_GT(fs::file_size(dir / "out" / "loss_spread.png"), 1000u);
  fs::remove_all(dir);
}

// Divergent training: runs with null (NaN) losses are counted per setting, left out of the
// statistics (with the count), and nothing crashes or reads NaN as 0.
TEST(Report, DivergedRunsAreCountedAndLeftOut) {
  const fs::path dir = fresh_dir("diverged");
  const std::string store = (dir / "d.sqlite").string();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  {
    detdl::variance::Store s(store);
    s.put_study("d", json::object());
    ASSERT_TRUE(
        s.put_run("a0", "d", "lr-high", 0, record_of("multiclass", {0.5, 0.4}, 0.90, "a", false)));
    ASSERT_TRUE(
        s.put_run("a1", "d", "lr-high", 1, record_of("multiclass", {0.5, 0.3}, 0.94, "b", false)));
    ASSERT_TRUE(
        s.put_run("a2", "d", "lr-high", 2, record_of("multiclass", {0.6, nan}, 0.10, "c", true)));
  }
  const auto a = detdl::variance::analyze(detdl::variance::Store(store), "d");
  std::ostringstream text;
  detdl::variance::print_analysis(a, text);
  const std::string t = text.str();
  EXPECT_NE(t.find("1 run(s) diverged"), std::string::npos) << t;
  const std::string last = line_of(t, "selection last (test accuracy", "lr-high");
  EXPECT_NE(last.find(" 1/1 "), std::string::npos) << last;    // diverged / left out
  EXPECT_NE(last.find(" 90.00 "), std::string::npos) << last;  // min over the finite runs
  EXPECT_EQ(last.find("10.00"), std::string::npos) << last;    // the diverged run's accuracy is out
  EXPECT_EQ(last.find("nan"), std::string::npos) << last;
  EXPECT_NE(line_of(t, "selection best_loss (test accuracy", "lr-high").find(" 1/0 "),
            std::string::npos)
      << t;
  EXPECT_NE(line_of(t, "spread by what each setting varies", "lr-high").find("1 run(s) left out"),
            std::string::npos)
      << t;
  const auto r = run("report " + store + " --out " + (dir / "out").string());
  ASSERT_EQ(r.status, 0) << r.output;
  fs::remove_all(dir);
}

// Issue 9 (13): every class has a tick centred on its bars; epoch and step axes have
// integer ticks (checked on the figures' axes by a Python unittest).
TEST(Report, PictureTicks) {
  const std::string src = DETDL_SOURCE_DIR;
  const std::string cmd = (fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3") +
                          std::string(" ") + src + "/tests/variance/report_ticks_test.py " + src +
                          "/tools/report.py 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int st = pclose(p);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out;
  EXPECT_NE(out.find("Ran 3 tests"), std::string::npos) << out;
}

}  // namespace
