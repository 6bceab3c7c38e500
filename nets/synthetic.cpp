#include "nets/synthetic.h"

#include <stdexcept>

#include "kernels/common/philox.h"
#include "kernels/common/random.h"

namespace detdl::nets {

Dataset make_blobs(std::int64_t n, std::int64_t features, std::int64_t classes, float spread,
                   std::uint64_t seed) {
  if (n < 1 || features < 1 || classes < 2)
    throw std::invalid_argument("make_blobs: need n >= 1, features >= 1, classes >= 2");
  Dataset d{Tensor::empty({n, features}), Tensor::empty({n}, DType::i32)};
  // sub 0: centres; sub 1: labels; sub 2: noise.
  std::vector<float> centre(static_cast<std::size_t>(classes * features));
  for (std::int64_t i = 0; i < classes * features; ++i)
    centre[i] = -2.0f + 4.0f * philox_uniform(seed, RandomStream::synthetic, 0,
                                              static_cast<std::uint64_t>(i));
  float* x = d.x.f32();
  std::int32_t* y = d.y.i32();
  for (std::int64_t i = 0; i < n; ++i) {
    const auto c = static_cast<std::int32_t>(
        (static_cast<std::uint64_t>(philox_u32(seed, RandomStream::synthetic, 1, i)) * classes) >>
        32);
    y[i] = c;
    for (std::int64_t j = 0; j < features; ++j)
      x[i * features + j] = centre[c * features + j] +
                            spread * philox_normal(seed, RandomStream::synthetic, 2,
                                                   static_cast<std::uint64_t>(i * features + j));
  }
  return d;
}

Dataset make_bar_images(std::int64_t n, std::int64_t channels, std::int64_t size,
                        std::int64_t classes, std::uint64_t seed) {
  if (n < 1 || channels < 1 || size < 4 || classes < 2 || classes > 4 * size)
    throw std::invalid_argument(
        "make_bar_images: need n >= 1, channels >= 1, size >= 4, 2 <= classes <= 4*size");
  Dataset d{Tensor::empty({n, channels, size, size}), Tensor::empty({n}, DType::i32)};
  float* x = d.x.f32();
  std::int32_t* y = d.y.i32();
  const std::int64_t plane = size * size;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto c = static_cast<std::int32_t>(
        (static_cast<std::uint64_t>(philox_u32(seed, RandomStream::synthetic, 1, i)) * classes) >>
        32);
    y[i] = c;
    // Even classes: a horizontal bar at row (c/2)*size/classes*2; odd: a vertical one.
    const std::int64_t pos = (c / 2) * size / ((classes + 1) / 2);
    for (std::int64_t ch = 0; ch < channels; ++ch)
      for (std::int64_t r = 0; r < size; ++r)
        for (std::int64_t q = 0; q < size; ++q) {
          const bool on = (c % 2 == 0) ? r == pos : q == pos;
          const std::uint64_t idx =
              static_cast<std::uint64_t>(((i * channels + ch) * size + r) * size + q);
          x[(i * channels + ch) * plane + r * size + q] =
              (on ? 1.0f : 0.0f) + 0.3f * philox_normal(seed, RandomStream::synthetic, 2, idx);
        }
  }
  return d;
}

}  // namespace detdl::nets
