// Small models for the engine's own tests and the default main job: an MLP and a small
// CNN that between them use every layer kind of the engine.
#pragma once
#include <memory>

#include "engine/nn.h"

namespace detdl::nets {

// What the last layer's outputs are: logits or values (softmax cross-entropy takes logits,
// mean squared error takes values) or probabilities through a sigmoid (binary
// cross-entropy takes probabilities, as Keras's does).
enum class OutputActivation { none, sigmoid };

// in -> hidden (ReLU) -> hidden (tanh, dropout) -> classes [-> sigmoid].
std::shared_ptr<Sequential> make_mlp(std::int64_t in, std::int64_t hidden, std::int64_t classes,
                                     float dropout = 0.0f,
                                     OutputActivation output = OutputActivation::none);

// (C, H, W) images: conv3x3 same -> BN -> ReLU -> maxpool2 -> conv3x3 stride 2 same -> ELU
// -> avgpool(global) -> linear -> classes [-> sigmoid]. The pooling needs H, W >= 2.
std::shared_ptr<Sequential> make_small_cnn(std::int64_t channels, std::int64_t classes,
                                           OutputActivation output = OutputActivation::none);
inline constexpr std::int64_t kSmallCnnMinImageSize = 2;

}  // namespace detdl::nets
