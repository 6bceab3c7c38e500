// `detdl train --doctor` and `detdl doctor` as a user runs them: a diagnosis is printed and
// recorded, the record replays to the same diagnosis, a store is read run by run, and bad
// flags and files get errors that name them.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/cli_run.h"

namespace {

using detdl::test_util::run_detdl;

std::filesystem::path temp_dir() {
  auto d = std::filesystem::temp_directory_path() / ("detdl_doctor_" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return d;
}

nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

TEST(DoctorCli, TrainDiagnosesStopsAndRecords) {
  const auto dir = temp_dir();
  const auto rec = dir / "slow.json";
  auto r = run_detdl(
      "train --net mlp --data blobs --epochs 10 --lr 1e-6 --quiet --doctor "
      "autotrainer --record " +
      rec.string() + " --force");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("slow_convergence after epoch 4"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("the run stopped there"), std::string::npos) << r.output;
  const auto j = read_json(rec);
  ASSERT_TRUE(j.contains("doctor"));
  EXPECT_EQ(j["doctor"]["diagnosis"]["problems"][0], "slow_convergence");
  EXPECT_EQ(j["doctor"]["diagnosis"]["epoch"], 4);
  EXPECT_EQ(j["epochs"].size(), 4u);
  EXPECT_TRUE(j["epochs"][3].contains("monitor"));

  // Replayed after the fact: the same diagnosis; detdl's doctor checks every epoch, but
  // this record was probed only at AutoTrainer's epochs.
  r = run_detdl("doctor " + rec.string() + " --kind autotrainer --json");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto replay = nlohmann::json::parse(r.output);
  ASSERT_EQ(replay.size(), 1u);
  EXPECT_EQ(replay[0]["autotrainer"]["problems"][0], "slow_convergence");
  EXPECT_EQ(replay[0]["autotrainer"]["epoch"], 4);
  EXPECT_EQ(replay[0]["probes"], 2);

  // Watching: the run goes to the end with the hash of the run without a doctor.
  const auto plain = run_detdl("train --net mlp --data blobs --epochs 10 --lr 1e-6 --quiet");
  const auto watched = run_detdl(
      "train --net mlp --data blobs --epochs 10 --lr 1e-6 --quiet --doctor detdl --doctor-watch");
  ASSERT_EQ(watched.status, 0) << watched.output;
  const auto hash = [](const std::string& out) {
    const auto p = out.find("weight hash ");
    return p == std::string::npos ? std::string() : out.substr(p + 12, 16);
  };
  EXPECT_FALSE(hash(plain.output).empty()) << plain.output;
  EXPECT_EQ(hash(plain.output), hash(watched.output)) << watched.output;
  EXPECT_NE(watched.output.find("watching"), std::string::npos) << watched.output;
  std::filesystem::remove_all(dir);
}

// `study run --monitor N` stores the probes in each record; `detdl report` exports them
// (monitor.csv: one row per run, probed epoch and layer) and draws monitor.png; `detdl
// doctor` then sees the probes.
TEST(DoctorCli, StudyMonitorIsExportedAndDrawn) {
  const auto dir = temp_dir();
  const auto study = dir / "m.toml";
  std::ofstream(study) << "name = \"mon\"\nrepetitions = 2\n[experiment]\nnet = \"dense:2:8\"\n"
                          "data = \"blobs\"\nepochs = 4\n[[setting]]\nname = \"a\"\n"
                          "vary = [\"init\"]\n";
  const auto store = dir / "m.sqlite";
  auto r = run_detdl("study run " + study.string() + " --store " + store.string() +
                     " --quiet --monitor 2");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto out = dir / "report";
  r = run_detdl("report " + store.string() + " --out " + out.string());
  ASSERT_EQ(r.status, 0) << r.output;
  std::ifstream csv(out / "monitor.csv");
  ASSERT_TRUE(csv) << r.output;
  std::string line;
  int rows = 0;
  std::getline(csv, line);
  EXPECT_EQ(line,
            "setting,repetition,epoch,kind,name,grad_norm,weight_norm,update_ratio,zero_grad,dead");
  while (std::getline(csv, line)) ++rows;
  // 2 runs x epochs 1 and 3 x (6 parameters + 2 activation layers).
  EXPECT_EQ(rows, 2 * 2 * (6 + 2));
  EXPECT_TRUE(std::filesystem::exists(out / "monitor.png")) << r.output;
  r = run_detdl("doctor " + store.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("4 epochs, 2 probed"), std::string::npos) << r.output;
  std::filesystem::remove_all(dir);
}

// Every run of a store is diagnosed and judged by its twin: a stored run that trained to
// the end is the undoctored twin of the run a doctor would have stopped, so its best
// held-out accuracy says whether a diagnosis was a false positive; then the verdicts per
// setting.
TEST(DoctorCli, ReadsEveryRunOfAStoreAndJudgesItsTwin) {
  const auto dir = temp_dir();
  const auto study = dir / "s.toml";
  std::ofstream(study) << "name = \"doc\"\nrepetitions = 2\n[experiment]\nnet = \"mlp:16\"\n"
                          "data = \"blobs\"\nepochs = 4\n[[setting]]\nname = \"slow\"\n"
                          "vary = [\"init\"]\n[setting.experiment]\nschedule = { lr = 1e-7 }\n"
                          "[[setting]]\nname = \"healthy\"\nvary = [\"init\"]\n";
  const auto store = dir / "s.sqlite";
  auto r = run_detdl("study run " + study.string() + " --store " + store.string() + " --quiet");
  ASSERT_EQ(r.status, 0) << r.output;
  r = run_detdl("doctor " + store.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("doc/slow/0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("doc/slow/1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no probes"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("slow_convergence"), std::string::npos) << r.output;
  // At theta 0.7 the slow runs' twins end under it (the diagnoses stand), the healthy ones
  // reach it without a diagnosis: 2 confirmed per doctor, 2 healthy.
  EXPECT_NE(r.output.find("doc/slow                         autotrainer      2         2"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("doc/healthy                      detdl            2         0"),
            std::string::npos)
      << r.output;
  // At theta 0.1 the slow runs reach the target, and their slow-convergence diagnoses
  // (accuracy flat over the epochs) become false positives by their twins.
  r = run_detdl("doctor " + store.string() + " --theta 0.1 --json");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto runs = nlohmann::json::parse(r.output);
  int checked = 0;
  for (const auto& row : runs) {
    if (row["run"].get<std::string>().rfind("doc/slow/", 0) != 0) continue;
    EXPECT_GE(row["twin_best_held"].get<double>(), 0.1) << row.dump();
    EXPECT_EQ(row["detdl_verdict"], "false_positive") << row.dump();
    EXPECT_EQ(row["autotrainer_verdict"], "false_positive") << row.dump();
    ++checked;
  }
  EXPECT_EQ(checked, 2);
  std::filesystem::remove_all(dir);
}

// A record cut short at a diagnosis is no twin: its verdict says so.
TEST(DoctorCli, AStoppedRecordHasNoTwin) {
  const auto dir = temp_dir();
  const auto rec = dir / "stopped.json";
  auto r = run_detdl(
      "train --net mlp --data blobs --epochs 10 --lr 1e-6 --quiet --doctor detdl "
      "--record " +
      rec.string() + " --force");
  ASSERT_EQ(r.status, 0) << r.output;
  r = run_detdl("doctor " + rec.string() + " --json");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto row = nlohmann::json::parse(r.output).at(0);
  EXPECT_TRUE(row["twin_best_held"].is_null()) << row.dump();
  EXPECT_EQ(row["detdl_verdict"], "no_twin") << row.dump();
  std::filesystem::remove_all(dir);
}

TEST(DoctorCli, RepairLoopAndBenchFromTheCommandLine) {
  const auto dir = temp_dir();
  const auto rec = dir / "repaired.json";
  auto r = run_detdl(
      "train --net dense:2:16 --data blobs --epochs 10 --lr 1e-6 --momentum 0 "
      "--doctor autotrainer --repair --record " +
      rec.string() + " --force");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("original: slow_convergence after epoch 4"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("repaired in"), std::string::npos) << r.output;
  const auto j = read_json(rec);
  EXPECT_TRUE(j["repair"]["solved"].get<bool>());
  EXPECT_TRUE(j["doctor"]["diagnosis"].is_null());  // the record is the solving run's
  r = run_detdl("train --net mlp --data blobs --epochs 1 --repair");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--repair needs --doctor"), std::string::npos) << r.output;
  const auto bench = dir / "b.toml";
  std::ofstream(bench) << "name = \"b\"\n[experiment]\ndata = \"blobs\"\nepochs = 4\n"
                          "[[case]]\nname = \"ok\"\nexpect = \"healthy\"\n"
                          "experiment = { net = \"dense:2:8\" }\n";
  r = run_detdl("doctor-bench " + bench.string() + " --out " + (dir / "out").string() +
                " --quiet --no-repairs --arm detdl");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("| healthy: flagged | 0/1 (0%) |"), std::string::npos) << r.output;
  r = run_detdl("doctor-bench " + (dir / "none.toml").string() + " --out " +
                (dir / "out").string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("none.toml"), std::string::npos) << r.output;
  r = run_detdl("doctor-bench " + bench.string() + " --out " + (dir / "out").string() +
                " --arm nurse");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("nurse"), std::string::npos) << r.output;
  std::filesystem::remove_all(dir);
}

TEST(DoctorCli, BadFlagsAndFilesNameThemselves) {
  const auto dir = temp_dir();
  auto r = run_detdl("train --net mlp --data blobs --epochs 1 --doctor nurse");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--doctor"), std::string::npos) << r.output;
  r = run_detdl("train --net mlp --data blobs --epochs 1 --doctor-watch");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--doctor-watch"), std::string::npos) << r.output;
  r = run_detdl("train --net mlp --data blobs --epochs 1 --doctor detdl --doctor-theta nan");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--doctor-theta"), std::string::npos) << r.output;
  r = run_detdl("train --net mlp --data blobs --epochs 1 --monitor 0");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--monitor"), std::string::npos) << r.output;
  const auto missing = dir / "missing.json";
  r = run_detdl("doctor " + missing.string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find(missing.string()), std::string::npos) << r.output;
  const auto truncated = dir / "cut.json";
  std::ofstream(truncated) << "{\"epochs\": [{\"epoch\": 1, \"train\": {\"loss\"";
  r = run_detdl("doctor " + truncated.string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find(truncated.string()), std::string::npos) << r.output;
  const auto empty = dir / "empty.json";
  std::ofstream(empty) << "{\"epochs\": []}";
  r = run_detdl("doctor " + empty.string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("no epochs"), std::string::npos) << r.output;
  const auto bad_monitor = dir / "bad_monitor.json";
  std::ofstream(bad_monitor)
      << "{\"epochs\": [{\"epoch\": 1, \"train\": {\"loss\": 1, \"accuracy\": 0.5}, "
         "\"monitor\": {\"rows\": 4}}]}";
  r = run_detdl("doctor " + bad_monitor.string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("monitor"), std::string::npos) << r.output;
  r = run_detdl("doctor " + empty.string() + " --kind nurse");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--kind"), std::string::npos) << r.output;
  std::filesystem::remove_all(dir);
}

}  // namespace
