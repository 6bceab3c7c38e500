#include "nets/simple.h"

namespace detdl::nets {

std::shared_ptr<Sequential> make_mlp(std::int64_t in, std::int64_t hidden, std::int64_t classes,
                                     float dropout, OutputActivation output) {
  auto m = std::make_shared<Sequential>();
  m->emplace<Linear>(in, hidden, true, InitSpec{InitKind::he_uniform});
  m->emplace<Act>(Activation::relu);
  m->emplace<Linear>(hidden, hidden);
  m->emplace<Act>(Activation::tanh);
  if (dropout > 0.0f) m->emplace<Dropout>(dropout);
  m->emplace<Linear>(hidden, classes);
  if (output == OutputActivation::sigmoid)
    m->emplace<Act>(Activation::sigmoid, 0.0f, /*output=*/true);
  return m;
}

std::shared_ptr<Sequential> make_small_cnn(std::int64_t channels, std::int64_t classes,
                                           OutputActivation output) {
  auto m = std::make_shared<Sequential>();
  ops::Conv2dOptions same{1, 0, true};
  m->emplace<Conv2d>(channels, 8, 3, same, false, InitSpec{InitKind::he_normal});
  m->emplace<BatchNorm>(8);
  m->emplace<Act>(Activation::relu);
  m->emplace<MaxPool2d>(ops::Pool2dOptions{2, 2, 0, false, false});
  m->emplace<Conv2d>(8, 16, 3, ops::Conv2dOptions{2, 0, true});
  m->emplace<Act>(Activation::elu, 1.0f);
  m->emplace<GlobalAvgPool>();
  m->emplace<Linear>(16, classes);
  if (output == OutputActivation::sigmoid)
    m->emplace<Act>(Activation::sigmoid, 0.0f, /*output=*/true);
  return m;
}

}  // namespace detdl::nets
