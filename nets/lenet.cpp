#include "nets/lenet.h"

#include <stdexcept>
#include <string>
#include <vector>

namespace detdl::nets {

std::shared_ptr<Module> make_lenet(int variant, LenetOptions o) {
  if (variant != 1 && variant != 4 && variant != 5)
    throw std::invalid_argument("make_lenet: variant must be 1, 4 or 5, got " +
                                std::to_string(variant));
  // The study initialises every weight and bias from U[-0.5, 0.5); Keras would use
  // Glorot-uniform kernels and zero biases.
  const InitSpec kernel_init =
      o.study_init ? InitSpec{InitKind::uniform, -0.5f, 0.5f} : InitSpec{InitKind::glorot_uniform};
  const InitSpec bias_init =
      o.study_init ? InitSpec{InitKind::uniform, -0.5f, 0.5f} : InitSpec{InitKind::zeros};
  const ops::Conv2dOptions conv_opt =
      o.classic ? ops::Conv2dOptions{1, 0, false} : ops::Conv2dOptions{1, 0, true};
  const ops::Pool2dOptions pool{2, 2, 0, false, false};  // Keras MaxPooling2D() defaults

  const std::int64_t c1 = variant == 1 ? 4 : 6;
  const std::int64_t c2 = variant == 1 ? 12 : 16;
  // Spatial size after two (conv, pool 2) stages: 28 -> 14 -> 7 ('same');
  // 32 -> 28 -> 14 -> 10 -> 5 (valid 5x5).
  const std::int64_t side = o.classic ? 5 : 7;
  std::vector<std::int64_t> dense;  // hidden dense widths
  if (variant == 4) dense = {84};
  if (variant == 5) dense = {120, 84};

  auto m = std::make_shared<Sequential>();
  m->emplace<Conv2d>(1, c1, 5, conv_opt, true, kernel_init, bias_init);
  m->emplace<Act>(Activation::relu);
  m->emplace<MaxPool2d>(pool);
  m->emplace<Conv2d>(c1, c2, 5, conv_opt, true, kernel_init, bias_init);
  m->emplace<Act>(Activation::relu);
  m->emplace<MaxPool2d>(pool);
  m->emplace<Flatten>();
  std::int64_t in = c2 * side * side;
  for (const std::int64_t units : dense) {
    m->emplace<Linear>(in, units, true, kernel_init, bias_init);
    m->emplace<Act>(Activation::relu);
    in = units;
  }
  m->emplace<Linear>(in, 10, true, kernel_init, bias_init);
  return m;
}

}  // namespace detdl::nets
