// The Keras CIFAR ResNet v1 (keras.io example "resnet_v1"), as used by the dl-variance
// study for ResNet-38 and ResNet-56.
#pragma once
#include <memory>

#include "engine/nn.h"

namespace detdl::nets {

// depth = 6n + 2 (n basic blocks per stage; else std::invalid_argument naming the depth).
// stem conv3x3(16)-BN-ReLU; stages of 16, 32, 64 filters (stride 2 and a 1x1 projection in
// the first block of stages 2 and 3); head avgpool 8x8 -> flatten -> dense.
// Convs: 'same', with bias, he_normal; dense he_normal, zero bias; BN Keras defaults
// (momentum 0.99, i.e. 0.01 here; eps 1e-3; biased moving variance).
// Input (N, 3, 32, 32) -> logits (N, classes).
std::shared_ptr<Module> make_resnet_v1(int depth, int classes = 10);

}  // namespace detdl::nets
