// Initialisers. Every draw is Philox keyed by (init seed, RandomStream::init, parameter
// index, element index): a parameter's values depend only on its index in the model and
// the seed, never on threads or on the other parameters.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine/tensor.h"

namespace detdl {

enum class InitKind : std::uint8_t {
  zeros,
  ones,
  uniform,
  normal,
  glorot_uniform,
  glorot_normal,  // Keras's default for Dense/Conv (glorot_normal: truncated)
  he_uniform,
  he_normal,  // ReLU nets (he_normal: truncated, as Keras)
  lecun_uniform,
  lecun_normal,  // SELU nets (lecun_normal: truncated, as Keras)
};
std::string_view init_name(InitKind k);
std::optional<InitKind> parse_init(std::string_view s);

struct InitSpec {
  InitKind kind = InitKind::glorot_uniform;
  float a = 0.0f;  // uniform: low; normal: mean
  float b = 0.0f;  // uniform: high; normal: standard deviation
};

// Fan-in / fan-out as Keras and PyTorch compute them: (O, I) -> fan_in I, fan_out O;
// (O, C, KH, KW) -> fan_in C*KH*KW, fan_out O*KH*KW.
std::pair<double, double> fans(const Shape& shape);

// Fills t in place. param_index keys the Philox stream.
void initialize(Tensor& t, const InitSpec& spec, std::uint64_t seed, std::uint32_t param_index);

}  // namespace detdl
