// detmath_avx2.h: each lane of the eight-wide det_logf and det_expf is the scalar function
// bit for bit,
// over every class of input (normal, subnormal, zeros, negatives, infinities, NaNs) and
// 2^22 random bit patterns, at every offset of a batch (the vector body and the tail).
#include "kernels/cpu/detmath_avx2.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/common/detmath.h"

namespace detdl::cpu {
namespace {

std::uint32_t bits(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
float from_bits(std::uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

void expect_lanes_match(const std::vector<float>& x) {
  std::vector<float> y(x.size()), z(x.size());
  det_logf_n(x.data(), y.data(), static_cast<std::int64_t>(x.size()));
  det_expf_n(x.data(), z.data(), static_cast<std::int64_t>(x.size()));
  int reported = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (bits(y[i]) != bits(det_logf(x[i])) && reported++ < 10)
      ADD_FAILURE() << "x = " << x[i] << " (bits " << std::hex << bits(x[i]) << "): lanes give "
                    << bits(y[i]) << ", det_logf " << bits(det_logf(x[i]));
    if (bits(z[i]) != bits(det_expf(x[i])) && reported++ < 10)
      ADD_FAILURE() << "x = " << x[i] << " (bits " << std::hex << bits(x[i]) << "): lanes give "
                    << bits(z[i]) << ", det_expf " << bits(det_expf(x[i]));
  }
}

TEST(DetmathAvx2, LogfLanesAreTheScalarFunction) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> special = {0.0f,
                                -0.0f,
                                1.0f,
                                -1.0f,
                                inf,
                                -inf,
                                2.0f,
                                0.5f,
                                1e-7f,
                                1e-45f,
                                1e-40f,
                                1.17549435e-38f,
                                3e38f,
                                1.0f + 1e-7f,
                                0.70710677f,
                                1.4142135f,
                                std::numeric_limits<float>::quiet_NaN(),
                                from_bits(0xffc00001u),
                                from_bits(0x7f800001u),
                                from_bits(0x00000001u),
                                from_bits(0x007fffffu)};
  // Every offset: a value lands in the vector body and in the scalar tail.
  for (std::size_t shift = 0; shift < 9; ++shift) {
    std::vector<float> x(shift, 1.5f);
    x.insert(x.end(), special.begin(), special.end());
    expect_lanes_match(x);
  }
  std::vector<float> random(1 << 22);
  std::uint64_t s = 0x9E3779B97F4A7C15ull;
  for (auto& v : random) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v = from_bits(static_cast<std::uint32_t>(s >> 32));
  }
  expect_lanes_match(random);
  // The metrics' own inputs: ratios of probabilities and 1 + p, densely near 1.
  std::vector<float> near_one;
  for (std::uint32_t u = bits(0.5f); u < bits(2.5f); u += 97) near_one.push_back(from_bits(u));
  expect_lanes_match(near_one);
  // exp's whole range and its edges: softmax's x - max in [-104, 0], the subnormal results
  // (two scaling steps), the overflow and underflow bounds.
  std::vector<float> exp_range;
  for (float v = -110.0f; v < 95.0f; v += 0.0137f) exp_range.push_back(v);
  for (float v : {88.7f, 89.0f, 89.0001f, -87.3f, -103.97f, -104.0f, -104.001f, -126.0f})
    exp_range.push_back(v);
  expect_lanes_match(exp_range);
}

}  // namespace
}  // namespace detdl::cpu
