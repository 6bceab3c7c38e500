#include "engine/init.h"

#include <cmath>
#include <stdexcept>

#include "kernels/common/philox.h"
#include "kernels/common/random.h"

namespace detdl {

std::string_view init_name(InitKind k) {
  switch (k) {
    case InitKind::zeros: return "zeros";
    case InitKind::ones: return "ones";
    case InitKind::uniform: return "uniform";
    case InitKind::normal: return "normal";
    case InitKind::glorot_uniform: return "glorot_uniform";
    case InitKind::glorot_normal: return "glorot_normal";
    case InitKind::he_uniform: return "he_uniform";
    case InitKind::he_normal: return "he_normal";
    case InitKind::lecun_uniform: return "lecun_uniform";
    case InitKind::lecun_normal: return "lecun_normal";
  }
  return "?";
}

std::optional<InitKind> parse_init(std::string_view s) {
  for (int i = 0; i <= static_cast<int>(InitKind::lecun_normal); ++i)
    if (init_name(static_cast<InitKind>(i)) == s) return static_cast<InitKind>(i);
  return std::nullopt;
}

std::pair<double, double> fans(const Shape& shape) {
  if (shape.size() < 2) {
    const double n = shape.empty() ? 1.0 : static_cast<double>(shape[0]);
    return {n, n};
  }
  double receptive = 1.0;
  for (std::size_t i = 2; i < shape.size(); ++i) receptive *= static_cast<double>(shape[i]);
  return {static_cast<double>(shape[1]) * receptive, static_cast<double>(shape[0]) * receptive};
}

namespace {

// Uniform in [lo, hi): lo + (hi - lo) * u, in float, one draw per element.
void fill_uniform(Tensor& t, float lo, float hi, std::uint64_t seed, std::uint32_t p) {
  float* x = t.f32();
  const float width = hi - lo;
  for (std::int64_t i = 0, n = t.numel(); i < n; ++i)
    x[i] = lo + width * philox_uniform(seed, RandomStream::init, p, static_cast<std::uint64_t>(i));
}

// Normal(mean, std); truncated at two standard deviations by redrawing (as Keras's
// TruncatedNormal): attempt r of element i uses Philox block index i * 8 + r, so every
// element's redraws are its own and the result does not depend on any other element.
void fill_normal(Tensor& t, float mean, float std, bool truncated, std::uint64_t seed,
                 std::uint32_t p) {
  float* x = t.f32();
  for (std::int64_t i = 0, n = t.numel(); i < n; ++i) {
    float z = 0.0f;
    for (std::uint64_t r = 0; r < 8; ++r) {
      z = philox_normal(seed, RandomStream::init, p, static_cast<std::uint64_t>(i) * 8 + r);
      if (!truncated || std::fabs(z) <= 2.0f) break;
      if (r == 7) z = 0.0f;  // 8 draws beyond 2 sigma: probability ~1e-11; pick the centre
    }
    x[i] = mean + std * z;
  }
}

}  // namespace

void initialize(Tensor& t, const InitSpec& spec, std::uint64_t seed, std::uint32_t param_index) {
  check_dtype(t, DType::f32, "initialize");
  const auto [fan_in, fan_out] = fans(t.shape());
  // Scales are computed in double and rounded once: the same on every machine.
  auto uniform_limit = [](double var) { return static_cast<float>(std::sqrt(3.0 * var)); };
  // Keras's truncated normal initialisers divide by the truncated distribution's std.
  constexpr double kTruncStd = 0.87962566103423978;
  auto trunc_std = [&](double var) { return static_cast<float>(std::sqrt(var) / kTruncStd); };
  switch (spec.kind) {
    case InitKind::zeros: fill_uniform(t, 0.0f, 0.0f, seed, param_index); return;
    case InitKind::ones: fill_uniform(t, 1.0f, 1.0f, seed, param_index); return;
    case InitKind::uniform: fill_uniform(t, spec.a, spec.b, seed, param_index); return;
    case InitKind::normal: fill_normal(t, spec.a, spec.b, false, seed, param_index); return;
    case InitKind::glorot_uniform: {
      const float l = uniform_limit(2.0 / (fan_in + fan_out));
      fill_uniform(t, -l, l, seed, param_index);
      return;
    }
    case InitKind::glorot_normal:
      fill_normal(t, 0.0f, trunc_std(2.0 / (fan_in + fan_out)), true, seed, param_index);
      return;
    case InitKind::he_uniform: {
      const float l = uniform_limit(2.0 / fan_in);
      fill_uniform(t, -l, l, seed, param_index);
      return;
    }
    case InitKind::he_normal:
      fill_normal(t, 0.0f, trunc_std(2.0 / fan_in), true, seed, param_index);
      return;
    case InitKind::lecun_uniform: {
      const float l = uniform_limit(1.0 / fan_in);
      fill_uniform(t, -l, l, seed, param_index);
      return;
    }
    case InitKind::lecun_normal:
      fill_normal(t, 0.0f, trunc_std(1.0 / fan_in), true, seed, param_index);
      return;
  }
  throw std::invalid_argument("initialize: unknown initialiser");
}

}  // namespace detdl
