#include "nets/golden.h"

namespace detdl::nets {

std::vector<GoldenCase> golden_cases() {
  // Small enough for CI (a few seconds in all), long enough that every layer's forward,
  // backward and update runs several times, with momentum state and the augmentation draws.
  auto base = [](const std::string& net, const std::string& data, std::int64_t batch) {
    Experiment e;
    e.net = net;
    e.data = data;
    e.epochs = 1;
    e.batch_size = batch;
    e.optimizer.kind = OptimizerConfig::Kind::sgd;
    e.optimizer.momentum = 0.9f;
    e.schedule.base_lr = 0.01f;
    e.metrics = false;
    e.seeds = {3, 4, 5, 6, 7, 8};
    return e;
  };
  std::vector<GoldenCase> cases;
  cases.push_back({"lenet1", base("lenet1", "synthetic-mnist:48", 16)});
  cases.push_back({"lenet4", base("lenet4", "synthetic-mnist:48", 16)});
  cases.push_back({"lenet5", base("lenet5", "synthetic-mnist:48", 16)});
  Experiment r20 = base("resnet20", "synthetic-cifar10:16", 8);
  r20.augment = "crop-flip";
  r20.optimizer.kind = OptimizerConfig::Kind::adam;
  r20.optimizer.keras_form = true;
  r20.optimizer.eps = 1e-7f;
  r20.schedule.base_lr = 1e-3f;
  r20.l2 = 1e-4f;
  cases.push_back({"resnet20", r20});
  Experiment r56 = base("resnet56", "synthetic-cifar10:16", 8);
  r56.l2 = 1e-4f;
  cases.push_back({"resnet56", r56});
  Experiment wrn = base("wrn-16-4", "synthetic-cifar100:16", 8);
  wrn.augment = "shift-reflect-flip:0.125";
  wrn.l2 = 5e-4f;
  cases.push_back({"wrn-16-4", wrn});
  Experiment butter = base("butter:rectangle_residual:4:2048", "blobs", 256);
  butter.optimizer.kind = OptimizerConfig::Kind::adam;
  butter.optimizer.keras_form = true;
  butter.optimizer.eps = 1e-7f;
  butter.schedule.base_lr = 1e-3f;
  cases.push_back({"butter", butter});
  return cases;
}

std::string golden_hash(const GoldenCase& c, int threads, Device device) {
  Experiment e = c.experiment;
  e.threads = threads;
  e.device = device;
  return run_experiment(e).result.weight_hash;
}

}  // namespace detdl::nets
