// An outside oracle (issue 12): the golden hashes compare detdl with itself; these compare
// its float32 training with PyTorch's float64 from the same initial weights and batches.
//
// Each case builds a net, initialises it from a fixed seed, takes `steps` batches of real
// data (MNIST's first training images; the BUTTER wine set's first training rows after
// detdl's preparation) and trains: forward, loss, backward, optimizer step. The reference,
// tests/oracle/reference/<case>.safetensors, holds the weights PyTorch (Debian's
// python3-torch) reached in float64 from the same start (tests/oracle/make_reference.py,
// which runs this binary with DETDL_ORACLE_DUMP=DIR to get the initial weights and the
// batches, then trains its own model: torch.nn.functional in float64, torch.optim's SGD and
// Adam, and Keras's clipped cross-entropy written out in torch). detdl's float32 weights must
// stay within |w - w64| <= kAbs + kRel |w64| of it, while the training moved the weights by
// far more than that (so the comparison cannot pass by not training).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "engine/context.h"
#include "engine/dataset.h"
#include "engine/nn.h"
#include "engine/ops/ops.h"
#include "engine/optim.h"
#include "engine/train.h"
#include "kernels/cpu/parallel.h"
#include "nets/butter.h"
#include "nets/data/registry.h"
#include "nets/lenet.h"

namespace detdl {
namespace {

namespace fs = std::filesystem;

// float32 training against float64 over a few steps: the per-weight error is rounding
// accumulated through a LeNet-5 forward and backward (a few ulp of the largest terms).
constexpr double kAbs = 2e-6, kRel = 1e-4;
// make_reference.py's subset: tensors of kFullBelow or more elements keep every kStride-th.
constexpr std::int64_t kStride = 5, kFullBelow = 1000;

struct Case {
  std::string name;
  std::function<std::shared_ptr<Module>()> model;
  std::string data;  // "mnist" or a PMLB name
  LossKind loss;
  OptimizerConfig optimizer;
  float lr;
  std::int64_t steps, batch;
};

std::vector<Case> cases() {
  auto lenet5 = [] { return nets::make_lenet(5, {/*study_init=*/false, /*classic=*/false}); };
  // The study's U[-0.5, 0.5) init: saturated logits, most samples outside Keras's clip.
  auto lenet5_study = [] { return nets::make_lenet(5, {/*study_init=*/true, /*classic=*/false}); };
  // BUTTER's primary-sweep net on wine_quality_white (11 inputs, 7 classes: softmax output).
  auto butter = [] {
    const auto plan = nets::butter_plan(nets::ButterShape::rectangle, 1024, 3, 11, 7);
    return nets::make_butter_mlp(nets::ButterShape::rectangle, plan, 11, /*sigmoid_output=*/false);
  };
  OptimizerConfig sgd;
  sgd.kind = OptimizerConfig::Kind::sgd;
  OptimizerConfig adam;  // PyTorch's form, eps 1e-8: torch.optim.Adam
  adam.kind = OptimizerConfig::Kind::adam;
  OptimizerConfig keras_adam = adam;  // Keras 2.2.2's lr_t form, eps 1e-7 (BUTTER's)
  keras_adam.keras_form = true;
  keras_adam.eps = 1e-7f;
  return {
      {"lenet5_sgd", lenet5, "mnist", LossKind::softmax_ce, sgd, 0.05f, 3, 32},
      {"lenet5_adam", lenet5, "mnist", LossKind::softmax_ce, adam, 1e-3f, 3, 32},
      {"lenet5_keras_ce_sgd", lenet5_study, "mnist", LossKind::keras_ce, sgd, 0.01f, 3, 32},
      {"butter_wine_adam", butter, "wine_quality_white", LossKind::softmax_ce, adam, 1e-3f, 4, 64},
      {"butter_wine_keras_adam", butter, "wine_quality_white", LossKind::softmax_ce, keras_adam,
       1e-3f, 4, 64},
  };
}

const data::DataBundle& bundle(const std::string& name) {
  data::DataOptions o;
  o.root = DETDL_SHARED_DIR "/data";
  static std::map<std::string, std::shared_ptr<const data::DataBundle>> cache;
  auto& b = cache[name];
  if (!b) b = data::load_data(name, o);
  return *b;
}

struct Trained {
  std::vector<NamedTensor> initial, final;  // copies
  Dataset rows;                             // the steps' batches, in order
};

std::vector<NamedTensor> copy_params(const Module& m) {
  std::vector<NamedTensor> out;
  for (const auto& p : m.parameters()) out.push_back({p.name, p.tensor.clone(), p.init});
  return out;
}

// Trains the case in detdl (portable, one thread) and keeps the start and the end.
Trained train(const Case& c) {
  cpu::set_num_threads(1);
  ContextGuard guard(RunContext{});
  auto model = c.model();
  model->initialize(17);
  model->train(true);
  Trained t;
  t.initial = copy_params(*model);
  t.rows = slice_rows(bundle(c.data).train, 0, c.steps * c.batch);
  Optimizer opt(model->parameters(), c.optimizer);
  for (std::int64_t s = 0; s < c.steps; ++s) {
    const Dataset b = slice_rows(t.rows, s * c.batch, (s + 1) * c.batch);
    backward(compute_loss(c.loss, model->forward(b.x), b.y));
    opt.step(c.lr);
    opt.zero_grad();
  }
  t.final = copy_params(*model);
  return t;
}

// DETDL_ORACLE_DUMP=DIR: write each case's start for make_reference.py and stop.
TEST(Oracle, DumpForTheReferenceScript) {
  const char* dir = std::getenv("DETDL_ORACLE_DUMP");
  if (!dir) GTEST_SKIP() << "DETDL_ORACLE_DUMP not set: nothing to dump";
  fs::create_directories(dir);
  for (const Case& c : cases()) {
    const Trained t = train(c);
    TensorFile f;
    for (const auto& p : t.initial) f.tensors.push_back({"param." + p.name, p.tensor});
    f.tensors.push_back({"x", t.rows.x});
    f.tensors.push_back({"y", t.rows.y});
    auto exact = [](float v) {  // every digit a float needs (std::to_string keeps 6 places)
      char b[32];
      std::snprintf(b, sizeof b, "%.9g", static_cast<double>(v));
      return std::string(b);
    };
    f.metadata = {{"loss", std::string(loss_name(c.loss))},
                  {"optimizer", std::string(optimizer_name(c.optimizer.kind))},
                  {"lr", exact(c.lr)},
                  {"steps", std::to_string(c.steps)},
                  {"batch", std::to_string(c.batch)},
                  {"beta1", exact(c.optimizer.beta1)},
                  {"beta2", exact(c.optimizer.beta2)},
                  {"eps", exact(c.optimizer.eps)},
                  {"keras_form", c.optimizer.keras_form ? "1" : "0"}};
    save_safetensors((fs::path(dir) / (c.name + "_input.safetensors")).string(), f);
  }
}

class OracleCase : public testing::TestWithParam<std::size_t> {};

TEST_P(OracleCase, Float32StaysWithinToleranceOfPyTorchFloat64) {
  const Case c = cases()[GetParam()];
  const fs::path ref =
      fs::path(DETDL_SOURCE_DIR) / "tests/oracle/reference" / (c.name + ".safetensors");
  const TensorFile want = load_safetensors(ref.string());
  const Trained t = train(c);
  ASSERT_EQ(t.final.size() + 0, want.tensors.size()) << ref;
  double worst = 0, moved = 0;
  std::string worst_at;
  for (std::size_t i = 0; i < t.final.size(); ++i) {
    const Tensor* w64 = want.find("param." + t.final[i].name);
    ASSERT_NE(w64, nullptr) << t.final[i].name;
    // The reference keeps every kStride-th element of a large tensor (make_reference.py).
    const std::int64_t n = t.final[i].tensor.numel();
    const std::int64_t stride = n < kFullBelow ? 1 : kStride;
    ASSERT_EQ(w64->numel(), (n + stride - 1) / stride) << t.final[i].name;
    const float* a = t.final[i].tensor.f32();
    const float* b = w64->f32();
    const float* a0 = t.initial[i].tensor.f32();
    for (std::int64_t j = 0; j < w64->numel(); ++j) {
      const std::int64_t k = j * stride;
      ASSERT_TRUE(std::isfinite(a[k]) && std::isfinite(b[j])) << t.final[i].name << "[" << k << "]";
      const double excess = std::fabs(double(a[k]) - b[j]) / (kAbs + kRel * std::fabs(b[j]));
      if (excess > worst)
        worst = excess, worst_at = t.final[i].name + "[" + std::to_string(k) + "]";
      moved = std::max(moved, std::fabs(double(b[j]) - a0[k]));
    }
  }
  EXPECT_LE(worst, 1.0) << c.name << ": worst weight " << worst_at << " at " << worst
                        << " x the tolerance";
  RecordProperty("worst_over_tolerance", std::to_string(worst));
  std::printf("%s: worst |w - w64| is %.3g of the tolerance (%s); weights moved up to %.3g\n",
              c.name.c_str(), worst, worst_at.c_str(), moved);
  // The reference moved the weights by far more than the tolerance: a detdl that did not
  // train (or trained something else) cannot pass.
  EXPECT_GT(moved, 100 * kAbs) << c.name;
}

INSTANTIATE_TEST_SUITE_P(Cases, OracleCase, testing::Range<std::size_t>(0, 5),
                         [](const testing::TestParamInfo<std::size_t>& i) {
                           return cases()[i.param].name;
                         });

}  // namespace
}  // namespace detdl
