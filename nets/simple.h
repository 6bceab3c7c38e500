// Small models for the engine's own tests and the default main job: an MLP and a small
// CNN that between them use every layer kind of the engine.
#pragma once
#include <memory>

#include "engine/nn.h"

namespace detdl::nets {

// in -> hidden (ReLU) -> hidden (tanh, dropout) -> classes.
std::shared_ptr<Sequential> make_mlp(std::int64_t in, std::int64_t hidden, std::int64_t classes,
                                     float dropout = 0.0f);

// (C, S, S) images: conv3x3 same -> BN -> ReLU -> maxpool2 -> conv3x3 stride 2 same -> ELU
// -> avgpool(global) -> linear -> classes.
std::shared_ptr<Sequential> make_small_cnn(std::int64_t channels, std::int64_t classes);

}  // namespace detdl::nets
