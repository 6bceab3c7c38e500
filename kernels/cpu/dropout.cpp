#include "kernels/cpu/dropout.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/common/philox.h"
#include "kernels/cpu/parallel.h"

namespace detdl::cpu {
namespace {

using i64 = std::int64_t;

void check_rate(float p) {
  if (!(p >= 0.0f && p < 1.0f))
    throw std::invalid_argument("dropout: rate p must be in [0, 1), got " + std::to_string(p));
}

// Element ranges below this run on the calling thread: a pool job costs more.
constexpr i64 kSerialElements = 1 << 14;

template <class Fn>
void for_ranges(i64 n, Fn fn) {
  if (n < kSerialElements) {
    fn(0, n);
    return;
  }
  parallel_ranges(n, [&](i64 b, i64 e, int) { fn(b, e); });
}

}  // namespace

void dropout_forward(std::uint64_t seed, std::uint32_t sub, std::uint64_t index_base, float p,
                     i64 n, const float* x, float* y, std::uint8_t* mask) {
  check_rate(p);
  if (p == 0.0f) {
    std::copy(x, x + n, y);
    if (mask) std::fill(mask, mask + n, std::uint8_t{1});
    return;
  }
  const float scale = 1.0f / (1.0f - p);
  for_ranges(n, [&](i64 b, i64 e) {
    // Walk the global draw index g = index_base + i block by block (4 draws per block).
    i64 i = b;
    while (i < e) {
      const std::uint64_t g = index_base + static_cast<std::uint64_t>(i);
      const std::uint64_t block = g >> 2;
      const Philox4 out = philox4x32_10(
          Philox4{{static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32), sub,
                   static_cast<std::uint32_t>(RandomStream::dropout)}},
          static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
      for (std::uint64_t w = g & 3; w < 4 && i < e; ++w, ++i) {
        const float u = static_cast<float>(out.v[w] >> 8) * 0x1p-24f;  // philox_uniform
        const bool keep = u >= p;
        if (mask) mask[i] = keep ? 1 : 0;
        y[i] = keep ? x[i] * scale : 0.0f;
      }
    }
  });
}

void dropout_backward(float p, i64 n, const float* dy, const std::uint8_t* mask, float* dx) {
  check_rate(p);
  if (p == 0.0f) {
    std::copy(dy, dy + n, dx);
    return;
  }
  const float scale = 1.0f / (1.0f - p);
  for_ranges(n, [&](i64 b, i64 e) {
    for (i64 i = b; i < e; ++i) dx[i] = mask[i] ? dy[i] * scale : 0.0f;
  });
}

}  // namespace detdl::cpu
