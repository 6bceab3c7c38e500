#include "nets/blocks.h"

namespace detdl::nets {

std::shared_ptr<BatchNorm> make_batch_norm(std::int64_t channels, const BatchNormSpec& spec) {
  return std::make_shared<BatchNorm>(channels, spec.momentum, spec.eps, spec.unbiased_running_var,
                                     spec.gamma_init, spec.keras_moving_stats);
}

namespace {

const InitSpec kHeNormal{InitKind::he_normal};

ops::Conv2dOptions same_padding(std::int64_t stride) { return ops::Conv2dOptions{stride, 0, true}; }

}  // namespace

ResNetV1Block::ResNetV1Block(std::int64_t in, std::int64_t out, std::int64_t stride,
                             const BatchNormSpec& bn) {
  // Keras creation order: conv, BN, conv, BN, then the projection.
  conv1_ = std::make_shared<Conv2d>(in, out, 3, same_padding(stride), true, kHeNormal);
  add_child("conv1", conv1_);
  bn1_ = make_batch_norm(out, bn);
  add_child("bn1", bn1_);
  conv2_ = std::make_shared<Conv2d>(out, out, 3, same_padding(1), true, kHeNormal);
  add_child("conv2", conv2_);
  bn2_ = make_batch_norm(out, bn);
  add_child("bn2", bn2_);
  if (stride != 1 || in != out) {
    projection_ = std::make_shared<Conv2d>(in, out, 1, same_padding(stride), true, kHeNormal);
    add_child("shortcut", projection_);
  }
}

Tensor ResNetV1Block::forward(const Tensor& x) {
  Tensor y = ops::relu(bn1_->forward(conv1_->forward(x)));
  y = bn2_->forward(conv2_->forward(y));
  const Tensor shortcut = projection_ ? projection_->forward(x) : x;
  return ops::relu(ops::add(shortcut, y));
}

WideBlock::WideBlock(std::int64_t in, std::int64_t out, std::int64_t stride, float dropout,
                     const BatchNormSpec& bn) {
  bn1_ = make_batch_norm(in, bn);
  add_child("bn1", bn1_);
  conv1_ = std::make_shared<Conv2d>(in, out, 3, same_padding(stride), false, kHeNormal);
  add_child("conv1", conv1_);
  bn2_ = make_batch_norm(out, bn);
  add_child("bn2", bn2_);
  if (dropout > 0.0f) {
    dropout_ = std::make_shared<Dropout>(dropout);
    add_child("dropout", dropout_);
  }
  conv2_ = std::make_shared<Conv2d>(out, out, 3, same_padding(1), false, kHeNormal);
  add_child("conv2", conv2_);
  if (stride != 1 || in != out) {
    projection_ = std::make_shared<Conv2d>(in, out, 1, same_padding(stride), false, kHeNormal);
    add_child("shortcut", projection_);
  }
}

Tensor WideBlock::forward(const Tensor& x) {
  const Tensor a = ops::relu(bn1_->forward(x));
  Tensor y = ops::relu(bn2_->forward(conv1_->forward(a)));
  if (dropout_) y = dropout_->forward(y);
  y = conv2_->forward(y);
  return ops::add(projection_ ? projection_->forward(a) : x, y);
}

ResidualDense::ResidualDense(std::int64_t width) {
  linear_ = std::make_shared<Linear>(width, width);
  add_child("linear", linear_);
}

Tensor ResidualDense::forward(const Tensor& x) {
  return ops::add(ops::relu(linear_->forward(x)), x);
}

}  // namespace detdl::nets
