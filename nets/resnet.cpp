#include "nets/resnet.h"

#include <stdexcept>
#include <string>

#include "nets/blocks.h"

namespace detdl::nets {

std::shared_ptr<Module> make_resnet_v1(int depth, int classes) {
  if (depth < 8 || (depth - 2) % 6 != 0)
    throw std::invalid_argument(
        "make_resnet_v1: depth must be 6n+2 with n >= 1 (20, 32, 38, 56, ...), got depth " +
        std::to_string(depth));
  if (classes < 1)
    throw std::invalid_argument("make_resnet_v1: classes must be >= 1, got " +
                                std::to_string(classes));
  const int blocks_per_stage = (depth - 2) / 6;
  const BatchNormSpec bn{};  // Keras defaults
  const InitSpec he_normal{InitKind::he_normal};

  auto m = std::make_shared<Sequential>();
  m->emplace<Conv2d>(3, 16, 3, ops::Conv2dOptions{1, 0, true}, true, he_normal);
  m->add(make_batch_norm(16, bn));
  m->emplace<Act>(Activation::relu);
  std::int64_t in = 16;
  for (int stage = 0; stage < 3; ++stage) {
    const std::int64_t filters = std::int64_t{16} << stage;
    for (int b = 0; b < blocks_per_stage; ++b) {
      const std::int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
      m->emplace<ResNetV1Block>(in, filters, stride, bn);
      in = filters;
    }
  }
  m->emplace<AvgPool2d>(ops::Pool2dOptions{8, 8, 0, false, false});  // 8x8 -> 1x1
  m->emplace<Flatten>();
  m->emplace<Linear>(in, classes, true, he_normal);
  return m;
}

}  // namespace detdl::nets
