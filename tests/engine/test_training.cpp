// End-to-end determinism of training runs: an MLP and a small CNN on generated data.
//   portable: the same weight hash on 1, 2 and 4 threads and on repeated runs;
//   fast: different bits when the dynamic work assignment differs (forced here, because
//         whether two real runs interleave differently is up to the OS scheduler);
//   checkpoints: a run stopped after step k and resumed equals one never stopped.
#include <gtest/gtest.h>

#include <cmath>

#include <filesystem>
#include <set>
#include <unistd.h>
#include <algorithm>

#include "engine/train.h"
#include "kernels/cpu/parallel.h"
#include "nets/simple.h"
#include "nets/synthetic.h"

using namespace detdl;
namespace fs = std::filesystem;

namespace {

struct RunSetup {
  std::shared_ptr<Module> model;
  Dataset train, test;
  TrainConfig cfg;
};

RunSetup mlp_setup(float dropout = 0.25f) {
  RunSetup s;
  const Dataset all = nets::make_blobs(400 + 100, 16, 4, 1.5f, 7);
  s.train = slice_rows(all, 0, 400);
  s.test = slice_rows(all, 400, 500);
  s.model = nets::make_mlp(16, 32, 4, dropout);
  s.cfg.epochs = 2;
  s.cfg.batch_size = 300;  // > 256: the batch reductions span two value chunks
  s.cfg.optimizer.kind = OptimizerConfig::Kind::sgd;
  s.cfg.optimizer.momentum = 0.9f;
  s.cfg.optimizer.nesterov = true;
  s.cfg.schedule.base_lr = 0.05f;
  s.cfg.l2 = 1e-4f;
  return s;
}

RunSetup cnn_setup() {
  RunSetup s;
  const Dataset all = nets::make_bar_images(96 + 32, 1, 12, 6, 3);
  s.train = slice_rows(all, 0, 96);
  s.test = slice_rows(all, 96, 128);
  s.model = nets::make_small_cnn(1, 6);
  s.cfg.epochs = 1;
  s.cfg.batch_size = 32;
  s.cfg.optimizer.kind = OptimizerConfig::Kind::adam;
  s.cfg.schedule.base_lr = 1e-3f;
  return s;
}

std::string run(RunSetup s, int threads, Level level = Level::portable) {
  s.cfg.threads = threads;
  s.cfg.context.set_level(level);
  Trainer t(*s.model, s.cfg);
  return t.fit(s.train, &s.test).weight_hash;
}

fs::path temp_dir() {
  fs::path d = fs::temp_directory_path() / ("detdl_train_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

}  // namespace

TEST(TrainingDeterminism, MlpPortableSameHashOnAnyThreadCountAndRerun) {
  const std::string h1 = run(mlp_setup(), 1);
  EXPECT_EQ(h1.size(), 16u);
  EXPECT_EQ(run(mlp_setup(), 2), h1);
  EXPECT_EQ(run(mlp_setup(), 4), h1);
  EXPECT_EQ(run(mlp_setup(), 1), h1);
  cpu::set_num_threads(1);
}

TEST(TrainingDeterminism, CnnPortableSameHashOnAnyThreadCountAndRerun) {
  const std::string h1 = run(cnn_setup(), 1);
  EXPECT_EQ(run(cnn_setup(), 2), h1);
  EXPECT_EQ(run(cnn_setup(), 4), h1);
  EXPECT_EQ(run(cnn_setup(), 1), h1);
  cpu::set_num_threads(1);
}

TEST(TrainingDeterminism, SeedsChangeTheResult) {
  const std::string h = run(mlp_setup(), 1);
  RunSetup s = mlp_setup();
  s.cfg.init_seed = 2;
  EXPECT_NE(run(s, 1), h);
  s = mlp_setup();
  s.cfg.order_seed = 2;
  EXPECT_NE(run(s, 1), h);
  s = mlp_setup();
  s.cfg.dropout_seed = 2;
  EXPECT_NE(run(s, 1), h);
}

TEST(TrainingDeterminism, FastDependsOnTheInterleaving) {
  // Two forced assignments of work pieces to 2 threads stand for two runs whose threads
  // happened to interleave differently: the weights must differ.
  std::set<std::string> hashes;
  for (const std::vector<int>& assignment :
       {std::vector<int>{0, 1}, std::vector<int>{0, 0, 1}, std::vector<int>{1, 0, 0, 1, 1}}) {
    cpu::set_dynamic_assignment_for_testing(assignment);
    hashes.insert(run(mlp_setup(), 2, Level::fast));
  }
  cpu::set_dynamic_assignment_for_testing({});
  EXPECT_GE(hashes.size(), 2u) << "fast training gave the same bits under different interleavings";
  // and fast on one thread is still a deterministic function of its inputs
  EXPECT_EQ(run(mlp_setup(), 1, Level::fast), run(mlp_setup(), 1, Level::fast));
  cpu::set_num_threads(1);
}

TEST(TrainingDeterminism, FastStaysClose) {
  // Variance on purpose, not a wrong answer: fast's final test loss is near portable's.
  RunSetup a = mlp_setup(0.0f), b = mlp_setup(0.0f);
  a.cfg.threads = 1;
  b.cfg.threads = 2;
  b.cfg.context.set_level(Level::fast);
  Trainer ta(*a.model, a.cfg), tb(*b.model, b.cfg);
  const auto ra = ta.fit(a.train, &a.test), rb = tb.fit(b.train, &b.test);
  EXPECT_NEAR(ra.epochs.back().test_loss, rb.epochs.back().test_loss, 1e-3);
  cpu::set_num_threads(1);
}

class Resume : public ::testing::TestWithParam<int> {};

TEST_P(Resume, StopAfterStepKAndResumeGivesTheSameBits) {
  const int k = GetParam();
  for (bool cnn : {false, true}) {
    RunSetup full = cnn ? cnn_setup() : mlp_setup();
    full.cfg.epochs = 2;
    Trainer tf(*full.model, full.cfg);
    const TrainResult rf = tf.fit(full.train, &full.test);
    const std::string want = rf.weight_hash;

    const fs::path ckpt =
        temp_dir() / ("resume_" + std::to_string(k) + (cnn ? "_cnn" : "_mlp") + ".safetensors");
    fs::remove(ckpt);
    RunSetup first = cnn ? cnn_setup() : mlp_setup();
    first.cfg.epochs = 2;
    first.cfg.checkpoint_path = ckpt.string();
    first.cfg.stop_after_steps = k;
    Trainer t1(*first.model, first.cfg);
    const auto r1 = t1.fit(first.train, &first.test);
    ASSERT_TRUE(r1.stopped_early);
    ASSERT_EQ(r1.steps, k);
    ASSERT_TRUE(fs::exists(ckpt));

    RunSetup second = cnn ? cnn_setup() : mlp_setup();  // a fresh process would start like this
    second.cfg.epochs = 2;
    second.cfg.checkpoint_path = ckpt.string();
    second.cfg.threads = 2;  // resuming on another thread count changes nothing
    Trainer t2(*second.model, second.cfg);
    const auto r2 = t2.fit(second.train, &second.test, /*resume=*/true);
    EXPECT_FALSE(r2.stopped_early);
    EXPECT_EQ(r2.weight_hash, want) << (cnn ? "cnn" : "mlp") << " stopped after step " << k;
    // The epoch series too: the train loss and the BUTTER metrics of the interrupted epoch
    // come out bit for bit as in the run never stopped.
    ASSERT_FALSE(r2.epochs.empty());
    const EpochStats& a = r2.epochs.back();
    const EpochStats& b = rf.epochs.back();
    EXPECT_EQ(a.train_loss, b.train_loss);
    EXPECT_EQ(a.train_accuracy, b.train_accuracy);
    for (int m = 0; m < kMetricCount; ++m)
      EXPECT_TRUE(a.train_metrics[m] == b.train_metrics[m] ||
                  (std::isnan(a.train_metrics[m]) && std::isnan(b.train_metrics[m])))
          << metric_name(static_cast<Metric>(m));
    EXPECT_EQ(a.test.metrics, b.test.metrics);
    cpu::set_num_threads(1);
  }
}

// Step 1: inside the first epoch (MLP: 2 steps per epoch; CNN: 3); step 2: at an epoch edge
// for the MLP and inside for the CNN; step 3: inside epoch 2 for the MLP.
INSTANTIATE_TEST_SUITE_P(Steps, Resume, ::testing::Values(1, 2, 3));

TEST(Checkpointing, ResumeRefusesACheckpointOfAnotherRun) {
  const fs::path ckpt = temp_dir() / "other.safetensors";
  fs::remove(ckpt);
  RunSetup a = mlp_setup();
  a.cfg.checkpoint_path = ckpt.string();
  a.cfg.stop_after_steps = 1;
  Trainer(*a.model, a.cfg).fit(a.train, &a.test);
  RunSetup b = mlp_setup();
  b.cfg.checkpoint_path = ckpt.string();
  b.cfg.init_seed = 99;
  Trainer tb(*b.model, b.cfg);
  EXPECT_THROW(tb.fit(b.train, &b.test, true), std::runtime_error);
  RunSetup c = mlp_setup();
  c.model = nets::make_mlp(16, 8, 4);  // other shapes
  c.cfg.checkpoint_path = ckpt.string();
  Trainer tc(*c.model, c.cfg);
  EXPECT_THROW(tc.fit(c.train, &c.test, true), std::runtime_error);
}

TEST(Training, LossFallsAndAccuracyRises) {
  RunSetup s = mlp_setup(0.0f);
  s.cfg.epochs = 5;
  s.cfg.batch_size = 32;
  Trainer t(*s.model, s.cfg);
  const auto r = t.fit(s.train, &s.test);
  ASSERT_EQ(r.epochs.size(), 5u);
  EXPECT_LT(r.epochs.back().train_loss, 0.5f * r.epochs.front().train_loss);
  EXPECT_GT(r.epochs.back().test_accuracy, 0.8f);
}

// Keras's reported losses: the training loss weights each batch by its rows (400 rows in
// batches of 300: 300 + 100) and adds the penalties; test and validation losses add them
// too. With lr = 0 the weights never move, so every reported loss equals an evaluation at
// the initial weights plus lambda * sum(w^2).
TEST(Training, ReportedLossesAreKerasTotalsWeightedByRows) {
  RunSetup s = mlp_setup(0.0f);
  s.cfg.epochs = 1;
  s.cfg.schedule.base_lr = 0.0f;
  s.cfg.l2 = 0.01f;  // large enough to stand out
  s.cfg.optimizer.momentum = 0.0f;
  s.cfg.optimizer.nesterov = false;
  Trainer t(*s.model, s.cfg);
  const auto r = t.fit(s.train, EvalSets{&s.test, &s.test});
  ASSERT_EQ(r.epochs.size(), 1u);
  double penalty = 0;
  for (const auto& p : s.model->parameters())
    if (p.tensor.ndim() >= 2)
      for (std::int64_t i = 0; i < p.tensor.numel(); ++i)
        penalty += double(p.tensor.f32()[i]) * p.tensor.f32()[i];
  penalty *= 0.01;
  ASSERT_GT(penalty, 0.01);
  const auto& ep = r.epochs[0];
  const float train_data = evaluate_full(*s.model, s.train, LossKind::softmax_ce, false).loss;
  const float test_data = evaluate_full(*s.model, s.test, LossKind::softmax_ce, false).loss;
  EXPECT_NEAR(ep.train_loss, train_data + penalty, 1e-5);
  EXPECT_NEAR(ep.test_loss, test_data + penalty, 1e-5);
  EXPECT_NEAR(ep.validation.loss, test_data + penalty, 1e-5);
  // (The unweighted mean of the two batch means, (l_300 + l_100) / 2, differs from this by
  // |l_300 - l_100| / 4, orders of magnitude above the tolerance for these batches.)
}

TEST(Training, EpochPermutationIsAPermutationKeyedBySeedAndEpoch) {
  const auto p = epoch_permutation(1000, 5, 0);
  std::vector<std::int64_t> sorted(p);
  std::sort(sorted.begin(), sorted.end());
  for (std::int64_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[i], i);
  EXPECT_EQ(p, epoch_permutation(1000, 5, 0));
  EXPECT_NE(p, epoch_permutation(1000, 5, 1));
  EXPECT_NE(p, epoch_permutation(1000, 6, 0));
}
