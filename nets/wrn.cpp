#include "nets/wrn.h"

#include <stdexcept>
#include <string>

#include "nets/blocks.h"

namespace detdl::nets {

std::shared_ptr<Module> make_wrn(int depth, int widen, int classes, float dropout) {
  if (depth < 10 || (depth - 4) % 6 != 0)
    throw std::invalid_argument(
        "make_wrn: depth must be 6n+4 with n >= 1 (16, 22, 28, ...), got depth " +
        std::to_string(depth));
  if (widen < 1)
    throw std::invalid_argument("make_wrn: widen must be >= 1, got " + std::to_string(widen));
  if (classes < 1)
    throw std::invalid_argument("make_wrn: classes must be >= 1, got " + std::to_string(classes));
  if (!(dropout >= 0.0f && dropout < 1.0f))
    throw std::invalid_argument("make_wrn: dropout must be in [0, 1), got " +
                                std::to_string(dropout));
  const int blocks_per_group = (depth - 4) / 6;
  BatchNormSpec bn;
  bn.momentum = 0.9f;  // Keras momentum 0.1: the new batch statistic weighs 0.9
  bn.eps = 1.1e-5f;
  bn.unbiased_running_var = false;
  bn.gamma_init = InitSpec{InitKind::uniform, 0.0f, 1.0f};
  const InitSpec he_normal{InitKind::he_normal};

  auto m = std::make_shared<Sequential>();
  m->emplace<Conv2d>(3, 16, 3, ops::Conv2dOptions{1, 0, true}, false, he_normal);
  std::int64_t in = 16;
  for (int group = 0; group < 3; ++group) {
    const std::int64_t width = (std::int64_t{16} << group) * widen;
    for (int b = 0; b < blocks_per_group; ++b) {
      const std::int64_t stride = (group > 0 && b == 0) ? 2 : 1;
      m->emplace<WideBlock>(in, width, stride, dropout, bn);
      in = width;
    }
  }
  m->add(make_batch_norm(in, bn));
  m->emplace<Act>(Activation::relu);
  m->emplace<AvgPool2d>(ops::Pool2dOptions{8, 8, 0, false, false});  // 8x8 -> 1x1
  m->emplace<Flatten>();
  m->emplace<Linear>(in, classes, true, he_normal);
  return m;
}

}  // namespace detdl::nets
