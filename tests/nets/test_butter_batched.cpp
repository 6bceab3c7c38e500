// Repetitions trained together (nets/butter_batched.h, run_experiments_batched): every
// repetition's bits and record are those of training it alone (in both step orders), for every BUTTER shape (the
// residual one included), each loss (softmax cross-entropy in both forms, binary
// cross-entropy, MSE), with and without the metrics, each
// optimizer, with and without label noise and L1/L2 penalties, with repetitions that differ
// in every seed (their own splits and noisy labels).
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "kernels/cpu/lanes.h"
#include "nets/experiment.h"
#include "tests/nets/butter_experiments.h"

namespace detdl::nets {
namespace {

using test_butter::butter;
using test_butter::repetitions;

// The record without what only says when and how long (and that it was batched).
nlohmann::json without_times(nlohmann::json r) {
  r.erase("timings");
  r.erase("started_at");
  r.erase("batched");
  for (auto& ep : r["epochs"])
    for (const char* k : {"seconds", "train_seconds", "validation_seconds", "test_seconds"})
      ep.erase(k);
  return r;
}

void expect_same_as_alone(const std::vector<Experiment>& es) {
  RunOptions ro;
  ro.step_hashes = true;
  ro.epoch_predictions = true;
  ro.keep_weights_up_to = 1'000'000;
  const std::vector<RunOutput> together = run_experiments_batched(es, ro);  // by lanes
  const std::vector<RunOutput> by_layer = run_experiments_batched(es, ro, BatchOrder::by_layer);
  const std::vector<RunOutput> by_rep = run_experiments_batched(es, ro, BatchOrder::by_repetition);
  ASSERT_EQ(together.size(), es.size());
  ASSERT_EQ(by_layer.size(), es.size());
  ASSERT_EQ(by_rep.size(), es.size());
  std::set<std::string> hashes;
  for (std::size_t i = 0; i < es.size(); ++i) {
    EXPECT_EQ(without_times(by_layer[i].record), without_times(together[i].record));
    EXPECT_EQ(without_times(by_rep[i].record), without_times(together[i].record));
    SCOPED_TRACE("repetition " + std::to_string(i) + " of " + es[i].net + " on " + es[i].data);
    const RunOutput alone = run_experiment(es[i], ro);
    EXPECT_EQ(together[i].result.weight_hash, alone.result.weight_hash);
    EXPECT_EQ(together[i].result.step_hashes, alone.result.step_hashes);
    EXPECT_EQ(together[i].final_weights, alone.final_weights);
    EXPECT_EQ(without_times(together[i].record), without_times(alone.record));
    EXPECT_EQ(together[i].record["batched"]["repetitions"], es.size());
    EXPECT_EQ(together[i].record["batched"]["index"], i);
    hashes.insert(alone.result.weight_hash);
  }
  EXPECT_EQ(hashes.size(), es.size());  // the repetitions are different runs
}

class EveryShape : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryShape, EachRepetitionIsItsRunAloneWithAndWithoutLabelNoise) {
  Experiment e = butter("wine_quality_white", GetParam(), 4, 1024);  // softmax CE, 7 classes
  expect_same_as_alone(repetitions(e, 3));
  e.label_noise = 0.1;
  expect_same_as_alone(repetitions(e, 3));
}

INSTANTIATE_TEST_SUITE_P(ButterBatched, EveryShape,
                         ::testing::Values("rectangle", "trapezoid", "exponential", "wide_first_2x",
                                           "wide_first_16x", "rectangle_residual"));

// Keras's clipped cross-entropy (the lanes' loss kernel has both forms), with a rate high
// enough to push rows outside the clip; and a run without the metrics.
TEST(ButterBatched, KerasCrossEntropyAndNoMetrics) {
  Experiment e = butter("wine_quality_white", "rectangle", 3, 1024);
  e.loss = "keras_ce";
  e.schedule.base_lr = 0.05f;
  expect_same_as_alone(repetitions(e, 3));
  e.loss = "softmax_ce";
  e.metrics = false;
  expect_same_as_alone(repetitions(e, 2));
}

// A test set of more rows than one evaluation batch (kEvalBatch = 1,000): the lanes score it
// in evaluate_full's batches, each batch's loss weighted by its rows.
TEST(ButterBatched, TestSetOfSeveralEvaluationBatches) {
  Experiment e = butter("synthetic-mnist:5500", "rectangle", 3, 2048);  // 1,100 test rows
  e.epochs = 1;
  expect_same_as_alone(repetitions(e, 3));
}

TEST(ButterBatched, BinaryCrossEntropyWithPenalties) {
  Experiment e = butter("banana", "rectangle_residual", 5, 2048);  // one sigmoid output
  e.l1 = 1e-4f;
  e.l2 = 1e-3f;
  expect_same_as_alone(repetitions(e, 3));
  e.l1 = 0.0f;  // each penalty alone takes another path through the gradient
  expect_same_as_alone(repetitions(e, 2));
  e.l1 = 1e-4f;
  e.l2 = 0.0f;
  expect_same_as_alone(repetitions(e, 2));
}

TEST(ButterBatched, RegressionWithSgdAndRmsprop) {
  Experiment e = butter("537_houses", "trapezoid", 3, 512);  // MSE on a sigmoid output
  e.optimizer = OptimizerConfig{};
  e.optimizer.momentum = 0.9f;
  e.schedule.base_lr = 0.01f;
  e.label_noise = 0.05;
  expect_same_as_alone(repetitions(e, 2));
  e.optimizer.kind = OptimizerConfig::Kind::rmsprop;
  e.optimizer.momentum = 0.0f;
  e.schedule.base_lr = 1e-3f;
  expect_same_as_alone(repetitions(e, 2));
}

// Images go in flattened (BUTTER's pixel columns); a short last batch; more repetitions
// than threads and fewer; one thread; more repetitions than one lane group holds.
TEST(ButterBatched, FlattenedImagesAndThreadCounts) {
  Experiment e = butter("synthetic-mnist:700", "wide_first_4x", 3, 4096);
  e.batch_size = 128;  // 560 training rows: the last batch has 48
  for (int threads : {1, 3}) {
    e.threads = threads;
    expect_same_as_alone(repetitions(e, 1));
    expect_same_as_alone(repetitions(e, 5));
  }
  expect_same_as_alone(repetitions(e, 10));  // groups of 5 and 5 with AVX2's 8 lanes
}

// The lanes at both widths (AVX2's 8 and, where the CPU has it, AVX-512F's 16): 18
// repetitions are groups of 6, 6, 6 or of 9, 9, and each is its run alone.
TEST(ButterBatched, BothLaneWidthsGiveEachRepetitionItsOwnBits) {
  Experiment e = butter("synthetic-mnist:300", "rectangle_residual", 4, 2048);
  e.batch_size = 64;
  const auto es = repetitions(e, 18);
  RunOptions ro;
  ro.step_hashes = true;
  const std::vector<RunOutput> by_rep = run_experiments_batched(es, ro, BatchOrder::by_repetition);
  cpu::lanes::set_avx512_allowed(false);
  const std::vector<RunOutput> lanes8 = run_experiments_batched(es, ro);
  cpu::lanes::set_avx512_allowed(true);
  const std::vector<RunOutput> lanes_cpu = run_experiments_batched(es, ro);
  for (std::size_t i = 0; i < es.size(); ++i) {
    EXPECT_EQ(without_times(lanes8[i].record), without_times(by_rep[i].record)) << i;
    EXPECT_EQ(without_times(lanes_cpu[i].record), without_times(by_rep[i].record)) << i;
  }
}

// TensorFlow's CPU arithmetic (flush_subnormals): the lanes run on the same pool threads,
// which flush as the run alone does; a batch may not mix the two arithmetics.
TEST(ButterBatched, FlushingSubnormalsTogetherAsAlone) {
  Experiment e = butter("wine_quality_white", "rectangle", 3, 1024);
  e.flush_subnormals = true;
  expect_same_as_alone(repetitions(e, 2));
  auto mixed = repetitions(e, 2);
  mixed[1].flush_subnormals = false;
  EXPECT_NE(batch_refusal(mixed).find("experiment 1 differs"), std::string::npos);
}

TEST(ButterBatched, RefusesWhatItCannotTrainTogether) {
  const Experiment e = butter("wine_quality_white", "rectangle", 3, 1024);
  EXPECT_EQ(batch_refusal(repetitions(e, 3)), "");
  Experiment mlp = e;
  mlp.net = "mlp:16";
  EXPECT_NE(batch_refusal({mlp, mlp}).find("not a BUTTER net"), std::string::npos);
  auto es = repetitions(e, 3);
  es[2].epochs = 3;
  EXPECT_NE(batch_refusal(es).find("experiment 2 differs"), std::string::npos);
  Experiment fast = e;
  fast.level = Level::fast;
  EXPECT_NE(batch_refusal({fast}).find("level fast"), std::string::npos);
  Experiment some_fast = e;
  some_fast.fast_ops = {OpFamily::matmul};
  EXPECT_NE(batch_refusal({some_fast}).find("fast op"), std::string::npos);
  Experiment emulated = e;
  emulated.level = Level::emulated;
  EXPECT_NE(batch_refusal({emulated}).find("emulation"), std::string::npos);
  EXPECT_THROW(run_experiments_batched({fast, fast}), std::invalid_argument);
  RunOptions ro;
  ro.checkpoint_path = "/tmp/never";
  EXPECT_THROW(run_experiments_batched(repetitions(e, 2), ro), std::invalid_argument);
}

}  // namespace
}  // namespace detdl::nets
