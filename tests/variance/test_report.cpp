// `detdl study table` and `detdl report` on a small study: the table names every setting,
// the CSVs have their rows, the pictures and the HTML page are written; bad input is named.
#include <gtest/gtest.h>

#include "tests/cli_run.h"
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <sstream>

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

TEST(Report, TinyStudyTablesPicturesAndPage) {
  const fs::path dir = fs::temp_directory_path() / ("detdl_report_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string store = (dir / "tiny.sqlite").string();
  const std::string study = std::string(DETDL_SOURCE_DIR) + "/studies/tiny.toml";
  auto r = run("study run " + study + " --store " + store + " --jobs 2 --quiet");
  ASSERT_EQ(r.status, 0) << r.output;
  r = run("study table " + store);
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* s : {"fixed-portable", "fixed-fast", "varied-portable", "varied-order", "best_loss", "best_acc"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s << "\n" << r.output;
  // fixed seeds + portable: one hash, bit-identical.
  const auto line = r.output.substr(r.output.find("fixed-portable", r.output.find("implementation-only")));
  EXPECT_NE(line.substr(0, line.find('\n')).find("yes"), std::string::npos) << line;

  const fs::path out = dir / "report";
  r = run("report " + store + " --out " + out.string());
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* f : {"analysis_result.csv", "analysis_raw.csv", "comparisons.csv", "butter_summary.csv",
                        "implementation_spread.csv", "divergence.csv", "accuracy_spread.png", "class_spread.png",
                        "loss_curves.png", "divergence.png", "index.html"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  EXPECT_EQ(lines(out / "analysis_result.csv"), 1u + 4 * 3);  // header + settings x criteria
  EXPECT_EQ(lines(out / "analysis_raw.csv"), 1u + 12 * 3);    // header + runs x criteria
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
  auto r = run("study plan --name f --repetitions 2 --set net=mlp:8 --set epochs=2 --setting name=a "
               "--setting name=b,level=fast,threads=2,vary=init+order");
  ASSERT_EQ(r.status, 0) << r.output;
  const fs::path dir = fs::temp_directory_path() / ("detdl_flags_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "f.toml") << "name = \"f\"\nrepetitions = 2\n[experiment]\nnet = \"mlp:8\"\nepochs = 2\n"
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
