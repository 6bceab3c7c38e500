// Whether a net, a data set and a loss can train together, checked before anything is
// built or trained, so that a mismatch is refused with a message naming all three rather
// than found deep inside an op ("pool2d_shape: KH must be ...", two tensor shapes).
//
// The rules (docs/nets.md, "Which nets, data sets and losses fit"):
//   net x data: mlp takes any rows (images are flattened); butter:* takes flat (tabular)
//     rows; cnn takes C x H x W images of at least 2x2 (its 2x2 max pooling);
//     lenetN takes 1x28x28 images (lenetN:classic 1x32x32) with 10 classes; resnetD and
//     wrn-D-K take 3x32x32 images with class labels.
//   loss x data: softmax_ce needs class labels (a multi-class set); bce needs float targets
//     in [0, 1], one output per target (binary, [0, 1]-scaled regression, multi-label 0/1);
//     mse needs float targets of the output's shape (not class labels).
//   net x loss: the classifiers (lenet, resnet, wrn) train with softmax_ce only; mlp, cnn
//     and butter get the output layer the loss needs (nets/zoo.h).
#pragma once
#include <string>

#include "engine/train.h"
#include "nets/data/registry.h"
#include "nets/zoo.h"

namespace detdl::nets {

// The loss a run trains with: "softmax_ce", "keras_ce" (Keras's clipped categorical
// cross-entropy, engine/dataset.h), "bce", "mse", or "auto" for the data set's own
// (softmax_ce for class labels, bce for binary, mse for regression). Throws
// std::invalid_argument for any other name.
LossKind resolve_loss(const std::string& loss, const data::DataBundle& data);

// Throws std::invalid_argument with a message naming the net, the data set and (where the
// loss is the problem) the loss, e.g. "--net cnn does not fit --data X: images are 1x1,
// cnn needs at least 2x2". `loss` is the experiment's name for it ("auto" included). Net
// names it does not know are left to make_net (which lists the known ones).
void check_fits(const std::string& net, const data::DataBundle& data, const std::string& loss);

// check_fits, then make_net with the output layer the resolved loss needs.
NetSpec make_fitting_net(const std::string& net, const data::DataBundle& data,
                         const std::string& loss);

}  // namespace detdl::nets
