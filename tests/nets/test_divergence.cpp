// A run whose loss and weights go NaN (divergent training) completes, and its record says
// so: "diverged", the count of non-finite training losses, whether the final weights are
// finite, and per series how many epochs have a finite value (issue 9, "divergent training").
#include <gtest/gtest.h>

#include <cmath>

#include "nets/experiment.h"

using namespace detdl;

namespace {

nets::Experiment houses(float lr) {
  nets::Experiment e;
  e.net = "mlp:16";
  e.data = "537_houses";  // regression: MSE with a large rate overflows to NaN in a few steps
  e.data_dir = DETDL_SHARED_DIR "/data";
  e.epochs = 2;
  e.batch_size = 256;
  e.optimizer.momentum = 0.9f;
  e.schedule.base_lr = lr;
  return e;
}

}  // namespace

TEST(Divergence, ADivergedRunCompletesAndItsRecordSaysSo) {
  const nets::RunOutput out = nets::run_experiment(houses(10.0f));
  const auto& r = out.record;
  EXPECT_EQ(out.result.steps, 2 * ((16512 + 255) / 256));  // every step ran
  EXPECT_TRUE(r["diverged"].get<bool>());
  EXPECT_GT(r["nonfinite_loss_steps"].get<std::int64_t>(), 0);
  EXPECT_FALSE(r["weights_finite"].get<bool>());
  EXPECT_EQ(r["finite"]["train.loss"].get<int>(), 0);
  EXPECT_EQ(r["finite"]["test.loss"].get<int>(), 0);
  // A NaN is written as null (JSON has no NaN), never as a number.
  EXPECT_TRUE(nlohmann::json::parse(r.dump())["epochs"][0]["train"]["loss"].is_null());
}

TEST(Divergence, AHealthyRunIsNotFlagged) {
  const nets::RunOutput out = nets::run_experiment(houses(1e-4f));
  const auto& r = out.record;
  EXPECT_FALSE(r["diverged"].get<bool>());
  EXPECT_EQ(r["nonfinite_loss_steps"].get<std::int64_t>(), 0);
  EXPECT_TRUE(r["weights_finite"].get<bool>());
  EXPECT_EQ(r["finite"]["train.loss"].get<int>(), 2);
  EXPECT_EQ(r["finite"]["test.loss"].get<int>(), 2);
}
