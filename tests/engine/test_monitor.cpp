// The training monitor (engine/monitor.h): a probe changes nothing the run computes (the
// same weight hash at every epoch with it on and off, with batch norm and dropout in the
// net), and its numbers are what a plain float64 loop over the same tensors gives.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "engine/autograd.h"
#include "engine/monitor.h"
#include "engine/nn.h"
#include "engine/train.h"
#include "nets/simple.h"
#include "nets/synthetic.h"

namespace detdl {
namespace {

TrainConfig config(std::int64_t epochs, std::int64_t every) {
  TrainConfig cfg;
  cfg.epochs = epochs;
  cfg.batch_size = 16;
  cfg.optimizer.kind = OptimizerConfig::Kind::sgd;
  cfg.optimizer.momentum = 0.9f;
  cfg.schedule.base_lr = 0.05f;
  cfg.l2 = 1e-3f;
  cfg.init_seed = 7;
  cfg.order_seed = 8;
  cfg.dropout_seed = 9;
  cfg.monitor.every = every;
  return cfg;
}

std::vector<std::string> epoch_hashes(Module& m, const TrainConfig& cfg, const Dataset& train,
                                      const Dataset& test, std::vector<EpochStats>* out = nullptr) {
  Trainer t(m, cfg);
  const TrainResult r = t.fit(train, &test);
  std::vector<std::string> h;
  for (const auto& e : r.epochs) h.push_back(e.weight_hash);
  h.push_back(r.weight_hash);
  if (out) *out = r.epochs;
  return h;
}

TEST(Monitor, ProbesChangeNothingTheRunComputes) {
  // Dropout (MLP) and batch norm (CNN): the two layers whose training mode has state.
  const Dataset blobs = nets::make_blobs(200, 6, 3, 1.0f, 11);
  const Dataset blobs_test = nets::make_blobs(60, 6, 3, 1.0f, 12);
  auto mlp_off = nets::make_mlp(6, 16, 3, 0.3f);
  auto mlp_on = nets::make_mlp(6, 16, 3, 0.3f);
  std::vector<EpochStats> probed;
  const auto off = epoch_hashes(*mlp_off, config(4, 0), blobs, blobs_test);
  const auto on = epoch_hashes(*mlp_on, config(4, 1), blobs, blobs_test, &probed);
  EXPECT_EQ(off, on);
  ASSERT_EQ(probed.size(), 4u);
  for (const auto& e : probed) ASSERT_TRUE(e.monitor) << "epoch " << e.epoch;

  const Dataset img = nets::make_bar_images(48, 1, 8, 4, 13);
  const Dataset img_test = nets::make_bar_images(16, 1, 8, 4, 14);
  auto cnn_off = nets::make_small_cnn(1, 4);
  auto cnn_on = nets::make_small_cnn(1, 4);
  EXPECT_EQ(epoch_hashes(*cnn_off, config(3, 0), img, img_test),
            epoch_hashes(*cnn_on, config(3, 2), img, img_test, &probed));
  // every = 2: epochs 0 and 2 (AutoTrainer's epoch % every == 0), not 1.
  EXPECT_TRUE(probed[0].monitor);
  EXPECT_FALSE(probed[1].monitor);
  EXPECT_TRUE(probed[2].monitor);
  EXPECT_EQ(probed[2].monitor->epoch, 2);
}

// A one-layer net x -> relu(x W^T + b) -> y, MSE, some units dead by construction: the
// probe's norms, zero shares and dead share against a float64 loop.
TEST(Monitor, ProbeNumbersMatchAPlainLoop) {
  constexpr std::int64_t n = 8, in = 3, out = 4;
  auto net = std::make_shared<Sequential>();
  net->emplace<Linear>(in, out);
  net->emplace<Act>(Activation::relu);
  net->initialize(5);
  auto params = net->parameters();
  float* w = params[0].tensor.data_f32();
  float* b = params[1].tensor.data_f32();
  b[2] = -100.0f;  // unit 2 dead for any input in [-1, 1]
  b[3] = -100.0f;  // and unit 3
  std::vector<float> xv(n * in), yv(n * out);
  for (std::int64_t i = 0; i < n * in; ++i) xv[i] = std::sin(0.7f * static_cast<float>(i));
  for (std::int64_t i = 0; i < n * out; ++i) yv[i] = std::cos(0.3f * static_cast<float>(i));
  Dataset d{Tensor::from_vector({n, in}, xv), Tensor::from_vector({n, out}, yv)};
  TrainConfig cfg;
  cfg.loss = LossKind::mse;
  cfg.batch_size = n;
  MonitorConfig mon;
  mon.every = 1;
  const std::vector<std::vector<float>> start = snapshot_parameters(*net);
  w[0] += 0.5f;  // a known update since the "epoch start"
  const MonitorStats st = probe_model(*net, cfg, mon, d, 0, start);

  // float64 reference: z = x W^T + b, a = relu(z), loss = mean over all (a - y)^2.
  std::vector<double> gw(out * in, 0.0), gb(out, 0.0);
  std::vector<int> active(out, 0);
  for (std::int64_t r = 0; r < n; ++r)
    for (std::int64_t o = 0; o < out; ++o) {
      double z = b[o];
      for (std::int64_t k = 0; k < in; ++k)
        z += static_cast<double>(xv[r * in + k]) * w[o * in + k];
      const double a = z > 0 ? z : 0.0;
      if (a != 0.0) active[o] = 1;
      const double g = z > 0 ? 2.0 * (a - yv[r * out + o]) / static_cast<double>(n * out) : 0.0;
      gb[o] += g;
      for (std::int64_t k = 0; k < in; ++k) gw[o * in + k] += g * xv[r * in + k];
    }
  auto norm = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x * x;
    return std::sqrt(s);
  };
  ASSERT_EQ(st.params.size(), 2u);
  EXPECT_EQ(st.params[0].name, "0.weight");
  EXPECT_EQ(st.params[0].dims, 2);
  EXPECT_NEAR(st.params[0].grad_norm, norm(gw), 1e-5 * (1 + norm(gw)));
  EXPECT_NEAR(st.params[1].grad_norm, norm(gb), 1e-5 * (1 + norm(gb)));
  // Dead units 2 and 3: their weight rows' and biases' gradients are exactly 0.
  EXPECT_DOUBLE_EQ(st.params[1].zero_grad, 0.5);
  EXPECT_GE(st.params[0].zero_grad, 0.5);
  ASSERT_EQ(st.activations.size(), 1u);
  EXPECT_EQ(st.activations[0].kind, "relu");
  EXPECT_EQ(st.activations[0].units, out);
  int dead = 0;
  for (int a : active) dead += a ? 0 : 1;
  EXPECT_DOUBLE_EQ(st.activations[0].dead, static_cast<double>(dead) / out);
  EXPECT_GE(dead, 2);
  // Update ratio of the weight: ||0.5 e_0|| / ||W_start||.
  double w0 = 0;
  for (float v : start[0]) w0 += static_cast<double>(v) * v;
  EXPECT_NEAR(st.params[0].update_ratio, 0.5 / std::sqrt(w0), 1e-6);
  EXPECT_DOUBLE_EQ(st.params[1].update_ratio, 0.0);
  // The probe leaves no gradient behind and the mode as it was.
  EXPECT_FALSE(params[0].tensor.grad().defined());
  EXPECT_TRUE(net->training());
  EXPECT_EQ(tape_size(), 0u);
  // No rows to probe: refused, not looped over.
  const Dataset none{Tensor::zeros({0, in}), Tensor::zeros({0, out})};
  EXPECT_THROW(probe_model(*net, cfg, mon, none, 0, start), std::invalid_argument);
}

TEST(Monitor, RecordFormRoundTripsNonFiniteAsNull) {
  MonitorStats m;
  m.rows = 4;
  m.loss = std::numeric_limits<double>::infinity();
  m.nonfinite_grad = true;
  m.params.push_back({"0.weight", 6, 2, std::numeric_limits<double>::quiet_NaN(), 1.5, 0.25,
                      std::numeric_limits<double>::quiet_NaN()});
  m.activations.push_back({0, "relu", 3, 1.0 / 3.0});
  const auto j = to_json(m);
  EXPECT_TRUE(j["loss"].is_null());
  EXPECT_TRUE(j["params"][0]["grad_norm"].is_null());
  const MonitorStats back = monitor_from_json(nlohmann::json::parse(j.dump()));
  EXPECT_TRUE(std::isnan(back.loss));
  EXPECT_TRUE(std::isnan(back.params[0].grad_norm));
  EXPECT_EQ(back.params[0].dims, 2);
  EXPECT_DOUBLE_EQ(back.params[0].weight_norm, 1.5);
  EXPECT_DOUBLE_EQ(back.activations[0].dead, 1.0 / 3.0);
  EXPECT_TRUE(back.nonfinite_grad);
  nlohmann::json bad = j;
  bad["params"][0].erase("size");
  EXPECT_THROW(monitor_from_json(bad), std::invalid_argument);
  EXPECT_THROW(monitor_from_json(nlohmann::json::array()), std::invalid_argument);
}

TEST(Monitor, ObserverSeesEveryActivationInForwardOrder) {
  auto mlp = nets::make_mlp(4, 8, 2);
  mlp->initialize(1);
  std::vector<std::string> seen;
  {
    ActivationObserverScope watch([&](const Act& a, const Tensor& out) {
      seen.push_back(a.kind());
      EXPECT_EQ(out.dim(1), 8);
    });
    NoGradGuard ng;
    mlp->forward(Tensor::zeros({2, 4}));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"relu", "tanh"}));
  NoGradGuard ng;
  mlp->forward(Tensor::zeros({2, 4}));  // the scope has ended: nothing more is seen
  EXPECT_EQ(seen.size(), 2u);
}

}  // namespace
}  // namespace detdl
