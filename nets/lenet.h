// The dl-variance study's LeNet-1, LeNet-4 and LeNet-5 (Keras models, 'same' padding on
// 28x28 MNIST), and LeCun's original layout (valid padding on 32x32) as an option.
#pragma once
#include <memory>

#include "engine/nn.h"

namespace detdl::nets {

struct LenetOptions {
  bool study_init = true;  // the study's U[-0.5, 0.5) on every weight and bias; false: Keras
                           // defaults (Glorot-uniform kernels, zero biases)
  bool classic = false;    // LeCun's original layout (valid padding on 32x32 input) instead
                           // of the study's 'same' variant
};

// variant 1:  conv 4@5x5 ReLU -> maxpool 2 -> conv 12@5x5 ReLU -> maxpool 2 -> dense 10
// variant 4:  conv 6@5x5 ... conv 16@5x5 ... -> dense 84 ReLU -> dense 10
// variant 5:  conv 6@5x5 ... conv 16@5x5 ... -> dense 120 ReLU -> dense 84 ReLU -> dense 10
// Input (N, 1, 28, 28) (classic: (N, 1, 32, 32)); output logits (N, 10) (no softmax: the
// engine's softmax cross-entropy takes logits). The classic layout keeps ReLU, max pooling
// and full C3 connectivity: only the padding and the input size change.
// Throws std::invalid_argument for any other variant.
std::shared_ptr<Module> make_lenet(int variant, LenetOptions o = {});

}  // namespace detdl::nets
