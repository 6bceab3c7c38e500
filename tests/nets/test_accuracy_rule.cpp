// The accuracy a run reports (the trainer's count of correct rows) is the accuracy metric's
// rule (engine/metrics.cpp; Keras 2's "accuracy" as BUTTER records it): binary accuracy at
// threshold 0.5 for one output, first maximum against first maximum otherwise. Before,
// one-output regression (mse) always counted 0 correct and printed "acc 0.0000".
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "engine/train.h"
#include "nets/compat.h"
#include "nets/synthetic.h"

namespace detdl {
namespace {

// A model whose outputs are its inputs: a k -> k Linear with identity weights, zero bias.
std::shared_ptr<Linear> identity_model(std::int64_t k) {
  auto m = std::make_shared<Linear>(k, k);
  for (auto& p : m->parameters()) {
    float* v = p.tensor.f32();
    for (std::int64_t i = 0; i < p.tensor.numel(); ++i) v[i] = 0.0f;
    if (p.tensor.ndim() == 2)
      for (std::int64_t i = 0; i < k; ++i) v[i * k + i] = 1.0f;
  }
  return m;
}

// Evaluates outputs `pred` (n, k) against targets; returns the trainer's accuracy and checks
// that the metric's accuracy is the same number.
float accuracy_of(LossKind loss, std::int64_t k, const std::vector<float>& pred, const Tensor& y) {
  const auto n = static_cast<std::int64_t>(pred.size()) / k;
  auto model = identity_model(k);
  const Dataset d{Tensor::from_vector({n, k}, pred), y};
  const EvalResult r = evaluate_full(*model, d, loss, /*metrics=*/true);
  const double metric = r.metrics[static_cast<int>(Metric::accuracy)];
  if (!std::isnan(metric)) {
    EXPECT_EQ(r.accuracy, static_cast<float>(metric)) << loss_name(loss) << " k=" << k;
  }
  return r.accuracy;
}

TEST(AccuracyRule, OneOutputRegressionIsBinaryAccuracyAtOneHalf) {
  // (output > 0.5) == (target > 0.5): rows 0, 1, 4, 5 agree; 2 and 3 do not.
  const std::vector<float> pred{0.2f, 0.7f, 0.6f, 0.4f, 0.9f, 0.5f};
  const Tensor y = Tensor::from_vector({6, 1}, {0.3f, 0.8f, 0.1f, 0.6f, 0.55f, 0.5f});
  EXPECT_EQ(accuracy_of(LossKind::mse, 1, pred, y), 4.0f / 6.0f);
  // The same rule for binary cross-entropy on 0/1 targets.
  const Tensor y01 = Tensor::from_vector({6, 1}, {0.0f, 1.0f, 0.0f, 1.0f, 1.0f, 0.0f});
  EXPECT_EQ(accuracy_of(LossKind::bce, 1, pred, y01), 4.0f / 6.0f);
}

TEST(AccuracyRule, SeveralOutputsCompareFirstMaxima) {
  // mse with 3 outputs: the output's first maximum against the target's.
  const std::vector<float> pred{0.1f, 0.8f, 0.1f, 0.5f, 0.5f, 0.0f, 0.3f, 0.3f, 0.4f};
  const Tensor y =
      Tensor::from_vector({3, 3}, {0.0f, 1.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.2f, 0.2f, 0.9f});
  EXPECT_EQ(accuracy_of(LossKind::mse, 3, pred, y),
            2.0f / 3.0f);  // row 1: the tie goes to output 0
  // softmax_ce: the first maximum of the logits against the label.
  const Tensor labels = Tensor::from_vector_i32({3}, {1, 1, 2});
  EXPECT_EQ(accuracy_of(LossKind::softmax_ce, 3, pred, labels), 2.0f / 3.0f);
}

TEST(AccuracyRule, ANanRowCountsAsWrong) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor y = Tensor::from_vector({2, 1}, {1.0f, 1.0f});
  EXPECT_EQ(accuracy_of(LossKind::mse, 1, {0.9f, nan}, y), 0.5f);
  const Tensor labels = Tensor::from_vector_i32({2}, {0, 0});
  EXPECT_EQ(accuracy_of(LossKind::softmax_ce, 2, {1.0f, 0.0f, nan, 0.0f}, labels), 0.5f);
}

TEST(AccuracyRule, TrainingAccuracyIsTheMetricsAccuracyForRegression) {
  // A regression run: the per-epoch training accuracy and the metric's running accuracy
  // over the same batches must be one number, and not the old constant 0.
  const Dataset blobs = nets::make_blobs(96, 4, 4, 1.0f, 3);
  Dataset d{blobs.x, Tensor::empty({96, 1})};
  for (std::int64_t i = 0; i < 96; ++i) d.y.f32()[i] = static_cast<float>(blobs.y.i32()[i]) / 3.0f;
  auto model = std::make_shared<Sequential>();
  model->emplace<Linear>(4, 8);
  model->emplace<Act>(Activation::relu);
  model->emplace<Linear>(8, 1);
  TrainConfig cfg;
  cfg.loss = LossKind::mse;
  cfg.epochs = 3;
  cfg.batch_size = 16;
  cfg.schedule.base_lr = 0.05f;
  const TrainResult r = Trainer(*model, cfg).fit(d, &d);
  ASSERT_EQ(r.epochs.size(), 3u);
  for (const EpochStats& s : r.epochs) {
    EXPECT_EQ(s.train_accuracy,
              static_cast<float>(s.train_metrics[static_cast<int>(Metric::accuracy)]));
    EXPECT_EQ(s.test.accuracy,
              static_cast<float>(s.test.metrics[static_cast<int>(Metric::accuracy)]));
  }
  EXPECT_GT(r.epochs.back().test.accuracy, 0.0f);
}

}  // namespace
}  // namespace detdl
