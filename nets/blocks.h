// Residual building blocks shared by the ResNet, WRN and BUTTER builders. Each block
// registers its children in the order the reference framework creates its layers, because
// that order keys the initialiser's Philox streams and the checkpoint layout.
#pragma once
#include <cstdint>
#include <memory>

#include "engine/nn.h"

namespace detdl::nets {

// Batch-norm settings, already in the engine's (PyTorch) momentum convention.
struct BatchNormSpec {
  float momentum = 0.01f;             // Keras momentum 0.99 = PyTorch 0.01
  float eps = 1e-3f;                  // Keras default
  bool unbiased_running_var = false;  // (ignored while keras_moving_stats)
  InitSpec gamma_init{InitKind::ones};
  // Keras 2.2.2's moving statistics: the variance scaled by n / (n - 1 - eps) and
  // zero-debiased averages (kernels/common/batchnorm_keras.h), as the study's models had.
  bool keras_moving_stats = true;
};

// A BatchNorm whose gamma uses spec.gamma_init (the WRN study draws gamma from U(0, 1)).
std::shared_ptr<BatchNorm> make_batch_norm(std::int64_t channels, const BatchNormSpec& spec);

// Keras CIFAR ResNet v1 basic block (post-activation):
//   y = BN(conv3x3(stride)) -> ReLU -> BN(conv3x3); shortcut = x, or a 1x1 conv (with bias,
//   no BN) of the given stride when the shape changes; out = ReLU(shortcut + y).
// Convolutions: 'same' padding (TensorFlow's, asymmetric at stride 2), bias, he_normal.
class ResNetV1Block final : public Module {
 public:
  ResNetV1Block(std::int64_t in, std::int64_t out, std::int64_t stride, const BatchNormSpec& bn);
  Tensor forward(const Tensor& x) override;  // x (N, in, H, W) -> (N, out, H/stride, W/stride)
  std::string kind() const override { return "ResNetV1Block"; }

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_, projection_;  // projection_ null: identity shortcut
  std::shared_ptr<BatchNorm> bn1_, bn2_;
};

// Pre-activation wide-ResNet block (Zagoruyko & Komodakis):
//   a = ReLU(BN(x)); y = conv3x3(stride)(a) -> BN -> ReLU -> [dropout] -> conv3x3;
//   out = y + x (in == out), or y + conv1x1(stride)(a) (in != out: the projection sees the
//   pre-activated input, as in the reference implementation).
// Convolutions: bias-free, 'same' padding, he_normal.
class WideBlock final : public Module {
 public:
  WideBlock(std::int64_t in, std::int64_t out, std::int64_t stride, float dropout,
            const BatchNormSpec& bn);
  Tensor forward(const Tensor& x) override;  // x (N, in, H, W) -> (N, out, H/stride, W/stride)
  std::string kind() const override { return "WideBlock"; }

 private:
  std::shared_ptr<BatchNorm> bn1_, bn2_;
  std::shared_ptr<Conv2d> conv1_, conv2_, projection_;  // projection_ null: identity shortcut
  std::shared_ptr<Dropout> dropout_;                    // null when p == 0
};

// BUTTER's residual dense layer: out = ReLU(x W^T + b) + x (the add after the activation,
// no projection). Glorot-uniform kernel, zero bias.
class ResidualDense final : public Module {
 public:
  explicit ResidualDense(std::int64_t width);
  Tensor forward(const Tensor& x) override;  // x (N, width) -> (N, width)
  std::string kind() const override { return "ResidualDense"; }

 private:
  std::shared_ptr<Linear> linear_;
};

}  // namespace detdl::nets
