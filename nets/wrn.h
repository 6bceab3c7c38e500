// Pre-activation wide residual network WRN-d-k (Zagoruyko & Komodakis), as in the
// dl-variance study's WRN-28-10 (Keras; bias-free convs, BN gamma U(0, 1)).
#pragma once
#include <memory>

#include "engine/nn.h"

namespace detdl::nets {

// depth = 6n + 4 (n blocks per group; else std::invalid_argument naming the depth),
// widen >= 1. stem conv3x3 3->16; groups of 16k, 32k, 64k channels (stride 1, 2, 2), each
// starting with a 1x1 projection where the width changes; head BN-ReLU-avgpool 8x8-dense.
// Convs bias-free, 'same' padding, he_normal; dense he_normal, zero bias; BN Keras
// momentum 0.1 (moving = 0.1 moving + 0.9 batch: 0.9 here), eps 1.1e-5, gamma U(0, 1),
// beta zeros, biased moving variance. dropout: between the two convs of each block.
// Input (N, 3, 32, 32) -> logits (N, classes).
std::shared_ptr<Module> make_wrn(int depth, int widen, int classes = 100, float dropout = 0.0f);

}  // namespace detdl::nets
