// Models by name, built for a data set's shapes. One place that maps the names the CLI,
// the study files and the tests use to the builders of nets/ (docs/cli.md lists them):
//   mlp[:HIDDEN]            the engine's test MLP
//   cnn                     the engine's small test CNN
//   lenet1, lenet4, lenet5  the dl-variance study's LeNets ('same' padding, U[-0.5, 0.5) init)
//   lenetN:keras            the same layers with Keras's default init (Glorot kernels, zero biases)
//   lenetN:classic          LeCun's original layout (valid padding, 32x32 input)
//   resnetD                 Keras CIFAR ResNet v1, D = 6n+2 (resnet20, resnet38, resnet56)
//   wrn-D-K[:DROPOUT]       pre-activation wide ResNet (wrn-28-10, wrn-16-4)
//   butter:SHAPE:DEPTH:SIZE BUTTER's dense shapes (rectangle, trapezoid, exponential,
//                           wide_first_2x..16x, rectangle_residual)
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/nn.h"
#include "nets/data/registry.h"

namespace detdl::nets {

struct NetSpec {
  std::shared_ptr<Module> model;
  std::string name;
  std::string description;  // layers in a few words, e.g. the BUTTER widths
  // The study's choice of parameters for the L2 / L1 loss term (empty: every weight tensor).
  std::function<bool(const NamedTensor&)> penalize;
  // Net-specific facts for the run record's "net" object (BUTTER: the target size, the
  // parameters built, their relative distance and the README's 20% rule); null for others.
  nlohmann::json info;
};

// The net `name` for the data set's shapes, with the output layer `loss` needs: logits for
// softmax_ce; a sigmoid for bce (computed on probabilities, as Keras does); for mse the
// values themselves, except BUTTER's nets, which keep BUTTER's (Keras's) sigmoid for every
// non-multi-class task. The mlp flattens image rows. Throws std::invalid_argument naming the
// net for an unknown name or one that does not fit the data set (e.g. LeNet on 3-channel
// images, a classifier with a loss other than softmax_ce);
// nets/compat.h checks the same before with messages naming the data set and loss too.
NetSpec make_net(const std::string& name, const data::DataBundle& data, LossKind loss);
// make_net(name, data, data.loss): the data set's own loss.
NetSpec make_net(const std::string& name, const data::DataBundle& data);

std::vector<std::string> known_net_names();

}  // namespace detdl::nets
