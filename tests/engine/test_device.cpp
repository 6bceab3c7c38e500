// Device plumbing that needs no GPU: the device of a tensor comes from its allocator, host
// accessors refuse a device tensor, ops refuse inputs on different devices, and asking for
// CUDA where it cannot run (a build without CUDA, or no device) is a clear error, never a
// crash. A stand-in allocator that reports Device::cuda (but hands out host memory) plays
// the device tensor, so nothing here touches the CUDA runtime. The GPU side (bit-equal
// results) is tests/gpu/test_gpu_engine.cpp.
#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "engine/autograd.h"
#include "engine/cuda_backend.h"
#include "engine/nn.h"
#include "engine/optim.h"
#include "engine/ops/ops.h"
#include "engine/ops/registry.h"
#include "engine/train.h"

namespace detdl {
namespace {

// Host memory labelled as a CUDA device: only for checks that never dereference it as
// device memory (device(), the host-accessor guard, the same-device check).
class LabelledCudaAllocator final : public Allocator {
 public:
  void* allocate(std::size_t bytes) override { return std::malloc(bytes ? bytes : 1); }
  void deallocate(void* p, std::size_t) override { std::free(p); }
  Device device() const override { return Device::cuda; }
};

LabelledCudaAllocator& labelled() {
  static LabelledCudaAllocator a;
  return a;
}

bool message_has(const std::exception& e, const std::string& s) {
  return std::string(e.what()).find(s) != std::string::npos;
}

TEST(Device, TensorsAreOnTheHostByDefaultAndToTheHostAliases) {
  Tensor t = Tensor::from_vector({3}, {1.0f, 2.0f, 3.0f});
  EXPECT_EQ(t.device(), Device::cpu);
  EXPECT_TRUE(t.to(Device::cpu).same(t));  // no copy when already there
  EXPECT_EQ(t.data_f32(), t.f32());
  Tensor c = t.clone();
  EXPECT_FALSE(c.same(t));
  EXPECT_EQ(c.to_vector(), t.to_vector());
  t.move_to(Device::cpu);  // a no-op on the host: the data stays
  EXPECT_EQ(t.to_vector(), (std::vector<float>{1.0f, 2.0f, 3.0f}));
}

TEST(Device, ParseDeviceNamesTheOptionOnBadInput) {
  EXPECT_EQ(parse_device("cpu", "--device"), Device::cpu);
  EXPECT_EQ(parse_device("cuda", "--device"), Device::cuda);
  try {
    parse_device("gpu", "--device");
    FAIL() << "no throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(message_has(e, "--device")) << e.what();
    EXPECT_TRUE(message_has(e, "gpu")) << e.what();
  }
}

TEST(Device, HostAccessorsRefuseADeviceTensorButTheRawPointerIsThere) {
  Tensor d = Tensor::empty({4}, DType::f32, labelled());
  EXPECT_EQ(d.device(), Device::cuda);
  EXPECT_NE(d.data_f32(), nullptr);
  try {
    (void)d.f32();
    FAIL() << "f32() of a device tensor did not throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(message_has(e, "cuda")) << e.what();
    EXPECT_TRUE(message_has(e, "to(Device::cpu)")) << e.what();
  }
  Tensor di = Tensor::empty({4}, DType::i32, labelled());
  EXPECT_THROW((void)di.i32(), std::invalid_argument);
  EXPECT_NE(di.data_i32(), nullptr);
  EXPECT_THROW((void)di.data_f32(), std::invalid_argument);  // the dtype is still checked
}

TEST(Device, OpsRefuseInputsOnDifferentDevices) {
  Tensor h = Tensor::full({2, 3}, 1.0f);
  Tensor d = Tensor::empty({2, 3}, DType::f32, labelled());
  try {
    ops::add(h, d);
    FAIL() << "add across devices did not throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(message_has(e, "add")) << e.what();
    EXPECT_TRUE(message_has(e, "different devices")) << e.what();
  }
  Tensor w = Tensor::full({4, 3}, 0.5f);
  EXPECT_THROW(ops::linear(d, w, Tensor()), std::invalid_argument);
  EXPECT_THROW(ops::matmul(h, Tensor::empty({3, 2}, DType::f32, labelled())),
               std::invalid_argument);
  EXPECT_EQ(same_device({h, Tensor(), w}, "x"), Device::cpu);  // undefined tensors are skipped
  EXPECT_EQ(same_device({d}, "x"), Device::cuda);
}

TEST(Device, EveryOpHasACudaPath) {
  // The registry names where each op's CUDA kernel lives; an op without one would throw
  // (or worse) on a CUDA tensor, so every row must name one.
  for (const OpInfo& op : kOps) EXPECT_STRNE(op.cuda_kernel, "") << op.name;
}

TEST(Device, DataSetsMustStayOnTheHost) {
  Dataset data{Tensor::empty({4, 2}, DType::f32, labelled()),
               Tensor::from_vector_i32({4}, {0, 1, 0, 1})};
  EXPECT_THROW(slice_rows(data, 0, 2), std::invalid_argument);
}

// Everything below asks for the real CUDA backend: where it can run, there is nothing
// to check here (tests/gpu/ covers it).
class NoCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (gpu::available())
      GTEST_SKIP() << "a CUDA device is available: the no-device errors cannot be provoked";
  }
};

TEST_F(NoCuda, RequireNamesWhatAskedAndWhy) {
  try {
    gpu::require("--device cuda");
    FAIL() << "require did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(message_has(e, "--device cuda")) << e.what();
#ifndef DETDL_HAVE_CUDA
    EXPECT_TRUE(message_has(e, "built without CUDA")) << e.what();
#else
    EXPECT_TRUE(message_has(e, "CUDA device")) << e.what();
#endif
  }
}

TEST_F(NoCuda, CudaTensorsModulesAndTrainingThrowCleanly) {
  EXPECT_THROW(Tensor::empty_on(Device::cuda, {2}), std::runtime_error);
  EXPECT_THROW(Tensor::full({2}, 1.0f).to(Device::cuda), std::runtime_error);
  Sequential net;
  net.add(std::make_shared<Linear>(3, 2));
  net.initialize(7);
  const std::string before = weight_hash(net);
  EXPECT_THROW(net.to(Device::cuda), std::runtime_error);
  EXPECT_EQ(net.device(), Device::cpu);
  EXPECT_EQ(weight_hash(net), before);  // a failed move leaves the module as it was

  Dataset data{Tensor::full({4, 3}, 0.5f), Tensor::from_vector_i32({4}, {0, 1, 0, 1})};
  TrainConfig cfg;
  cfg.device = Device::cuda;
  cfg.metrics = false;
  Trainer trainer(net, cfg);
  try {
    trainer.fit(data, nullptr);
    FAIL() << "training on cuda did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(message_has(e, "cuda")) << e.what();
  }
  EXPECT_EQ(net.device(), Device::cpu);
}

TEST(Device, ModuleAndOptimizerMovesToTheHostKeepTheBits) {
  // On the host the device path is the identity: a run with device = cpu set explicitly
  // gives the default run's hash, and Module::to / Optimizer::to(cpu) change nothing.
  auto make = [] {
    auto net = std::make_shared<Sequential>();
    net->add(std::make_shared<Linear>(3, 4));
    net->add(std::make_shared<Linear>(4, 2));
    return net;
  };
  Dataset data{Tensor::from_vector({4, 3}, {0.1f, 0.2f, 0.3f, -0.4f, 0.5f, 0.6f, 0.7f, -0.8f, 0.9f,
                                            1.0f, 1.1f, -1.2f}),
               Tensor::from_vector_i32({4}, {0, 1, 0, 1})};
  TrainConfig cfg;
  cfg.epochs = 2;
  cfg.batch_size = 2;
  cfg.optimizer.kind = OptimizerConfig::Kind::adam;
  auto a = make();
  const std::string ha = Trainer(*a, cfg).fit(data, nullptr).weight_hash;
  auto b = make();
  cfg.device = Device::cpu;
  Trainer tb(*b, cfg);
  const std::string hb = tb.fit(data, nullptr).weight_hash;
  EXPECT_EQ(ha, hb);
  b->to(Device::cpu);
  EXPECT_EQ(weight_hash(*b), hb);
  EXPECT_EQ(b->device(), Device::cpu);
}

}  // namespace
}  // namespace detdl
