// Every net of the zoo paired with every task it takes (multi-class, binary, regression)
// and the loss of that task: a few steps on a small set must lower the loss on it. Before
// the head followed the loss, an MLP trained with binary cross-entropy (computed on
// probabilities) had no sigmoid: its outputs were clamped to [eps, 1 - eps], the gradient
// was zero, and the loss (and the weight hash) never moved.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "engine/train.h"
#include "nets/compat.h"
#include "nets/data/registry.h"
#include "nets/experiment.h"
#include "nets/synthetic.h"

namespace detdl::nets {
namespace {

using data::DataBundle;
using data::Task;

DataBundle with_targets(DataBundle b, Task task, const Tensor& labels, std::int64_t classes) {
  b.task = task;
  b.outputs = task == Task::multiclass ? classes : 1;
  b.loss = task == Task::multiclass ? LossKind::softmax_ce
           : task == Task::binary   ? LossKind::bce
                                    : LossKind::mse;
  if (task == Task::multiclass) {
    b.train.y = labels;
    b.test = b.train;
    return b;
  }
  // binary: the lower half of the classes -> 1; regression: the class scaled to [0, 1].
  const std::int64_t n = labels.numel();
  b.train.y = Tensor::empty({n, 1});
  for (std::int64_t i = 0; i < n; ++i) {
    const float c = static_cast<float>(labels.i32()[i]);
    b.train.y.f32()[i] = task == Task::binary ? (c < classes / 2 ? 1.0f : 0.0f)
                                              : c / static_cast<float>(classes - 1);
  }
  b.test = b.train;
  return b;
}

DataBundle table(Task task) {
  DataBundle b;
  b.name = "blobs-" + std::string(data::task_name(task));
  const Dataset all = make_blobs(128, 6, 4, 1.0f, /*seed=*/3);
  b.sample_shape = {6};
  b.train.x = all.x;
  return with_targets(b, task, all.y, 4);
}

DataBundle images(Task task) {
  DataBundle b;
  b.name = "bars-" + std::string(data::task_name(task));
  const Dataset all = make_bar_images(96, 1, 8, 6, /*seed=*/3);
  b.sample_shape = {1, 8, 8};
  b.train.x = all.x;
  return with_targets(b, task, all.y, 6);
}

DataBundle named(const std::string& spec, std::int64_t rows) {
  DataBundle b = *data::load_data(spec);
  b.train = slice_rows(b.train, 0, rows);
  return b;
}

// Trains `net` for a few epochs with the data set's own loss: the mean training loss of the
// last epoch must be below `factor` times the first epoch's. (Training losses, not an eval
// before and after: with a handful of steps, batch norm's running statistics are not yet
// the batches', and an eval-mode loss says little about the steps.)
void expect_learns(const std::string& net, const DataBundle& d, std::int64_t epochs, float lr,
                   float factor) {
  SCOPED_TRACE(net + " on " + d.name + " (" + std::string(loss_name(d.loss)) + ")");
  NetSpec spec = make_fitting_net(net, d, "auto");
  TrainConfig cfg;
  cfg.epochs = epochs;
  cfg.batch_size = 16;
  cfg.loss = d.loss;
  cfg.optimizer.kind = OptimizerConfig::Kind::adam;
  cfg.schedule.base_lr = lr;
  cfg.metrics = false;
  cfg.init_seed = 5;
  const TrainResult r = Trainer(*spec.model, cfg).fit(d.train, nullptr);
  const float first = r.epochs.front().train_loss, last = r.epochs.back().train_loss;
  EXPECT_TRUE(std::isfinite(last));
  EXPECT_LT(last, factor * first) << "training loss " << first << " (epoch 1) -> " << last
                                  << " (epoch " << epochs << ")";
}

TEST(NetHeads, TabularNetsLearnEveryTask) {
  for (Task task : {Task::multiclass, Task::binary, Task::regression}) {
    expect_learns("mlp:16", table(task), 6, 1e-2f, 0.8f);
    expect_learns("butter:rectangle:3:512", table(task), 6, 1e-2f, 0.8f);
    expect_learns("butter:rectangle_residual:4:512", table(task), 6, 1e-2f, 0.8f);
  }
}

TEST(NetHeads, SmallCnnLearnsEveryTask) {
  for (Task task : {Task::multiclass, Task::binary, Task::regression})
    expect_learns("cnn", images(task), 6, 1e-2f, 0.8f);
}

TEST(NetHeads, ClassifiersLearnTheirTask) {
  expect_learns("mlp:16", named("synthetic-mnist:32", 32), 4, 1e-3f, 0.9f);  // images, flattened
  for (const std::string net : {"lenet1", "lenet4", "lenet5"})
    expect_learns(net, named("synthetic-mnist:32", 32), 4, 1e-3f, 0.9f);
  expect_learns("resnet20", named("synthetic-cifar10:16", 16), 4, 1e-3f, 1.0f);
  expect_learns("wrn-10-1", named("synthetic-cifar10:16", 16), 4, 1e-3f, 1.0f);
}

TEST(NetHeads, BinaryCrossEntropyNetsEndInASigmoid) {
  // Outputs are probabilities whatever the input: the loss is computed on them.
  for (const std::string net : {"mlp:16", "butter:rectangle:3:512"}) {
    NetSpec spec = make_fitting_net(net, table(Task::binary), "auto");
    spec.model->initialize(1);
    Tensor x = Tensor::full({3, 6}, 100.0f);
    x.f32()[0] = -100.0f;
    const Tensor out = spec.model->forward(x);
    for (std::int64_t i = 0; i < out.numel(); ++i) {
      EXPECT_GE(out.f32()[i], 0.0f) << net;
      EXPECT_LE(out.f32()[i], 1.0f) << net;
    }
  }
}

TEST(NetHeads, MlpLearnsTheBinaryAdultSet) {
  // The run: `--net mlp --data adult` printed the same hash every epoch and the
  // majority class's accuracy (76%).
  Experiment e;
  e.net = "mlp";
  e.data = "adult";
  e.data_dir = std::string(DETDL_SHARED_DIR) + "/data";
  e.epochs = 2;
  e.batch_size = 256;
  e.optimizer.momentum = 0.9f;
  e.schedule.base_lr = 0.05f;
  e.metrics = false;
  const RunOutput out = run_experiment(e);
  ASSERT_EQ(out.result.epochs.size(), 2u);
  EXPECT_NE(out.result.epochs[0].weight_hash, out.result.epochs[1].weight_hash);
  EXPECT_LT(out.result.epochs[1].train_loss, out.result.epochs[0].train_loss);
  EXPECT_GT(out.result.epochs[1].test.accuracy, 0.8f);
}

}  // namespace
}  // namespace detdl::nets
