// `detdl study table` and `detdl report` on a small study: the table names every setting,
// the CSVs have their rows, the pictures and the HTML page are written; bad input is named.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace {
namespace fs = std::filesystem;

struct Result {
  int status = -1;
  std::string output;
};

Result run(const std::string& args) {
  const std::string cmd = std::string(DETDL_BINARY_DIR) + "/detdl " + args + " 2>&1";
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) r.output.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

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
