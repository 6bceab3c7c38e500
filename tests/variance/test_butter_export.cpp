// tools/butter_export.py: a BUTTER study's summary in BUTTER's summary schema, as CSV (the
// standard library) and as Hive-partitioned Parquet read back by pandas (when
// scripts/setup-parquet.sh has installed pyarrow and pandas into .venv-parquet; skipped
// otherwise). tests/variance/butter_export_check.py compares every statistic with the
// butter_summary.csv of `detdl study table`.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/cli_run.h"

namespace {
namespace fs = std::filesystem;
using detdl::test_util::run_detdl;

std::string python() { return fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3"; }

int sh(const std::string& cmd) {
  const int st = std::system((cmd + " > /dev/null 2>&1").c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

class ButterExport : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("detdl_butter_export_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "s.toml")
        << "name = \"export\"\nrepetitions = 3\n[experiment]\npreset = \"butter\"\nepochs = 4\n"
           "data_dir = \"" DETDL_SHARED_DIR
           "/data\"\n[grid]\n\"butter.shape\" = [\"rectangle\"]\n"
           "\"butter.depth\" = [3]\n\"butter.size\" = [256, 512]\n[[setting]]\nname = \"v\"\n"
           "vary = [\"all\"]\n[[setting]]\nname = \"l2\"\nvary = [\"all\"]\n[setting.experiment]\n"
           "l2 = 0.01\n";
    const auto run = run_detdl("study run " + (dir_ / "s.toml").string() + " --store " +
                               (dir_ / "s.sqlite").string() + " --quiet --no-step-hashes");
    ASSERT_EQ(run.status, 0) << run.output;
    const auto table = run_detdl("study table " + (dir_ / "s.sqlite").string() + " --out " +
                                 (dir_ / "t").string());
    ASSERT_EQ(table.status, 0) << table.output;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static std::string exporter(const std::string& py, const std::string& out, const char* format) {
    return py + " " DETDL_SOURCE_DIR "/tools/butter_export.py --store " +
           (dir_ / "s.sqlite").string() + " --summary " + (dir_ / "t/butter_summary.csv").string() +
           " --out " + out + " --format " + format;
  }
  static std::string check(const std::string& py, const std::string& out, const char* format) {
    return py + " " DETDL_SOURCE_DIR "/tests/variance/butter_export_check.py " + format + " " +
           out + " " + (dir_ / "t/butter_summary.csv").string() + " 4 4";
  }
  static fs::path dir_;
};
fs::path ButterExport::dir_;

TEST_F(ButterExport, CsvFormHasEveryStatisticOfTheSummary) {
  const std::string out = (dir_ / "summary.csv").string();
  ASSERT_EQ(sh(exporter(python(), out, "csv")), 0);
  EXPECT_EQ(sh(check(python(), out, "csv")), 0) << check(python(), out, "csv");
}

TEST_F(ButterExport, ParquetPartitionedAsButterReadsBackInPandas) {
  const std::string py = DETDL_SOURCE_DIR "/.venv-parquet/bin/python";
  if (!fs::exists(py) || sh(py + " -c 'import pyarrow, pandas'") != 0)
    GTEST_SKIP() << "no .venv-parquet with pyarrow and pandas (scripts/setup-parquet.sh)";
  const std::string out = (dir_ / "parquet").string();
  ASSERT_EQ(sh(exporter(py, out, "parquet")), 0) << exporter(py, out, "parquet");
  EXPECT_EQ(sh(check(py, out, "parquet")), 0) << check(py, out, "parquet");
  // The L2 setting's partition says so.
  EXPECT_TRUE(fs::exists(out + "/dataset=wine_quality_white/shape=rectangle/learning_rate=0.0001/"
                               "batch_size=256/kernel_regularizer=L2"));
}

TEST_F(ButterExport, BadInputIsRefusedByName) {
  const std::string out = (dir_ / "never.csv").string();
  const std::string bad = python() + " " DETDL_SOURCE_DIR "/tools/butter_export.py --store " +
                          (dir_ / "s.toml").string() + " --summary " +
                          (dir_ / "t/butter_summary.csv").string() + " --out " + out +
                          " --format csv";
  EXPECT_NE(sh(bad), 0);
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
