// Initialisers (Philox-keyed, statistics of each scheme) and learning-rate schedules.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "engine/init.h"
#include "engine/nn.h"
#include "engine/optim.h"
#include "engine/schedule.h"

using namespace detdl;

namespace {
std::pair<double, double> mean_std(const Tensor& t) {
  double s = 0, s2 = 0;
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    s += t.f32()[i];
    s2 += static_cast<double>(t.f32()[i]) * t.f32()[i];
  }
  const double m = s / t.numel();
  return {m, std::sqrt(s2 / t.numel() - m * m)};
}
}  // namespace

TEST(Init, FansFollowKerasAndPyTorch) {
  EXPECT_EQ(fans({30, 20}), (std::pair<double, double>{20, 30}));
  EXPECT_EQ(fans({16, 6, 5, 5}), (std::pair<double, double>{150, 400}));
}

TEST(Init, EachSchemeHasItsVarianceAndBounds) {
  const Shape shape{200, 300};  // fan_in 300, fan_out 200
  struct Case {
    InitKind kind;
    double var;
    bool uniform;
  };
  for (const Case& c :
       {Case{InitKind::glorot_uniform, 2.0 / 500, true},
        Case{InitKind::he_uniform, 2.0 / 300, true}, Case{InitKind::lecun_uniform, 1.0 / 300, true},
        Case{InitKind::glorot_normal, 2.0 / 500, false},
        Case{InitKind::he_normal, 2.0 / 300, false},
        Case{InitKind::lecun_normal, 1.0 / 300, false}}) {
    Tensor t = Tensor::zeros(shape);
    initialize(t, {c.kind}, 1, 0);
    const auto [m, sd] = mean_std(t);
    EXPECT_NEAR(m, 0.0, 0.01) << init_name(c.kind);
    EXPECT_NEAR(sd, std::sqrt(c.var), 0.03 * std::sqrt(c.var)) << init_name(c.kind);
    float maxabs = 0;
    for (std::int64_t i = 0; i < t.numel(); ++i) maxabs = std::max(maxabs, std::fabs(t.f32()[i]));
    // Uniform: within sqrt(3 var); truncated normal: within 2 of its pre-truncation std.
    const double bound =
        c.uniform ? std::sqrt(3 * c.var) : 2 * std::sqrt(c.var) / 0.87962566103423978;
    EXPECT_LE(maxabs, bound * (1 + 1e-6)) << init_name(c.kind);
  }
  Tensor z = Tensor::full({7}, 3.0f);
  initialize(z, {InitKind::zeros}, 1, 0);
  EXPECT_EQ(z.to_vector(), std::vector<float>(7, 0.0f));
  Tensor u = Tensor::zeros({1000});
  initialize(u, {InitKind::uniform, -0.5f, 0.25f}, 3, 0);
  for (float v : u.to_vector()) ASSERT_TRUE(v >= -0.5f && v < 0.25f);
  EXPECT_EQ(parse_init("he_normal"), InitKind::he_normal);
  EXPECT_FALSE(parse_init("kaiming"));
}

TEST(Init, KeyedBySeedAndParameterIndexOnly) {
  Tensor a = Tensor::zeros({50}), b = Tensor::zeros({50}), c = Tensor::zeros({50}),
         d = Tensor::zeros({80});
  initialize(a, {InitKind::he_normal}, 7, 3);
  initialize(b, {InitKind::he_normal}, 7, 3);
  initialize(c, {InitKind::he_normal}, 7, 4);
  EXPECT_EQ(std::memcmp(a.f32(), b.f32(), 200), 0);
  EXPECT_NE(std::memcmp(a.f32(), c.f32(), 200), 0);
  // Element i's value does not depend on the tensor's size (only fans scale it).
  initialize(d, {InitKind::normal, 0.0f, 1.0f}, 7, 3);
  Tensor e = Tensor::zeros({50});
  initialize(e, {InitKind::normal, 0.0f, 1.0f}, 7, 3);
  EXPECT_EQ(std::memcmp(d.f32(), e.f32(), 200), 0);
}

TEST(Init, ModuleOrderKeysTheStreams) {
  Linear l1(4, 3), l2(4, 3);
  l1.initialize(5);
  l2.initialize(5);
  EXPECT_EQ(l1.weight().to_vector(), l2.weight().to_vector());
  l2.initialize(6);
  EXPECT_NE(l1.weight().to_vector(), l2.weight().to_vector());
  EXPECT_EQ(l1.parameter_count(), 15);
}

TEST(Schedule, StepMultistepCosine) {
  Schedule s;
  s.base_lr = 0.1f;
  EXPECT_EQ(s.lr(100), 0.1f);
  s.kind = Schedule::Kind::step;
  s.step_size = 30;
  s.gamma = 0.1f;
  EXPECT_EQ(s.lr(29), 0.1f);
  EXPECT_FLOAT_EQ(s.lr(30), 0.01f);
  EXPECT_FLOAT_EQ(s.lr(65), 0.001f);
  s.kind = Schedule::Kind::multistep;
  s.milestones = {80, 120};
  EXPECT_EQ(s.lr(79), 0.1f);
  EXPECT_FLOAT_EQ(s.lr(80), 0.01f);
  EXPECT_FLOAT_EQ(s.lr(150), 0.001f);
  // The ResNet preset's Keras lr_schedule: x0.1 after epoch 80, ... x0.0005 after 180.
  s.kind = Schedule::Kind::piecewise;
  s.base_lr = 1e-3f;
  s.milestones = {81, 121, 161, 181};
  s.factors = {1e-1, 1e-2, 1e-3, 0.5e-3};
  EXPECT_EQ(s.lr(80), 1e-3f);
  EXPECT_EQ(s.lr(81), static_cast<float>(static_cast<double>(1e-3f) * 1e-1));
  EXPECT_EQ(s.lr(160), static_cast<float>(static_cast<double>(1e-3f) * 1e-2));
  EXPECT_EQ(s.lr(199), static_cast<float>(static_cast<double>(1e-3f) * 0.5e-3));
  s.base_lr = 0.1f;
  s.kind = Schedule::Kind::cosine;
  s.t_max = 10;
  s.eta_min = 0.0f;
  EXPECT_FLOAT_EQ(s.lr(0), 0.1f);
  EXPECT_NEAR(s.lr(5), 0.05f, 1e-7);
  EXPECT_NEAR(s.lr(10), 0.0f, 1e-8);
  for (int e = 1; e <= 10; ++e) EXPECT_LT(s.lr(e), s.lr(e - 1));
}

TEST(Optimizer, StateRoundTripsAndNamesItsSlots) {
  Linear l(3, 2);
  l.initialize(1);
  OptimizerConfig c;
  c.kind = OptimizerConfig::Kind::adam;
  Optimizer opt(l.parameters(), c);
  const auto st = opt.state();
  ASSERT_EQ(st.size(), 4u);
  EXPECT_EQ(st[0].first, "weight.exp_avg");
  EXPECT_EQ(st[3].first, "bias.exp_avg_sq");
  EXPECT_EQ(parse_optimizer("rmsprop"), OptimizerConfig::Kind::rmsprop);
  EXPECT_FALSE(parse_optimizer("lbfgs"));
  TensorFile f;
  EXPECT_THROW(opt.load_state(f, "optim.", 3), std::runtime_error);
}
