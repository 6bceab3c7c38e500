// Subnormal flushing (kernels/cpu/fpmode.h), TensorFlow's CPU arithmetic as a run option:
// the scope sets FTZ+DAZ on the calling thread and on every pool worker (static and dynamic
// jobs) and restores both; a GEMM whose products are subnormal gives, with flushing, the
// plain loop's bits computed with flushing, on 1, 2 and 3 threads, and other bits than
// without it.
#include "kernels/cpu/fpmode.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/common/reduction.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"

namespace detdl::cpu {
namespace {

using i64 = std::int64_t;

// A product of two normal floats whose exact value is subnormal (1e-40): volatile, so the
// compiler cannot fold it at build time (where no MXCSR applies).
float subnormal_product() {
  volatile float a = 1e-20f, b = 1e-20f;
  return a * b;
}

// A subnormal operand: DAZ reads it as zero, so x + 0 is 0.
float subnormal_operand_sum() {
  volatile float x = 1e-40f, z = 0.0f;
  return x + z;
}

std::uint32_t bits(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

// Compared as bits: under DAZ a comparison reads a subnormal as zero (1e-40 == 0 holds).
std::vector<std::uint32_t> bits(const std::vector<float>& v) {
  std::vector<std::uint32_t> b(v.size());
  std::memcpy(b.data(), v.data(), v.size() * sizeof(float));
  return b;
}

TEST(FlushSubnormals, ThisCpuCanFlush) {
#if defined(__x86_64__)
  EXPECT_TRUE(can_flush_subnormals());
#else
  GTEST_SKIP() << "not an x86-64 build";
#endif
}

TEST(FlushSubnormals, ScopeSetsAndRestoresTheCallingThread) {
  ASSERT_FALSE(thread_flushes_subnormals());
  EXPECT_GT(subnormal_product(), 0.0f);
  EXPECT_LT(subnormal_product(), FLT_MIN);  // IEEE: a subnormal result
  {
    FlushSubnormalsScope on(true);
    EXPECT_TRUE(thread_flushes_subnormals());
    EXPECT_TRUE(flush_subnormals());
    EXPECT_EQ(bits(subnormal_product()), 0u);      // FTZ
    EXPECT_EQ(bits(subnormal_operand_sum()), 0u);  // DAZ
    {
      FlushSubnormalsScope off(false);  // nested scopes restore what they found
      EXPECT_FALSE(thread_flushes_subnormals());
      EXPECT_GT(subnormal_product(), 0.0f);
    }
    EXPECT_TRUE(thread_flushes_subnormals());
  }
  EXPECT_FALSE(thread_flushes_subnormals());
  EXPECT_FALSE(flush_subnormals());
  EXPECT_GT(subnormal_operand_sum(), 0.0f);
}

// Each worker's product and MXCSR state, from a static job and from a dynamic one.
// Workers that got no piece of a dynamic job are left out.
std::vector<float> products_on_workers(int threads, bool dynamic) {
  set_num_threads(threads);
  std::vector<float> out(threads);
  std::vector<char> ran(threads, 0);
  if (dynamic)
    parallel_dynamic(64, [&](i64, int w) { out[w] = subnormal_product(), ran[w] = 1; });
  else
    parallel_ranges(threads, [&](i64, i64, int w) { out[w] = subnormal_product(), ran[w] = 1; });
  std::vector<float> got;
  for (int w = 0; w < threads; ++w)
    if (ran[w]) got.push_back(out[w]);
  return got;
}

TEST(FlushSubnormals, EveryPoolWorkerFlushesInTheScopeAndNotAfter) {
  for (bool dynamic : {false, true}) {
    SCOPED_TRACE(dynamic ? "parallel_dynamic" : "parallel_ranges");
    {
      FlushSubnormalsScope on(true);
      for (float p : products_on_workers(3, dynamic)) EXPECT_EQ(bits(p), 0u);
    }
    for (float p : products_on_workers(3, dynamic)) EXPECT_GT(p, 0.0f);
  }
  set_num_threads(1);
}

// C (M, N) = A (M, K) * B (K, N) with every product subnormal (about 1e-40, both signs): what
// a nearly perfect net's output gradient (p - y, 1e-37) times small weights gives.
TEST(FlushSubnormals, GemmWithSubnormalProductsMatchesThePlainLoopOnAnyThreadCount) {
  const i64 M = 24, N = 40, K = 300;
  std::vector<float> A(M * K), B(K * N);
  for (i64 i = 0; i < M * K; ++i) A[i] = 1e-37f * static_cast<float>(1 + i % 7);
  for (i64 k = 0; k < K; ++k)  // signs alternate along k: the sums stay subnormal too
    for (i64 n = 0; n < N; ++n)
      B[k * N + n] = 0.001f * static_cast<float>(1 + (k + n) % 5) * (k % 2 ? 1.0f : -1.0f);
  auto gemm = [&](int threads) {
    set_num_threads(threads);
    std::vector<float> C(M * N);
    sgemm(Level::portable, false, false, M, N, K, A.data(), K, B.data(), N, C.data(), N);
    return C;
  };
  auto plain = [&] {
    std::vector<float> C(M * N);
    for (i64 m = 0; m < M; ++m)
      for (i64 n = 0; n < N; ++n) C[m * N + n] = canonical_dot(&A[m * K], 1, &B[n], N, K);
    return C;
  };
  const std::vector<std::uint32_t> ieee = bits(gemm(1));
  EXPECT_EQ(ieee, bits(plain()));
  i64 subnormal = 0;
  for (std::uint32_t c : ieee) subnormal += (c & 0x7f800000u) == 0 && (c & 0x007fffffu) != 0;
  ASSERT_GT(subnormal, 0) << "the test needs subnormal results";
  FlushSubnormalsScope on(true);
  const std::vector<std::uint32_t> flushed = bits(gemm(1));
  EXPECT_EQ(flushed, bits(plain()));
  EXPECT_EQ(bits(gemm(2)), flushed);
  EXPECT_EQ(bits(gemm(3)), flushed);
  for (std::uint32_t c : flushed)  // no subnormal left: zero or normal
    EXPECT_TRUE((c & 0x7fffffffu) == 0 || (c & 0x7f800000u) != 0) << std::hex << c;
  EXPECT_NE(flushed, ieee);
  set_num_threads(1);
}

}  // namespace
}  // namespace detdl::cpu
