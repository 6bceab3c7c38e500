// The doctor's repairs (doctor/repair.h) and benchmark (doctor/bench.h): AutoTrainer's
// solution lists and the rules of each solution (its values, its "already used" skip, its
// seeded draws), a repair loop that repairs a slow run and repeats bit for bit, and a small
// benchmark whose summary agrees with its case results and which resumes.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "doctor/bench.h"
#include "doctor/repair.h"

namespace detdl::doctor {
namespace {

nets::Experiment blobs(float lr) {
  nets::Experiment e;
  e.net = "dense:2:16";
  e.data = "blobs";
  e.epochs = 10;
  e.batch_size = 64;
  e.optimizer.kind = OptimizerConfig::Kind::sgd;
  e.optimizer.momentum = 0.0f;
  e.schedule.base_lr = lr;
  return e;
}

std::string names(const std::vector<Solution>& v) {
  std::string s;
  for (const auto& x : v) s += x.name + "_" + std::to_string(x.tries) + " ";
  return s;
}

TEST(Repair, SolutionListsAreAutoTrainersBalanceLists) {
  EXPECT_EQ(names(solutions_for(Problem::vanishing_gradient)), "selu_1 relu_1 bn_1 ");
  EXPECT_EQ(names(solutions_for(Problem::exploding_gradient)),
            "selu_1 relu_1 gradient_2 tanh_1 bn_1 ");
  EXPECT_EQ(names(solutions_for(Problem::dying_relu)), "selu_1 bn_1 initial_3 leaky_3 ");
  EXPECT_EQ(names(solutions_for(Problem::oscillating_loss)),
            "adam_1 lr_3 ReduceLR_1 batch_4 momentum_3 GN_1 initial_3 ");
  EXPECT_EQ(names(solutions_for(Problem::slow_convergence)), "optimizer_3 lr_3 initial_3 ");
}

TEST(Repair, EachSolutionChangesWhatAutoTrainerChanges) {
  const nets::Experiment e = blobs(0.05f);
  // lr: SGD's base 0.01, times 10^j for slow convergence, 0.1^j otherwise.
  for (int j = 0; j < 3; ++j) {
    auto up = apply_solution(e, Problem::slow_convergence, "lr", j, 1);
    auto down = apply_solution(e, Problem::oscillating_loss, "lr", j, 1);
    ASSERT_TRUE(up && down);
    EXPECT_FLOAT_EQ(up->experiment.schedule.base_lr, 0.01f * std::pow(10.0f, j));
    EXPECT_FLOAT_EQ(down->experiment.schedule.base_lr, 0.01f * std::pow(0.1f, j));
  }
  nets::Experiment at_001 = e;
  at_001.schedule.base_lr = 0.01f;  // the first try is already in place: skipped
  EXPECT_FALSE(apply_solution(at_001, Problem::slow_convergence, "lr", 0, 1));
  nets::Experiment b100 = e;
  b100.batch_size = 100;
  for (int j = 0; j < 4; ++j) {
    const auto v = apply_solution(b100, Problem::oscillating_loss, "batch", j, 1);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->experiment.batch_size, 32 << j);
  }
  EXPECT_FALSE(apply_solution(e, Problem::oscillating_loss, "batch", 1, 1));  // already 64
  const auto adam = apply_solution(e, Problem::oscillating_loss, "adam", 0, 1);
  ASSERT_TRUE(adam);
  EXPECT_EQ(adam->experiment.optimizer.kind, OptimizerConfig::Kind::adam);
  EXPECT_FLOAT_EQ(adam->experiment.schedule.base_lr, 0.001f);
  EXPECT_FALSE(apply_solution(adam->experiment, Problem::oscillating_loss, "adam", 0, 1));
  const auto selu = apply_solution(e, Problem::vanishing_gradient, "selu", 0, 1);
  EXPECT_EQ(selu->experiment.edits.activation, "selu");
  EXPECT_EQ(selu->experiment.edits.kernel_init, "lecun_uniform");
  EXPECT_EQ(selu->experiment.edits.bias_init, "lecun_uniform");
  EXPECT_EQ(apply_solution(e, Problem::dying_relu, "leaky", 2, 1)->experiment.edits.activation,
            "thresholded_relu");
  EXPECT_TRUE(apply_solution(e, Problem::dying_relu, "bn", 0, 1)->experiment.edits.batch_norm);
  EXPECT_TRUE(
      apply_solution(e, Problem::oscillating_loss, "ReduceLR", 0, 1)->experiment.plateau.on);
  EXPECT_FLOAT_EQ(
      apply_solution(e, Problem::oscillating_loss, "GN", 0, 1)->experiment.edits.input_noise, 0.1f);
  EXPECT_THROW(apply_solution(e, Problem::dying_relu, "prayer", 0, 1), std::invalid_argument);
}

TEST(Repair, RandomChoicesAreSeededAndInAutoTrainersRanges) {
  const nets::Experiment e = blobs(0.05f);
  std::set<float> clips, moms;
  std::set<std::string> inits;
  for (int j = 0; j < 3; ++j)
    for (std::uint64_t seed : {1ull, 2ull, 3ull}) {
      const auto g = apply_solution(e, Problem::exploding_gradient, "gradient", j, seed);
      const float c = g->experiment.optimizer.clip_value;
      EXPECT_GE(c, 9.0f);
      EXPECT_LE(c, 10.0f);
      EXPECT_FLOAT_EQ(c, std::round(c * 100.0f) / 100.0f);  // two decimals
      clips.insert(c);
      const auto m = apply_solution(e, Problem::oscillating_loss, "momentum", j, seed);
      EXPECT_GE(m->experiment.optimizer.momentum, 0.01f);
      EXPECT_LE(m->experiment.optimizer.momentum, 0.9f);
      moms.insert(m->experiment.optimizer.momentum);
      const auto i = apply_solution(e, Problem::dying_relu, "initial", j, seed);
      inits.insert(i->experiment.edits.kernel_init);
      // The same seed and try: the same draw.
      EXPECT_EQ(
          nets::to_json(i->experiment),
          nets::to_json(apply_solution(e, Problem::dying_relu, "initial", j, seed)->experiment));
    }
  EXPECT_GT(clips.size(), 3u);
  EXPECT_GT(moms.size(), 3u);
  EXPECT_GT(inits.size(), 1u);
  nets::Experiment clipped = e;
  clipped.optimizer.clip_value = 5.0f;
  EXPECT_FALSE(apply_solution(clipped, Problem::exploding_gradient, "gradient", 0, 1));
}

TEST(Repair, TheLoopRepairsASlowRunAndRepeatsBitForBit) {
  const nets::Experiment slow = blobs(1e-6f);
  RepairOptions o;
  o.doctor.kind = DoctorKind::autotrainer;
  int runs = 0;
  o.on_run = [&](const RepairTry*, const nets::RunOutput&) { ++runs; };
  const RepairResult r = repair(slow, o);
  ASSERT_TRUE(r.initial);
  EXPECT_EQ(r.initial->problems[0], Problem::slow_convergence);
  ASSERT_TRUE(r.solved) << to_json(r).dump(1);
  ASSERT_FALSE(r.tries.empty());
  EXPECT_EQ(r.tries.back().outcome, "solved");
  EXPECT_EQ(r.tries.front().solution, "optimizer");  // the list's first solution
  EXPECT_GE(r.tries.back().best_held_accuracy, 0.7);
  EXPECT_EQ(runs, static_cast<int>(r.tries.size()) + 1);  // the original, then each try
  const RepairResult again = repair(slow, o);
  ASSERT_EQ(again.tries.size(), r.tries.size());
  for (std::size_t i = 0; i < r.tries.size(); ++i)
    EXPECT_EQ(again.tries[i].weight_hash, r.tries[i].weight_hash);
  // A healthy run: nothing to repair.
  const RepairResult fine = repair(blobs(0.05f), o);
  EXPECT_FALSE(fine.initial);
  EXPECT_TRUE(fine.tries.empty());
  // The random baseline: seeded, and it draws from every problem's solutions.
  o.random = true;
  const RepairResult ra = repair(slow, o), rb = repair(slow, o);
  ASSERT_EQ(ra.tries.size(), rb.tries.size());
  for (std::size_t i = 0; i < ra.tries.size(); ++i)
    EXPECT_EQ(ra.tries[i].solution, rb.tries[i].solution);
}

std::filesystem::path temp_dir(const char* tag) {
  auto d = std::filesystem::temp_directory_path() /
           (std::string("detdl_bench_") + tag + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

TEST(Bench, SummaryAgreesWithTheCasesAndTheRunResumes) {
  const auto dir = temp_dir("run");
  const auto file = dir / "b.toml";
  std::ofstream(file) << R"(name = "mini"
theta = 0.7
[experiment]
data = "blobs"
epochs = 8
batch_size = 64
optimizer = { kind = "sgd", momentum = 0.0 }
[[case]]
name = "slow"
expect = "slow_convergence"
experiment = { net = "dense:2:16", schedule = { lr = 1e-6 } }
[[case]]
name = "fine"
expect = "healthy"
experiment = { net = "dense:2:16", schedule = { lr = 0.05 } }
[[case]]
name = "strict"
expect = "healthy"
theta = 0.999
note = "a target no run reaches: every doctor flags it, and the twin fails too"
experiment = { net = "dense:2:16", schedule = { lr = 0.05 } }
)";
  const Bench b = load_bench(file.string());
  ASSERT_EQ(b.cases.size(), 3u);
  std::vector<std::string> log;
  BenchOptions o;
  o.log = [&](const std::string& s) { log.push_back(s); };
  const auto s = run_bench(b, (dir / "out").string(), o);
  const auto& at = s["arms"]["autotrainer"];
  EXPECT_EQ(at["detection"]["slow_convergence"]["as_expected"], 1);
  EXPECT_EQ(at["detection"]["healthy"]["cases"], 2);
  EXPECT_EQ(s["cases"], 3);
  // The strict case's twin fails its target, so its diagnosis is not a false positive; the
  // healthy one is not flagged.
  std::ifstream fine(dir / "out" / "cases" / "fine.json");
  const auto fj = nlohmann::json::parse(fine);
  EXPECT_TRUE(fj["twin"]["reaches"].get<bool>());
  EXPECT_FALSE(fj["detdl"]["detected"].get<bool>());
  EXPECT_EQ(at["false_positives"], 0);
  EXPECT_TRUE(std::filesystem::exists(dir / "out" / "summary.md"));
  EXPECT_TRUE(std::filesystem::exists(dir / "out" / "cases.csv"));
  // The slow case is repaired by every arm that diagnosed it, and the repair counts.
  std::ifstream slow(dir / "out" / "cases" / "slow.json");
  const auto sj = nlohmann::json::parse(slow);
  EXPECT_FALSE(sj["twin"]["reaches"].get<bool>());
  EXPECT_TRUE(sj["autotrainer"]["repair_counts"].get<bool>()) << sj["autotrainer"].dump(1);
  // A second run reads every case back instead of training.
  log.clear();
  const auto s2 = run_bench(b, (dir / "out").string(), o);
  EXPECT_EQ(s2, s);
  ASSERT_EQ(log.size(), 3u);
  for (const auto& line : log) EXPECT_NE(line.find("stored, skipped"), std::string::npos) << line;
  std::filesystem::remove_all(dir);
}

// The shipped benchmark: at least 40 problem configurations and 20 healthy ones, on MNIST,
// Fashion-MNIST and BUTTER's data sets, every expected problem present.
TEST(Bench, ShippedBenchmarkParses) {
  const Bench b = load_bench(std::string(DETDL_SOURCE_DIR) + "/studies/doctor/bench.toml");
  std::map<std::string, int> per;
  std::set<std::string> data;
  for (const auto& c : b.cases) {
    ++per[c.expect];
    data.insert(c.experiment.data);
  }
  int problems = 0;
  for (const auto& [k, n] : per)
    if (k != "healthy") problems += n;
  EXPECT_GE(problems, 40);
  EXPECT_GE(per["healthy"], 20);
  EXPECT_EQ(per.size(), 6u);  // five problems and healthy
  EXPECT_TRUE(data.count("mnist") && data.count("fashion-mnist") &&
              data.count("wine_quality_white"));
}

TEST(Bench, BadFilesAreRefusedByFileAndField) {
  const auto dir = temp_dir("bad");
  auto refused = [&](const std::string& text, const std::string& what) {
    const auto f = dir / "x.toml";
    std::ofstream(f) << text;
    try {
      load_bench(f.string());
    } catch (const std::exception& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(f.string()), std::string::npos) << m;
      EXPECT_NE(m.find(what), std::string::npos) << m;
      return;
    }
    ADD_FAILURE() << "accepted: " << text;
  };
  const std::string head = "name = \"b\"\n";
  refused(head, "no [[case]]");
  refused(head + "colour = 1\n", "colour");
  refused(head + "[[case]]\nname = \"a\"\nexpect = \"sadness\"\n", "expect");
  refused(head + "[[case]]\nname = \"a/b\"\nexpect = \"healthy\"\n", "name");
  refused(head +
              "[[case]]\nname = \"a\"\nexpect = \"healthy\"\n[[case]]\nname = \"a\"\n"
              "expect = \"healthy\"\n",
          "twice");
  refused(head + "[[case]]\nname = \"a\"\nexpect = \"healthy\"\ntheta = 2\n", "theta");
  refused(head + "[[case]]\nname = \"a\"\nexpect = \"healthy\"\nexperiment = { epochs = -1 }\n",
          "epochs");
  refused("name = \"b\"\n[[case]\n", "x.toml");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace detdl::doctor
