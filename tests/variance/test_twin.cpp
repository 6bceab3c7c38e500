// Twin runs (variance/twin.h) and the one-ulp initial change (TrainConfig::init_nudge):
// the measured steps, a nudge that moves exactly one weight by exactly one ulp, identical
// twins at distance 0, and the refusals.
#include <gtest/gtest.h>

#include <cmath>

#include "variance/twin.h"

namespace detdl::variance {
namespace {

nets::Experiment tiny() {
  nets::Experiment e;
  e.net = "mlp:16";
  e.data = "blobs";
  e.epochs = 2;
  e.batch_size = 64;
  e.schedule.base_lr = 0.05f;
  return e;
}

TEST(Twin, LogSpacedStepsStartDenseAndEndAtTheLastStep) {
  const auto s = log_spaced_steps(1000, 10);
  ASSERT_GE(s.size(), 11u);
  for (int i = 0; i <= 10; ++i) EXPECT_EQ(s[i], i);
  EXPECT_EQ(s.back(), 1000);
  for (std::size_t i = 1; i < s.size(); ++i) EXPECT_LT(s[i - 1], s[i]);
  EXPECT_LE(s.size(), 11u + 2u * 10u + 1u);  // about 10 per decade from 10 to 1000
  EXPECT_EQ(log_spaced_steps(3, 10), (std::vector<std::int64_t>{0, 1, 2, 3}));
  EXPECT_THROW(log_spaced_steps(10, 0), std::invalid_argument);
}

TEST(Twin, OneUlpNudgeMovesExactlyOneWeightByOneUlp) {
  nets::Experiment a = tiny(), b = tiny();
  b.init_nudge = 12345;
  const TwinResult t = run_twin(a, b, 5);
  ASSERT_FALSE(t.points.empty());
  const TwinPoint& p0 = t.points.front();
  EXPECT_EQ(p0.step, 0);
  EXPECT_EQ(p0.differing, 1);
  EXPECT_EQ(t.first_differing_step, 0);
  // One ulp of a weight of magnitude below 1: at most 2^-24, more than 0.
  EXPECT_GT(p0.max_abs, 0.0);
  EXPECT_LE(p0.max_abs, std::ldexp(1.0, -24));
  EXPECT_DOUBLE_EQ(p0.l2, p0.max_abs);
  EXPECT_EQ(t.points.back().step, 2 * ((2000 + 63) / 64));  // blobs: 2,000 training rows
}

TEST(Twin, IdenticalTwinsStayAtDistanceZeroAndDifferentNudgesDiffer) {
  const TwinResult same = run_twin(tiny(), tiny(), 5);
  EXPECT_EQ(same.first_differing_step, -1);
  for (const auto& p : same.points) EXPECT_EQ(p.l2, 0.0) << p.step;
  EXPECT_EQ(same.test_disagreements, 0);
  // Two nudge values pick different weights (the draw covers the whole model).
  nets::Experiment a = tiny(), b = tiny();
  a.init_nudge = 1;
  b.init_nudge = 2;
  EXPECT_EQ(run_twin(a, b, 5).points.front().differing, 2);
}

TEST(Twin, RefusesTwinsOfDifferentLengthOrSnapshotsTooLarge) {
  nets::Experiment a = tiny(), b = tiny();
  b.epochs = 3;
  EXPECT_THROW(run_twin(a, b, 5), std::invalid_argument);
  EXPECT_THROW(run_twin(tiny(), tiny(), 5, /*max_floats=*/100), std::invalid_argument);
}

}  // namespace
}  // namespace detdl::variance
