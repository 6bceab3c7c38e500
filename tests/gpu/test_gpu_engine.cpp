// The engine on CUDA against the engine on the CPU (the oracle), in `portable`:
//   - every differentiable op, forward and backward through the tape, gives the very same
//     bits on both devices (memcmp of the output and of every input gradient);
//   - every golden case (nets/golden.h) trained on CUDA reproduces tests/golden/hashes.json.
// Every test skips when no CUDA device is usable, so the binary is harmless in CPU-only CI.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/context.h"
#include "engine/cuda_backend.h"
#include "engine/ops/ops.h"
#include "nets/golden.h"

namespace detdl {
namespace {

bool cuda_vendor_conv_available() {
#ifdef DETDL_HAVE_CUDNN
  return true;
#else
  return false;
#endif
}

#define SKIP_WITHOUT_GPU() \
  if (!gpu::available()) GTEST_SKIP() << "no usable CUDA device"

// Floats in [lo, hi) with full fractions (a changed summation order shows in the last bits).
Tensor random_tensor(const Shape& shape, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(static_cast<std::size_t>(shape_numel(shape)));
  for (auto& x : v) x = u(g);
  return Tensor::from_vector(shape, v);
}

Tensor random_labels(std::int64_t n, std::int32_t classes, std::uint32_t seed) {
  std::mt19937 g(seed);
  std::vector<std::int32_t> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = static_cast<std::int32_t>(g() % static_cast<std::uint32_t>(classes));
  return Tensor::from_vector_i32({n}, v);
}

struct Input {
  Tensor host;
  bool grad = true;  // a leaf that needs a gradient
};

// The op's output and every differentiable input's gradient, copied to the host. A
// non-scalar output is reduced to a scalar with fixed random weights (so each element's
// gradient differs) by ops that are themselves bit-equal across devices.
std::vector<std::vector<float>> run_on(Device d, const std::vector<Input>& inputs,
                                       const std::function<Tensor(std::vector<Tensor>&)>& op) {
  std::vector<Tensor> xs;
  for (const auto& in : inputs) {
    if (!in.host.defined()) {  // an absent optional input (e.g. no bias)
      xs.emplace_back();
      continue;
    }
    Tensor x = in.host.to(d);
    if (d == Device::cpu) x = in.host.clone();  // a fresh leaf on each device
    if (in.grad) x.set_requires_grad(true);
    xs.push_back(x);
  }
  Tensor y = op(xs);
  std::vector<std::vector<float>> out{y.to_vector()};
  Tensor loss = y.numel() == 1 ? y : ops::sum(ops::mul(y, random_tensor(y.shape(), 99).to(d)));
  if (loss.requires_grad())
    backward(loss);
  else
    clear_tape();
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (inputs[i].grad && xs[i].defined()) {
      EXPECT_TRUE(xs[i].grad().defined())
          << "input " << i << " got no gradient on " << device_name(d);
      if (xs[i].grad().defined()) {
        EXPECT_EQ(xs[i].grad().device(), d);
        out.push_back(xs[i].grad().to_vector());
      }
    }
  return out;
}

void expect_bit_equal(const char* name, const std::vector<Input>& inputs,
                      const std::function<Tensor(std::vector<Tensor>&)>& op) {
  const auto c = run_on(Device::cpu, inputs, op);
  const auto g = run_on(Device::cuda, inputs, op);
  ASSERT_EQ(c.size(), g.size()) << name;
  for (std::size_t i = 0; i < c.size(); ++i) {
    ASSERT_EQ(c[i].size(), g[i].size()) << name << " result " << i;
    EXPECT_EQ(std::memcmp(c[i].data(), g[i].data(), c[i].size() * sizeof(float)), 0)
        << name << ": result " << i << (i == 0 ? " (the output)" : " (a gradient)")
        << " differs between CPU and CUDA";
  }
}

TEST(GpuEngine, DenseOpsAreBitEqual) {
  SKIP_WITHOUT_GPU();
  expect_bit_equal(
      "linear", {{random_tensor({8, 37}, 1)}, {random_tensor({5, 37}, 2)}, {random_tensor({5}, 3)}},
      [](std::vector<Tensor>& x) { return ops::linear(x[0], x[1], x[2]); });
  // A batch longer than a chunk of values, so the bias gradient's tree has several leaves.
  expect_bit_equal(
      "linear long batch",
      {{random_tensor({600, 12}, 4)}, {random_tensor({7, 12}, 5)}, {random_tensor({7}, 6)}},
      [](std::vector<Tensor>& x) { return ops::linear(x[0], x[1], x[2]); });
  expect_bit_equal("matmul", {{random_tensor({7, 33}, 7)}, {random_tensor({33, 9}, 8)}},
                   [](std::vector<Tensor>& x) { return ops::matmul(x[0], x[1]); });
}

TEST(GpuEngine, ConvAndPoolingAreBitEqual) {
  SKIP_WITHOUT_GPU();
  expect_bit_equal("conv2d pad 1",
                   {{random_tensor({4, 3, 9, 9}, 10)},
                    {random_tensor({6, 3, 3, 3}, 11)},
                    {random_tensor({6}, 12)}},
                   [](std::vector<Tensor>& x) {
                     return ops::conv2d(x[0], x[1], x[2], {1, 1, false});
                   });
  expect_bit_equal(
      "conv2d same stride 2",
      {{random_tensor({3, 2, 10, 10}, 13)}, {random_tensor({4, 2, 5, 5}, 14)}, {Tensor(), false}},
      [](std::vector<Tensor>& x) {
        return ops::conv2d(x[0], x[1], Tensor(), {2, 0, true});
      });
  expect_bit_equal("max_pool2d", {{random_tensor({2, 3, 8, 8}, 15)}}, [](std::vector<Tensor>& x) {
    return ops::max_pool2d(x[0], {2, 2, 0, false, false});
  });
  expect_bit_equal("avg_pool2d", {{random_tensor({2, 3, 9, 9}, 16)}}, [](std::vector<Tensor>& x) {
    return ops::avg_pool2d(x[0], {3, 2, 1, false, false});
  });
  expect_bit_equal("global_avg_pool2d", {{random_tensor({3, 4, 17, 17}, 17)}},
                   [](std::vector<Tensor>& x) { return ops::global_avg_pool2d(x[0]); });
}

// The fused relu + max pool: CPU tensors run the fused kernels, CUDA tensors the relu and
// the max pool in turn; the same bits either way (values on both sides of 0, overlapping
// windows too).
TEST(GpuEngine, ReluMaxPoolIsBitEqual) {
  SKIP_WITHOUT_GPU();
  expect_bit_equal("relu_max_pool2d", {{random_tensor({2, 3, 8, 8}, 18)}},
                   [](std::vector<Tensor>& x) {
                     return ops::relu_max_pool2d(x[0], {2, 2, 0, false, false});
                   });
  expect_bit_equal("relu_max_pool2d overlapping", {{random_tensor({2, 3, 9, 9}, 19)}},
                   [](std::vector<Tensor>& x) {
                     return ops::relu_max_pool2d(x[0], {3, 2, 1, false, false});
                   });
}

TEST(GpuEngine, NormActivationsDropoutConcatAreBitEqual) {
  SKIP_WITHOUT_GPU();
  const std::vector<Input> bn{{random_tensor({4, 3, 5, 5}, 20)},
                              {random_tensor({3}, 21, 0.5f, 1.5f)},
                              {random_tensor({3}, 22)}};
  expect_bit_equal("batch_norm train", bn, [](std::vector<Tensor>& x) {
    Tensor mean = Tensor::zeros({3}).to(x[0].device());
    Tensor var = Tensor::full({3}, 1.0f).to(x[0].device());
    return ops::batch_norm(x[0], x[1], x[2], mean, var, true, 0.1f, 1e-5f);
  });
  // Eval mode (forward only) on the running statistics one training step left behind.
  std::vector<Input> bn_eval = bn;
  for (auto& in : bn_eval) in.grad = false;
  expect_bit_equal("batch_norm eval", bn_eval, [](std::vector<Tensor>& x) {
    Tensor mean = Tensor::zeros({3}).to(x[0].device());
    Tensor var = Tensor::full({3}, 1.0f).to(x[0].device());
    ops::batch_norm(x[0], x[1], x[2], mean, var, true, 0.1f, 1e-5f);
    return ops::batch_norm(x[0], x[1], x[2], mean, var, false, 0.1f, 1e-5f);
  });
  for (int k = 0; k < kActivationCount; ++k) {  // every kind, so a new one is compared here
    const Activation a = static_cast<Activation>(k);
    expect_bit_equal("activation", {{random_tensor({5, 41}, 30, -3.0f, 3.0f)}},
                     [a](std::vector<Tensor>& x) { return ops::activation(x[0], a, 0.1f); });
  }
  RunContext ctx;
  ctx.training = true;
  ctx.dropout_seed = 1234;
  ctx.step = 5;
  ContextGuard guard(ctx);
  expect_bit_equal("dropout", {{random_tensor({6, 50}, 31)}}, [](std::vector<Tensor>& x) {
    context().dropout_layer = 0;  // the same layer number on both devices
    return ops::dropout(x[0], 0.3f);
  });
  expect_bit_equal("concat", {{random_tensor({2, 3, 4, 4}, 32)}, {random_tensor({2, 5, 4, 4}, 33)}},
                   [](std::vector<Tensor>& x) {
                     return ops::concat({x[0], x[1]}, 1);
                   });
  expect_bit_equal("reshape", {{random_tensor({2, 3, 4, 5}, 34)}}, [](std::vector<Tensor>& x) {
    return ops::reshape(x[0], {6, -1});
  });
}

TEST(GpuEngine, ArithmeticAndLossesAreBitEqual) {
  SKIP_WITHOUT_GPU();
  const std::vector<Input> two{{random_tensor({9, 31}, 40)}, {random_tensor({9, 31}, 41)}};
  expect_bit_equal("add", two, [](std::vector<Tensor>& x) { return ops::add(x[0], x[1]); });
  expect_bit_equal("sub", two, [](std::vector<Tensor>& x) { return ops::sub(x[0], x[1]); });
  expect_bit_equal("mul", two, [](std::vector<Tensor>& x) { return ops::mul(x[0], x[1]); });
  expect_bit_equal("scale", {{random_tensor({700}, 42)}},
                   [](std::vector<Tensor>& x) { return ops::scale(x[0], 0.37f); });
  expect_bit_equal("sum", {{random_tensor({1000}, 43)}},
                   [](std::vector<Tensor>& x) { return ops::sum(x[0]); });
  expect_bit_equal("mean", {{random_tensor({1000}, 44)}},
                   [](std::vector<Tensor>& x) { return ops::mean(x[0]); });
  const Tensor labels = random_labels(300, 10, 45);
  expect_bit_equal("softmax_cross_entropy",
                   {{random_tensor({300, 10}, 46, -4.0f, 4.0f)}, {labels, false}},
                   [](std::vector<Tensor>& x) { return ops::softmax_cross_entropy(x[0], x[1]); });
  expect_bit_equal(
      "softmax_cross_entropy, Keras's clipped form",
      {{random_tensor({300, 10}, 46, -20.0f, 20.0f)}, {labels, false}}, [](std::vector<Tensor>& x) {
        return ops::softmax_cross_entropy(x[0], x[1], detdl::CrossEntropyForm::keras_clipped);
      });
  expect_bit_equal(
      "binary_cross_entropy",
      {{random_tensor({300, 1}, 47, -4.0f, 4.0f)},
       {random_tensor({300, 1}, 48, 0.0f, 1.0f), false}},
      [](std::vector<Tensor>& x) { return ops::binary_cross_entropy(x[0], x[1], true); });
  expect_bit_equal("mean_squared_error",
                   {{random_tensor({300, 3}, 49)}, {random_tensor({300, 3}, 50), false}},
                   [](std::vector<Tensor>& x) { return ops::mean_squared_error(x[0], x[1]); });
  expect_bit_equal("l1 + l2 penalties (scaled upstream gradient)", {{random_tensor({40, 30}, 51)}},
                   [](std::vector<Tensor>& x) {
                     return ops::scale(
                         ops::add(ops::l1_penalty(x[0], 1e-3f), ops::l2_penalty(x[0], 1e-2f)),
                         3.0f);
                   });
  const Tensor logits = random_tensor({20, 7}, 52, -5.0f, 5.0f);
  const auto pc = ops::softmax(logits).to_vector();
  const auto pg = ops::softmax(logits.to(Device::cuda)).to_vector();
  EXPECT_EQ(std::memcmp(pc.data(), pg.data(), pc.size() * sizeof(float)), 0) << "softmax";
}

TEST(GpuEngine, GoldenCasesReproduceTheCpuHashesOnCuda) {
  SKIP_WITHOUT_GPU();
  std::ifstream in(std::string(DETDL_SOURCE_DIR) + "/tests/golden/hashes.json");
  ASSERT_TRUE(in.good());
  const auto want = nlohmann::json::parse(in);
  for (const auto& c : nets::golden_cases()) {
    ASSERT_TRUE(want.contains(c.name)) << c.name;
    EXPECT_EQ(nets::golden_hash(c, 1, Device::cuda), want[c.name].get<std::string>())
        << c.name << " on CUDA";
  }
}

// Every emulated family on the CUDA backend, each alone and all together (the `emulated`
// level), gives the CPU's bits: the same draws in the same order, the same plans, shapes,
// orders and formulas. At least one of them must move the weights off the canonical run
// (not inert).
TEST(GpuEngine, EmulatedFamiliesOnCudaGiveTheCpuBits) {
  SKIP_WITHOUT_GPU();
  std::vector<std::vector<ImplFamily>> sets;
  std::vector<ImplFamily> all;
  for (int f = 0; f < kImplFamilyCount; ++f) {
    sets.push_back({static_cast<ImplFamily>(f)});
    all.push_back(static_cast<ImplFamily>(f));
  }
  sets.push_back(all);
  int moved = 0;
  for (const auto& c : nets::golden_cases()) {
    if (c.name != "lenet5" && c.name != "resnet20" && c.name != "butter") continue;
    const std::string canonical = nets::golden_hash(c, 1, Device::cpu);
    for (const auto& families : sets) {
      nets::Experiment e = c.experiment;
      e.emulated_ops = families;
      e.seeds.impl = 11;
      const std::string cpu = nets::run_experiment(e).result.weight_hash;
      e.device = Device::cuda;
      const std::string gpu = nets::run_experiment(e).result.weight_hash;
      EXPECT_EQ(gpu, cpu) << c.name << " with " << families.size() << " families, first "
                          << impl_family_name(families[0]);
      moved += cpu != canonical;
    }
  }
  EXPECT_GT(moved, 0);
}

TEST(GpuEngine, RunWithMetricsAndResumeMatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  // lenet1 on 48 synthetic images, batch 16: 3 steps an epoch, 2 epochs, metrics on (the
  // golden cases run without them), then the same run stopped after 4 steps and resumed.
  nets::Experiment e = nets::golden_cases()[0].experiment;
  e.epochs = 2;
  e.metrics = true;
  const auto cpu = nets::run_experiment(e);
  e.device = Device::cuda;
  const auto gpu = nets::run_experiment(e);
  EXPECT_EQ(gpu.result.weight_hash, cpu.result.weight_hash);
  ASSERT_EQ(gpu.result.epochs.size(), cpu.result.epochs.size());
  for (std::size_t i = 0; i < cpu.result.epochs.size(); ++i) {
    const auto& c = cpu.result.epochs[i];
    const auto& g = gpu.result.epochs[i];
    EXPECT_EQ(std::memcmp(&c.train_loss, &g.train_loss, sizeof(float)), 0) << "epoch " << i;
    EXPECT_EQ(std::memcmp(&c.test.loss, &g.test.loss, sizeof(float)), 0) << "epoch " << i;
    EXPECT_EQ(std::memcmp(c.train_metrics.data(), g.train_metrics.data(), sizeof(c.train_metrics)),
              0)
        << "epoch " << i;
    EXPECT_EQ(std::memcmp(c.test.metrics.data(), g.test.metrics.data(), sizeof(c.test.metrics)), 0)
        << "epoch " << i;
    EXPECT_EQ(c.test.predictions, g.test.predictions) << "epoch " << i;
    EXPECT_EQ(c.weight_hash, g.weight_hash) << "epoch " << i;
  }
  // In the temporary folder, not the build folder: the device check runs binaries built on
  // another machine, whose build folder does not exist where they run.
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("detdl_gpu_resume_" + std::to_string(::getpid()) + ".safetensors"))
                               .string();
  std::remove(path.c_str());
  nets::RunOptions ro;
  ro.checkpoint_path = path;
  ro.stop_after_steps = 4;
  EXPECT_TRUE(nets::run_experiment(e, ro).result.stopped_early);
  ro.stop_after_steps = -1;
  ro.resume = true;
  EXPECT_EQ(nets::run_experiment(e, ro).result.weight_hash, cpu.result.weight_hash)
      << "resumed on CUDA";
  std::remove(path.c_str());
}

// Worst-case rounding bound for a sum of n terms of magnitude <= 1 computed in two orders
// (each within n * u * n of the exact sum, u = 2^-24).
float rounding_bound(std::int64_t n) {
  return 2.0f * static_cast<float>(n * n) * std::ldexp(1.0f, -24);
}

// The op on CUDA under --impl vendor (at `repeatable`) against the CPU's own kernels: within
// `tol` when cuDNN runs it, the very same bits where the engine must fall back.
void expect_vendor(const char* name, const std::vector<Input>& inputs,
                   const std::function<Tensor(std::vector<Tensor>&)>& op, float tol) {
  const auto c = run_on(Device::cpu, inputs, op);
  RunContext vendor = context();
  vendor.set_level(Level::repeatable);
  vendor.implementation = Implementation::vendor;
  std::vector<std::vector<float>> g;
  {
    ContextGuard guard(vendor);
    g = run_on(Device::cuda, inputs, op);
  }
  ASSERT_EQ(c.size(), g.size()) << name;
  for (std::size_t i = 0; i < c.size(); ++i) {
    ASSERT_EQ(c[i].size(), g[i].size()) << name << " result " << i;
    for (std::size_t k = 0; k < c[i].size(); ++k)
      if (!(std::fabs(c[i][k] - g[i][k]) <= tol)) {
        ADD_FAILURE() << name << ": result " << i << " element " << k << ": cpu " << c[i][k]
                      << " vendor " << g[i][k] << " tol " << tol;
        break;
      }
  }
}

TEST(GpuEngine, VendorOpsAreCloseToTheCpuAndFallBackWhereTheyMust) {
  SKIP_WITHOUT_GPU();
  if (!cuda_vendor_conv_available()) GTEST_SKIP() << "built without cuDNN";
  // cuDNN convolution: the longest sum is the weight gradient's N * OH * OW = 324 terms.
  expect_vendor(
      "conv2d pad 1 (cuDNN)",
      {{random_tensor({4, 3, 9, 9}, 10)},
       {random_tensor({6, 3, 3, 3}, 11)},
       {random_tensor({6}, 12)}},
      [](std::vector<Tensor>& x) {
        return ops::conv2d(x[0], x[1], x[2], {1, 1, false});
      },
      rounding_bound(4 * 9 * 9));
  // Keras 'same' stride 2 on an even size: asymmetric padding, the own kernels, CPU bits.
  expect_vendor(
      "conv2d same stride 2 (own fallback)",
      {{random_tensor({3, 2, 10, 10}, 13)}, {random_tensor({4, 2, 5, 5}, 14)}, {Tensor(), false}},
      [](std::vector<Tensor>& x) {
        return ops::conv2d(x[0], x[1], Tensor(), {2, 0, true});
      },
      0.0f);
  const std::vector<Input> bn{{random_tensor({4, 3, 5, 5}, 20)},
                              {random_tensor({3}, 21, 0.5f, 1.5f)},
                              {random_tensor({3}, 22)}};
  // cuDNN batch norm (PyTorch convention): statistics over 100 values, scaled by inv_std
  // (about 1.7 for uniform [-1, 1] data): 4x the bound leaves room.
  expect_vendor(
      "batch_norm (cuDNN)", bn,
      [](std::vector<Tensor>& x) {
        Tensor mean = Tensor::zeros({3}).to(x[0].device());
        Tensor var = Tensor::full({3}, 1.0f).to(x[0].device());
        return ops::batch_norm(x[0], x[1], x[2], mean, var, true, 0.1f, 1e-5f, /*unbiased=*/true);
      },
      4.0f * rounding_bound(100));
  // The Keras convention (biased running variance) cannot be expressed: own kernels, CPU bits.
  expect_vendor(
      "batch_norm biased (own fallback)", bn,
      [](std::vector<Tensor>& x) {
        Tensor mean = Tensor::zeros({3}).to(x[0].device());
        Tensor var = Tensor::full({3}, 1.0f).to(x[0].device());
        return ops::batch_norm(x[0], x[1], x[2], mean, var, true, 0.1f, 1e-5f, /*unbiased=*/false);
      },
      0.0f);
}

TEST(GpuEngine, VendorImplementationIsRepeatableAndCloseToTheCpu) {
  SKIP_WITHOUT_GPU();
  if (!cuda_vendor_conv_available()) GTEST_SKIP() << "built without cuDNN";
  // --impl vendor (cuBLAS matmul, cuDNN convolution) at `repeatable`: the deterministic
  // algorithms give the same bits twice; against the CPU's `portable` run only rounding
  // differs, so after 6 SGD steps of lenet1 the losses agree to a loose 1e-3 (relative).
  nets::Experiment e = nets::golden_cases()[0].experiment;
  e.epochs = 2;
  const auto cpu = nets::run_experiment(e);
  e.device = Device::cuda;
  e.level = Level::repeatable;
  e.implementation = Implementation::vendor;
  const auto a = nets::run_experiment(e);
  const auto b = nets::run_experiment(e);
  EXPECT_EQ(a.result.weight_hash, b.result.weight_hash) << "vendor repeatable run to run";
  ASSERT_EQ(a.result.epochs.size(), cpu.result.epochs.size());
  const float want = cpu.result.epochs.back().train_loss, got = a.result.epochs.back().train_loss;
  EXPECT_NEAR(got, want, 1e-3f * std::max(1.0f, std::fabs(want)));
}

}  // namespace
}  // namespace detdl
