// Distributions over Philox draws (kernels/common/philox.h), written with the engine's own
// math (kernels/common/detmath.h) so a draw has the same bits on the host and the device.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common/detmath.h"
#include "kernels/common/philox.h"

namespace detdl {

// A standard normal draw by Box-Muller from the whole Philox block whose 64-bit block
// index is `index` (counter words: index low, index high, sub, stream; key = seed, as in
// philox_u32):
//   u1 = ((word0 >> 8) + 1) * 2^-24 in (0, 1]  (as philox_uniform_open0: log u1 is finite)
//   u2 =  (word1 >> 8)      * 2^-24 in [0, 1)  (as philox_uniform)
//   z  = sqrtf(-2 * det_logf(u1)) * det_cosf(float(2 pi) * u2), in that order.
// Words 2 and 3 are unused. Normal draw `index` reads the block that holds uniform draws
// 4*index .. 4*index+3, so one (seed, stream, sub) should carry uniforms or normals, not
// both. |z| <= sqrt(-2 log 2^-24) ~= 5.77.
DETDL_HD float philox_normal(std::uint64_t seed, RandomStream stream, std::uint32_t sub,
                             std::uint64_t index) {
  const Philox4 b = philox4x32_10(
      Philox4{{static_cast<std::uint32_t>(index), static_cast<std::uint32_t>(index >> 32), sub,
               static_cast<std::uint32_t>(stream)}},
      static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
  const float u1 = static_cast<float>((b.v[0] >> 8) + 1u) * 0x1p-24f;
  const float u2 = static_cast<float>(b.v[1] >> 8) * 0x1p-24f;
  const float radius = sqrtf(-2.0f * det_logf(u1));
  return radius * det_cosf(6.28318530717958648f * u2);
}

// Uniform in [lo, hi) for lo < hi: lo + (hi - lo) * u with u = philox_uniform(...); a
// result that rounds up to hi is stepped down to the float just below hi.
DETDL_HD float philox_uniform_range(float lo, float hi, std::uint64_t seed, RandomStream stream,
                                    std::uint32_t sub, std::uint64_t index) {
  const float r = lo + (hi - lo) * philox_uniform(seed, stream, sub, index);
  if (r < hi) return r;
  const std::uint32_t h = det_float_bits(hi);
  if (hi > 0.0f) return det_bits_float(h - 1u);
  if (hi == 0.0f) return -det_bits_float(1u);  // the negative subnormal nearest 0
  return det_bits_float(h + 1u);               // hi < 0: one step away from zero
}

}  // namespace detdl
