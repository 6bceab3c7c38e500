// sgemm (kernels/cpu/gemm.h) against the canonical order written as plain loops (bit for
// bit: chunk chains of fmaf from +0.0f, then the level-by-level pairwise tree), against
// canonical_dot, and against a float64 reference (tolerance); 1, 2 and 3 threads; all four
// transpose combinations; leading dimensions larger than minimal; `fast` within tolerance.
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_block.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

#include "kernels/common/reduction.h"
#include "kernels/cpu/parallel.h"
#include "tests/kernels/reference.h"

namespace detdl::cpu {
namespace {

using i64 = std::int64_t;

std::uint32_t bits(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

// splitmix64 finaliser -> a float in [-1, 1) with a full 23-bit fraction, so that products
// need rounding and the order of the sum shows in the last bits.
float gen(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t z = seed * 0x9E3779B97F4A7C15ull + i;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(static_cast<std::int32_t>(z >> 40) - (1 << 23)) * 0x1p-23f;
}

// A problem: op(A) (M, K), op(B) (K, N) stored with padded leading dimensions.
struct Problem {
  i64 M, N, K;
  bool ta, tb;
  i64 lda, ldb, ldc;
  std::vector<float> A, B;

  Problem(i64 m, i64 n, i64 k, bool trans_a, bool trans_b, std::uint64_t seed, i64 pad = 3)
      : M(m), N(n), K(k), ta(trans_a), tb(trans_b) {
    lda = (ta ? M : K) + pad;  // A is (K, M) when transposed, else (M, K)
    ldb = (tb ? K : N) + pad;  // B is (N, K) when transposed, else (K, N)
    ldc = N + pad;
    A.resize(static_cast<std::size_t>((ta ? K : M) * lda + 1));
    B.resize(static_cast<std::size_t>((tb ? N : K) * ldb + 1));
    for (std::size_t i = 0; i < A.size(); ++i) A[i] = gen(seed, i);
    for (std::size_t i = 0; i < B.size(); ++i) B[i] = gen(seed + 1000, i);
  }
  float a(i64 m, i64 k) const { return ta ? A[k * lda + m] : A[m * lda + k]; }
  float b(i64 k, i64 n) const { return tb ? B[n * ldb + k] : B[k * ldb + n]; }
  const float* a_row(i64 m) const { return ta ? &A[m] : &A[m * lda]; }
  i64 a_stride() const { return ta ? lda : 1; }
  const float* b_col(i64 n) const { return tb ? &B[n * ldb] : &B[n]; }
  i64 b_stride() const { return tb ? 1 : ldb; }

  // C filled with NaN (sgemm must overwrite, never read) and a sentinel in the ldc padding.
  std::vector<float> run(Level level) const {
    std::vector<float> C(static_cast<std::size_t>(M * ldc),
                         std::numeric_limits<float>::quiet_NaN());
    for (i64 m = 0; m < M; ++m)
      for (i64 n = N; n < ldc; ++n) C[m * ldc + n] = 12345.0f;
    sgemm(level, ta, tb, M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc);
    for (i64 m = 0; m < M; ++m)
      for (i64 n = N; n < ldc; ++n) EXPECT_EQ(C[m * ldc + n], 12345.0f) << "ldc padding written";
    return C;
  }
};

// The canonical tree built level by level: pairs (0,1), (2,3), ...; an odd last node moves up.
using detdl::reference::level_tree;

// The canonical order as a plain scalar loop.
float reference_element(const Problem& p, i64 m, i64 n) {
  std::vector<float> parts;
  for (i64 s = 0; s < p.K; s += kChunkProducts) {
    float acc = 0.0f;
    for (i64 k = s; k < p.K && k < s + kChunkProducts; ++k)
      acc = std::fmaf(p.a(m, k), p.b(k, n), acc);
    parts.push_back(acc);
  }
  return level_tree(parts);
}

// Bit-equality with the level-by-level loop and with canonical_dot, on every element.
void expect_canonical(const Problem& p, const std::vector<float>& C, const char* what) {
  int reported = 0;
  for (i64 m = 0; m < p.M; ++m)
    for (i64 n = 0; n < p.N; ++n) {
      const float got = C[m * p.ldc + n];
      const float ref = reference_element(p, m, n);
      const float dot = canonical_dot(p.a_row(m), p.a_stride(), p.b_col(n), p.b_stride(), p.K);
      ASSERT_EQ(bits(ref), bits(dot)) << "the two references disagree";
      if (bits(got) != bits(ref) && reported++ < 5)
        ADD_FAILURE() << what << " M=" << p.M << " N=" << p.N << " K=" << p.K << " ta=" << p.ta
                      << " tb=" << p.tb << " at (" << m << "," << n << "): " << got << " vs "
                      << ref;
    }
}

// |C - exact| within a tolerance scaled by sum |a_k b_k| (rounding of a sum is ~u of that).
void expect_close_to_float64(const Problem& p, const std::vector<float>& C, double rel) {
  for (i64 m = 0; m < p.M; ++m)
    for (i64 n = 0; n < p.N; ++n) {
      double exact = 0.0, mag = 0.0;
      for (i64 k = 0; k < p.K; ++k) {
        const double t = static_cast<double>(p.a(m, k)) * p.b(k, n);
        exact += t;
        mag += std::fabs(t);
      }
      ASSERT_NEAR(C[m * p.ldc + n], exact, rel * mag + 1e-30)
          << "at (" << m << "," << n << ") K=" << p.K;
    }
}

// Switches the pool only when the count changes.
void use_threads(int t) {
  if (t == num_threads()) return;
  set_num_threads(t);
}

struct ThreadsGuard {
  ~ThreadsGuard() { use_threads(1); }
};

const i64 kSizes[] = {1, 2, 5, 7, 15, 17, 33, 100};

TEST(Gemm, AwkwardShapesAllTransposesAllThreadCountsMatchCanonicalLoop) {
  ThreadsGuard guard;
  std::vector<Problem> problems;
  std::uint64_t seed = 1;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (i64 M : kSizes)
        for (i64 N : kSizes)
          for (i64 K : kSizes) problems.emplace_back(M, N, K, ta, tb, seed++);
  std::vector<std::vector<float>> one_thread;
  use_threads(1);
  for (const Problem& p : problems) {
    one_thread.push_back(p.run(Level::portable));
    expect_canonical(p, one_thread.back(), "portable t1");
    expect_close_to_float64(p, one_thread.back(), 2e-6);
  }
  for (int t : {2, 3}) {
    use_threads(t);
    for (std::size_t i = 0; i < problems.size(); ++i) {
      const Problem& p = problems[i];
      const std::vector<float> c = p.run(Level::portable);
      ASSERT_EQ(0, std::memcmp(one_thread[i].data(), c.data(), c.size() * sizeof(float)))
          << "threads " << t << " M=" << p.M << " N=" << p.N << " K=" << p.K;
    }
  }
}

// Where the CPU has AVX-512F, gemm_chain runs 12 x 16 tiles of two A panels in __m512
// registers; the AVX2 6 x 16 tiles must give the same bits (and both the canonical ones), on
// packed and in-place A panels (N > 64 and N <= 64), every transpose, K past one chunk.
TEST(Gemm, Avx512AndAvx2TilesGiveTheSameBits) {
  ThreadsGuard guard;
  std::uint64_t seed = 500;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (i64 M : {12, 30, 100})
        for (i64 N : {16, 48, 100})
          for (i64 K : {7, 300, 4100}) {
            if (K == 4100 && M * N > 1500) continue;  // keep the canonical loop short
            const Problem p(M, N, K, ta, tb, seed++);
            for (int t : {1, 2}) {
              use_threads(t);
              detdl::cpu::gemm_detail::set_avx512_allowed(true);
              const std::vector<float> wide = p.run(Level::portable);
              detdl::cpu::gemm_detail::set_avx512_allowed(false);
              const std::vector<float> narrow = p.run(Level::portable);
              detdl::cpu::gemm_detail::set_avx512_allowed(true);
              ASSERT_EQ(0, std::memcmp(wide.data(), narrow.data(), wide.size() * sizeof(float)))
                  << "M=" << M << " N=" << N << " K=" << K << " ta=" << ta << " tb=" << tb;
              if (t == 1) expect_canonical(p, wide, "avx512 tiles");
            }
          }
}

TEST(Gemm, LongReductionsFollowTheChunkTree) {
  ThreadsGuard guard;
  const i64 Ks[] = {
      4095, 4096,         4097,
      8193, 3 * 4096 + 5, 7 * 4096 - 100};  // 7 chunks (the last 3996 long): a 3-deep stack to fold
  const i64 shapes[][2] = {{1, 1}, {7, 17}, {13, 33}, {6, 16}};
  std::vector<Problem> problems;
  std::uint64_t seed = 7000;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (i64 K : Ks)
        for (const auto& s : shapes) problems.emplace_back(s[0], s[1], K, ta, tb, seed++, 5);
  std::vector<std::vector<float>> one_thread;
  use_threads(1);
  for (const Problem& p : problems) {
    one_thread.push_back(p.run(Level::portable));
    expect_canonical(p, one_thread.back(), "portable");
    expect_close_to_float64(p, one_thread.back(), 2e-6);
  }
  for (int t : {2, 3}) {
    use_threads(t);
    for (std::size_t i = 0; i < problems.size(); ++i) {
      const std::vector<float> c = problems[i].run(Level::portable);
      ASSERT_EQ(0, std::memcmp(one_thread[i].data(), c.data(), c.size() * sizeof(float)))
          << "threads " << t << " K=" << problems[i].K;
    }
  }
}

// Larger products that the thread grid really splits and that take more than one cache
// block in m (kMC = 120) or n (kNC = 2048), with K over one KC block and over two chunks.
TEST(Gemm, ThreadCountNeverChangesBitsOnSplitRegions) {
  ThreadsGuard guard;
  const i64 shapes[][3] = {{131, 97, 300}, {131, 97, 9000}, {7, 2100, 300}};
  for (const auto& s : shapes) {
    const Problem p(s[0], s[1], s[2], false, true, 99, 1);
    use_threads(1);
    const std::vector<float> c1 = p.run(Level::portable);
    expect_canonical(p, c1, "portable");
    for (int t : {2, 3}) {
      use_threads(t);
      const std::vector<float> ct = p.run(Level::portable);
      EXPECT_EQ(0, std::memcmp(c1.data(), ct.data(), c1.size() * sizeof(float))) << "threads " << t;
      const std::vector<float> cr = p.run(Level::repeatable);
      EXPECT_EQ(0, std::memcmp(c1.data(), cr.data(), c1.size() * sizeof(float))) << "repeatable";
    }
  }
}

// sgemm_batched: R products of one shape, each its own operands; every C[r] is the
// canonical order bit for bit (the plain loop), on thread counts below, at and above R,
// with a long reduction (the chunk tree) among them; `fast` is refused.
TEST(Gemm, BatchedProductsAreEachTheCanonicalProduct) {
  ThreadsGuard guard;
  struct Shape {
    i64 R, M, N, K;
  };
  for (const Shape sh : {Shape{1, 17, 23, 11}, Shape{3, 256, 23, 23}, Shape{5, 7, 33, 100},
                         Shape{2, 5, 3, 2 * kChunkProducts + 9}})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (int t : {1, 2, 3, 8}) {
          use_threads(t);
          std::vector<Problem> ps;
          std::vector<std::vector<float>> Cs;
          std::vector<const float*> A, B;
          std::vector<float*> C;
          for (i64 r = 0; r < sh.R; ++r) {
            ps.emplace_back(sh.M, sh.N, sh.K, ta, tb, 7 + 31 * r);
            Cs.emplace_back(static_cast<std::size_t>(sh.M * ps.back().ldc),
                            std::numeric_limits<float>::quiet_NaN());
          }
          for (i64 r = 0; r < sh.R; ++r) {
            A.push_back(ps[r].A.data());
            B.push_back(ps[r].B.data());
            C.push_back(Cs[r].data());
          }
          const Problem& p0 = ps[0];
          sgemm_batched(Level::portable, ta, tb, sh.R, sh.M, sh.N, sh.K, A.data(), p0.lda, B.data(),
                        p0.ldb, C.data(), p0.ldc);
          for (i64 r = 0; r < sh.R; ++r) expect_canonical(ps[r], Cs[r], "sgemm_batched");
        }
  const float* a = nullptr;
  float* c = nullptr;
  EXPECT_THROW(sgemm_batched(Level::fast, false, false, 1, 1, 1, 1, &a, 1, &a, 1, &c, 1),
               std::invalid_argument);
}

TEST(Gemm, EmptyReductionGivesPositiveZeros) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const Problem p(7, 19, 0, ta, tb, 5);
      for (Level level : {Level::portable, Level::fast}) {
        const std::vector<float> c = p.run(level);
        for (i64 m = 0; m < p.M; ++m)
          for (i64 n = 0; n < p.N; ++n) EXPECT_EQ(bits(c[m * p.ldc + n]), 0u);
      }
    }
  sgemm(Level::portable, false, false, 0, 5, 3, nullptr, 3, nullptr, 5, nullptr, 5);  // no-op
}

TEST(Gemm, FastIsOneChainWithoutTheTree) {
  ThreadsGuard guard;
  use_threads(1);
  // K <= one chunk: fast is the same chain as portable.
  const Problem small(17, 33, 4096, true, false, 11);
  const std::vector<float> ps = small.run(Level::portable), fs = small.run(Level::fast);
  EXPECT_EQ(0, std::memcmp(ps.data(), fs.data(), ps.size() * sizeof(float)));
  // K over a chunk: fast skips the tree, so some element differs from portable (this is
  // also what shows that the bit-equality tests above can fail), yet stays accurate.
  const Problem p(7, 17, 3 * 4096 + 5, false, true, 12);
  const std::vector<float> pc = p.run(Level::portable), fc = p.run(Level::fast);
  EXPECT_NE(0, std::memcmp(pc.data(), fc.data(), pc.size() * sizeof(float)));
  expect_close_to_float64(p, fc, 2e-6);
  for (i64 m = 0; m < p.M; ++m)  // and fast on one thread is exactly the single chain
    for (i64 n = 0; n < p.N; ++n) {
      float acc = 0.0f;
      for (i64 k = 0; k < p.K; ++k) acc = std::fmaf(p.a(m, k), p.b(k, n), acc);
      ASSERT_EQ(bits(acc), bits(fc[m * p.ldc + n]));
    }
}

// Weight-gradient shape: small C, long K. With 2 threads fast splits K; the result depends
// on which worker got which piece (forced here through the test hook), stays within
// tolerance, and portable on the same inputs does not move.
TEST(Gemm, FastSplitKMayDifferButStaysClose) {
  ThreadsGuard guard;
  const Problem p(8, 24, 65536 + 77, false, true, 21);
  use_threads(1);
  const std::vector<float> portable1 = p.run(Level::portable);
  use_threads(2);
  set_dynamic_assignment_for_testing({0, 1});  // interleaved pieces
  const std::vector<float> interleaved = p.run(Level::fast);
  set_dynamic_assignment_for_testing({0, 0, 0, 0, 0, 1, 1, 1, 1});  // first pieces to worker 0
  const std::vector<float> blocked = p.run(Level::fast);
  const std::vector<float> portable2 = p.run(Level::portable);
  set_dynamic_assignment_for_testing({});
  const std::vector<float> timed = p.run(Level::fast);  // whatever the timing gives
  EXPECT_NE(0, std::memcmp(interleaved.data(), blocked.data(), blocked.size() * sizeof(float)))
      << "different piece assignments should give different chains";
  EXPECT_EQ(0, std::memcmp(portable1.data(), portable2.data(), portable1.size() * sizeof(float)));
  for (const std::vector<float>* c : {&interleaved, &blocked, &timed})
    expect_close_to_float64(p, *c, 2e-6);
  expect_close_to_float64(p, portable1, 2e-6);
}

TEST(Gemm, FastSquareCloseToFloat64OnThreads) {
  ThreadsGuard guard;
  for (int t : {1, 2}) {
    use_threads(t);
    for (bool ta : {false, true}) {
      const Problem p(45, 70, 5000, ta, !ta, 31 + t);
      expect_close_to_float64(p, p.run(Level::fast), 2e-6);
    }
  }
}

}  // namespace
}  // namespace detdl::cpu
