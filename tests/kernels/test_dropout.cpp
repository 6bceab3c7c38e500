// Dropout kernels: the mask is exactly the documented Philox draw per (seed, sub, index)
// (any index_base alignment, any thread count), masks change with the seed, the sub-stream
// and the index base, the keep rate is 1 - p within sampling error, and the backward
// applies the forward's mask and scale.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include "kernels/common/philox.h"
#include "kernels/cpu/dropout.h"
#include "kernels/cpu/parallel.h"

namespace {

using i64 = std::int64_t;
using Vec = std::vector<float>;
using Mask = std::vector<std::uint8_t>;
namespace cpu = detdl::cpu;

Vec random_vec(i64 n, std::uint32_t sub) {
  Vec v(static_cast<std::size_t>(n));
  for (i64 i = 0; i < n; ++i)
    v[i] = 2.0f * detdl::philox_uniform(5, detdl::RandomStream::test, sub, i) - 1.0f;
  return v;
}
bool same_bits(const Vec& a, const Vec& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Switches the pool only when the count changes.
void use_threads(int n) {
  if (n == cpu::num_threads()) return;
  cpu::set_num_threads(n);
}
struct ThreadGuard {
  ~ThreadGuard() { cpu::set_num_threads(1); }
};

struct Out {
  Vec y;
  Mask mask;
};
Out forward(std::uint64_t seed, std::uint32_t sub, std::uint64_t base, float p, const Vec& x) {
  Out o{Vec(x.size()), Mask(x.size())};
  cpu::dropout_forward(seed, sub, base, p, static_cast<i64>(x.size()), x.data(), o.y.data(),
                       o.mask.data());
  return o;
}

TEST(Dropout, MaskIsTheDocumentedPhiloxDrawOnAnyThreads) {
  ThreadGuard guard;
  const float p = 0.35f, scale = 1.0f / (1.0f - p);
  for (int threads : {1, 2, 3}) {
    use_threads(threads);
    for (i64 n : {1, 7, 1001, 70001}) {
      for (std::uint64_t base : {std::uint64_t{0}, std::uint64_t{3}, std::uint64_t{5} << 36}) {
        const Vec x = random_vec(n, 1);
        const Out o = forward(0x123456789abcULL, 9, base, p, x);
        Vec want(n);
        for (i64 i = 0; i < n; ++i) {
          const bool keep = detdl::philox_uniform(0x123456789abcULL, detdl::RandomStream::dropout,
                                                  9, base + i) >= p;
          ASSERT_EQ(o.mask[i], keep ? 1 : 0) << "n=" << n << " base=" << base << " i=" << i;
          want[i] = keep ? x[i] * scale : 0.0f;
        }
        EXPECT_TRUE(same_bits(o.y, want)) << "n=" << n << " threads=" << threads;
      }
    }
  }
}

TEST(Dropout, DeterministicAndKeyedBySeedSubAndIndex) {
  const i64 n = 4096;
  const Vec x = random_vec(n, 2);
  const Out a = forward(1, 0, 0, 0.5f, x);
  EXPECT_EQ(a.mask, forward(1, 0, 0, 0.5f, x).mask);
  EXPECT_TRUE(same_bits(a.y, forward(1, 0, 0, 0.5f, x).y));
  EXPECT_NE(a.mask, forward(2, 0, 0, 0.5f, x).mask);           // another seed
  EXPECT_NE(a.mask, forward(1, 1, 0, 0.5f, x).mask);           // another layer
  EXPECT_NE(a.mask, forward(1, 0, 1ULL << 36, 0.5f, x).mask);  // another step
  // A draw depends on its index only: a shifted window sees the same draws.
  const Out shifted = forward(1, 0, 100, 0.5f, Vec(x.begin() + 100, x.end()));
  EXPECT_TRUE(std::equal(shifted.mask.begin(), shifted.mask.end(), a.mask.begin() + 100));
}

TEST(Dropout, KeepRateIsOneMinusP) {
  const i64 n = 200000;
  const Vec x(n, 1.0f);
  for (float p : {0.1f, 0.5f, 0.9f}) {
    const Out o = forward(77, 3, 0, p, x);
    i64 kept = 0;
    for (auto m : o.mask) kept += m;
    const double rate = double(kept) / n, sigma = std::sqrt(p * (1.0 - p) / n);
    EXPECT_NEAR(rate, 1.0 - p, 5 * sigma) << "p=" << p;
  }
}

TEST(Dropout, BackwardAppliesTheForwardMaskAndScale) {
  const i64 n = 999;
  const float p = 0.2f, scale = 1.0f / (1.0f - p);
  const Vec x = random_vec(n, 3), dy = random_vec(n, 4);
  const Out o = forward(9, 4, 12, p, x);
  Vec dx(n);
  cpu::dropout_backward(p, n, dy.data(), o.mask.data(), dx.data());
  for (i64 i = 0; i < n; ++i) {
    const float want = o.mask[i] ? dy[i] * scale : 0.0f;
    ASSERT_EQ(std::memcmp(&dx[i], &want, 4), 0) << i;
  }
  // The map is linear in x: the forward applied to dy with the same keys gives dx.
  EXPECT_TRUE(same_bits(forward(9, 4, 12, p, dy).y, dx));
}

TEST(Dropout, RateZeroCopiesAndBadRatesThrow) {
  const i64 n = 33;
  const Vec x = random_vec(n, 5);
  const Out o = forward(1, 0, 0, 0.0f, x);
  EXPECT_TRUE(same_bits(o.y, x));
  for (auto m : o.mask) EXPECT_EQ(m, 1);
  Vec y(n), dx(n);
  cpu::dropout_backward(0.0f, n, x.data(), o.mask.data(), dx.data());
  EXPECT_TRUE(same_bits(dx, x));
  for (float bad : {1.0f, -0.1f, 1.5f, NAN}) {
    EXPECT_THROW(cpu::dropout_forward(1, 0, 0, bad, n, x.data(), y.data(), nullptr),
                 std::invalid_argument)
        << bad;
    EXPECT_THROW(cpu::dropout_backward(bad, n, x.data(), o.mask.data(), dx.data()),
                 std::invalid_argument)
        << bad;
  }
}

TEST(Dropout, DroppedInfinitiesBecomeZero) {
  const i64 n = 64;
  const Vec x(n, INFINITY);
  const Out o = forward(3, 0, 0, 0.5f, x);
  for (i64 i = 0; i < n; ++i) EXPECT_EQ(o.y[i], o.mask[i] ? INFINITY : 0.0f) << i;
}

}  // namespace
