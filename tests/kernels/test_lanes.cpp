// The lane kernels (kernels/cpu/lanes.h): every lane's result is the canonical reduction of
// its own problem, bit for bit, written here as plain loops over one problem (chunks, then
// the level-by-level tree of tests/kernels/reference.h), and within rounding of a float64
// reference; the layout helpers move exactly the right floats.
#include "kernels/cpu/lanes.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <limits>
#include <vector>

#include "kernels/common/activation.h"
#include "tests/kernels/reference.h"

namespace detdl::cpu::lanes {
namespace {

using i64 = std::int64_t;

// Every kernel set this CPU runs: AVX2's, and AVX-512F's where the CPU has it.
std::vector<const Kernels*> kernel_sets() {
  std::vector<const Kernels*> ks{&kernels_avx2()};
  if (avx512_available()) ks.push_back(&kernels_avx512());
  return ks;
}

// Problem l's n floats, uniform in [-1, 1) from seed + l.
std::vector<std::vector<float>> problems(i64 count, i64 n, unsigned seed) {
  std::vector<std::vector<float>> p(static_cast<std::size_t>(count));
  for (i64 l = 0; l < count; ++l) {
    std::mt19937 gen(seed + static_cast<unsigned>(l));
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (i64 i = 0; i < n; ++i) p[l].push_back(u(gen));
  }
  return p;
}

// The lane layout written out by hand (not with interleave(), which is tested below).
std::vector<float> by_hand(const std::vector<std::vector<float>>& p, i64 n, i64 L) {
  std::vector<float> v(static_cast<std::size_t>(n * L), 0.0f);
  for (std::size_t l = 0; l < p.size(); ++l)
    for (i64 i = 0; i < n; ++i) v[i * L + l] = p[l][i];
  return v;
}

// The canonical dot of one problem, plainly: chunks of 4096 chains from +0.0f, the tree.
float canonical_dot(i64 R, const std::vector<float>& a, i64 a0, i64 a_r,
                    const std::vector<float>& b, i64 b0, i64 b_r) {
  std::vector<float> parts;
  for (i64 s = 0; s < R; s += 4096) {
    float p = 0.0f;
    for (i64 r = s; r < std::min(R, s + 4096); ++r)
      p = std::fmaf(a[a0 + r * a_r], b[b0 + r * b_r], p);
    parts.push_back(p);
  }
  return reference::level_tree(parts);
}

struct Case {
  i64 I, J, R;
  i64 a_i, a_r, b_j, b_r;  // strides of a (I, R) and b (J, R) in elements
  i64 a_n, b_n;            // elements in a and b
  i64 count;               // problems in the group
};

void check_dot(const Kernels& k, const Case& t) {
  if (t.count > k.lanes) return;  // a group of 16 on the 8-lane kernels
  SCOPED_TRACE(std::to_string(k.lanes) + " lanes");
  const i64 L = k.lanes;
  const auto a = problems(t.count, t.a_n, 11), b = problems(t.count, t.b_n, 29);
  const std::vector<float> al = by_hand(a, t.a_n, L), bl = by_hand(b, t.b_n, L);
  std::vector<float> c(static_cast<std::size_t>(t.I * t.J * L), -7.0f);
  dot(k, t.I, t.J, t.R, al.data(), t.a_i, t.a_r, bl.data(), t.b_j, t.b_r, c.data(), t.J, 1);
  for (i64 l = 0; l < t.count; ++l)
    for (i64 i = 0; i < t.I; ++i)
      for (i64 j = 0; j < t.J; ++j) {
        const float got = c[(i * t.J + j) * L + l];
        const float want = canonical_dot(t.R, a[l], i * t.a_i, t.a_r, b[l], j * t.b_j, t.b_r);
        ASSERT_EQ(got, want) << "lane " << l << " (" << i << ", " << j << ")";
        double ref = 0.0, mag = 0.0;
        for (i64 r = 0; r < t.R; ++r) {
          const double p = static_cast<double>(a[l][i * t.a_i + r * t.a_r]) *
                           static_cast<double>(b[l][j * t.b_j + r * t.b_r]);
          ref += p;
          mag += std::fabs(p);
        }
        ASSERT_NEAR(got, ref, 1.2e-7 * static_cast<double>(t.R) * mag);  // |error| <= R u sum|p|
      }
  for (i64 l = t.count; l < L; ++l)  // zero lanes give zeros
    for (i64 e = 0; e < t.I * t.J; ++e) ASSERT_EQ(c[e * L + l], 0.0f);
}

void check_dot(const Case& t) {
  for (const Kernels* k : kernel_sets()) check_dot(*k, t);
}

TEST(Lanes, ForwardProductEveryLaneIsItsCanonicalDot) {
  // y (N, O) = x (N, K) w^T: a = x (K, 1), b = w (K, 1); shapes that leave edge tiles.
  for (i64 count : {16, 8, 5, 1}) {
    const i64 N = 37, O = 11, K = 23;
    check_dot({N, O, K, K, 1, K, 1, N * K, O * K, count});
  }
}

TEST(Lanes, WeightGradientOverMoreThanOneChunk) {
  // dw (O, K) = dy (N, O)^T x (N, K) with N = 4096 + 700: two chunks and the tree.
  const i64 N = 4096 + 700, O = 5, K = 7;
  check_dot({O, K, N, 1, O, 1, K, N * O, N * K, 8});
  check_dot({O, K, 3 * 4096 + 1, 1, O, 1, K, (3 * 4096 + 1) * O, (3 * 4096 + 1) * K, 3});
}

TEST(Lanes, WeightGradientInPassesOfRows) {
  // A batch of more rows than two passes (the kernels continue each chain from c pass by
  // pass): whole passes, a short last one, edge tiles in both directions, and exactly two
  // passes' worth (not split).
  for (i64 N : {300, 256, 97, 64}) {
    const i64 O = 20, K = 50;
    check_dot({O, K, N, 1, O, 1, K, N * O, N * K, 8});
    check_dot({O, K, N, 1, O, 1, K, N * O, N * K, 5});
  }
  // One output unit (a regression net's last layer: a's r stride is 1).
  check_dot({1, 23, 300, 1, 1, 1, 23, 300, 300 * 23, 7});
}

TEST(Lanes, DataGradient) {
  // dx (N, K) = dy (N, O) w (O, K): a = dy (O, 1), b = w (1, K).
  const i64 N = 19, O = 7, K = 13;
  check_dot({N, K, O, O, 1, 1, K, N * O, O * K, 6});
}

TEST(Lanes, EmptyReductionIsPositiveZero) {
  for (const Kernels* k : kernel_sets()) {
    std::vector<float> a(16), b(16), c(4 * 16, 5.0f);
    dot(*k, 2, 2, 0, a.data(), 1, 1, b.data(), 1, 1, c.data(), 2, 1);
    for (i64 e = 0; e < 4 * k->lanes; ++e) {
      ASSERT_EQ(c[e], 0.0f);
      ASSERT_FALSE(std::signbit(c[e]));
    }
  }
}

TEST(Lanes, ColumnSumsAreCanonicalPerLane) {
  for (const Kernels* k : kernel_sets())
    for (i64 N : {0, 1, 100, 256, 257, 700}) {
      const i64 J = 6, L = k->lanes;
      const auto x = problems(L, N * J, 3);
      const std::vector<float> xl = by_hand(x, N * J, L);
      std::vector<float> s(static_cast<std::size_t>(J * L), -1.0f);
      k->column_sums(N, J, xl.data(), s.data());
      for (i64 l = 0; l < L; ++l)
        for (i64 j = 0; j < J; ++j) {
          std::vector<float> col;
          for (i64 n = 0; n < N; ++n) col.push_back(x[l][n * J + j]);
          ASSERT_EQ(s[j * L + l], reference::chunked_sum(col)) << "N " << N << " lane " << l;
        }
    }
}

// The epilogues: each output the canonical dot, then + bias[j] (ops::linear), then relu's
// backward at z or relu's forward into a second array (kernels/common/activation.h's
// formulas), compared as bits; values include +-0.0f, NaN and infinities (a bias of -dot
// makes an exact +0.0f). Shapes: the forward (one pass), a weight gradient in passes of rows
// (the epilogue on the last pass only) and a reduction of two chunks (the tree's root).
void check_epilogue(const Kernels& k, const Case& t, bool bias, bool relu_grad, bool relu) {
  SCOPED_TRACE(::testing::Message()
               << k.lanes << " lanes, R " << t.R << (bias ? ", bias" : "")
               << (relu_grad ? ", relu backward" : "") << (relu ? ", relu" : ""));
  const float nan = std::numeric_limits<float>::quiet_NaN(),
              inf = std::numeric_limits<float>::infinity();
  const i64 L = k.lanes, IJ = t.I * t.J;
  const auto a = problems(t.count, t.a_n, 11), b = problems(t.count, t.b_n, 29);
  auto want = std::vector<std::vector<float>>(static_cast<std::size_t>(t.count));
  for (i64 l = 0; l < t.count; ++l)
    for (i64 i = 0; i < t.I; ++i)
      for (i64 j = 0; j < t.J; ++j)
        want[l].push_back(canonical_dot(t.R, a[l], i * t.a_i, t.a_r, b[l], j * t.b_j, t.b_r));
  auto bv = problems(t.count, t.J, 41), z = problems(t.count, IJ, 43);
  bv[0][1] = nan, bv[0][2] = inf, bv[0][3] = -inf, bv[1][0] = -want[1][0];  // exact +0
  z[0][0] = -0.0f, z[0][1] = 0.0f, z[0][2] = nan, z[1][1] = inf, z[1][3] = -inf;
  const std::vector<float> al = by_hand(a, t.a_n, L), bl = by_hand(b, t.b_n, L),
                           bias_l = by_hand(bv, t.J, L), z_l = by_hand(z, IJ, L);
  std::vector<float> c(static_cast<std::size_t>(IJ * L), -7.0f), act(c.size(), -5.0f);
  Epilogue ep;
  if (bias) ep.bias = bias_l.data();
  if (relu_grad) ep.relu_grad_of = z_l.data();
  if (relu) ep.relu = act.data();
  dot(k, t.I, t.J, t.R, al.data(), t.a_i, t.a_r, bl.data(), t.b_j, t.b_r, c.data(), t.J, 1, &ep);
  auto bits = [](float v) { return std::bit_cast<std::uint32_t>(v); };
  for (i64 l = 0; l < t.count; ++l)
    for (i64 e = 0; e < IJ; ++e) {
      float v = want[l][e];
      if (bias) v = v + bv[l][e % t.J];
      if (relu_grad) v = act_backward(Activation::relu, z[l][e], 0.0f, v, 0.0f);
      ASSERT_EQ(bits(c[e * L + l]), bits(v)) << "lane " << l << " output " << e;
      if (relu) {
        ASSERT_EQ(bits(act[e * L + l]), bits(act_forward_impl(Activation::relu, v, 0.0f, false)))
            << "lane " << l << " output " << e;
      }
    }
}

TEST(Lanes, EpiloguesAreTheSeparatePassesBitForBit) {
  const i64 N = 300, O = 6, K = 5;
  for (const Kernels* k : kernel_sets())
    for (int mask = 1; mask < 8; ++mask) {
      const bool bias = mask & 1, relu_grad = mask & 2, relu = mask & 4;
      const i64 L = k->lanes;
      check_epilogue(*k, {7, O, K, K, 1, K, 1, 7 * K, O * K, L}, bias, relu_grad, relu);
      check_epilogue(*k, {O, K, N, 1, O, 1, K, N * O, N * K, L - 2}, bias, relu_grad, relu);
      const i64 R = 4096 + 9;
      check_epilogue(*k, {O, K, R, 1, O, 1, K, R * O, R * K, 3}, bias, relu_grad, relu);
    }
}

TEST(Lanes, GatherRowsIsInterleaveOfTheGatheredRows) {
  for (int L : {8, 16})
    for (i64 n : {1, 3, 8, 11, 20, 784})  // a tail only, one block, blocks and tails
      for (i64 count : {i64{L}, i64{L - 3}}) {
        const i64 total = 50, rows = 37;  // each problem's table of rows; a batch of them
        const auto tables = problems(count, total * n, 17);
        std::vector<std::vector<i64>> order(static_cast<std::size_t>(count));
        std::vector<const float*> src;
        std::vector<const i64*> ord;
        for (i64 l = 0; l < count; ++l) {
          std::mt19937 gen(static_cast<unsigned>(l));
          for (i64 i = 0; i < rows; ++i) order[l].push_back(static_cast<i64>(gen() % total));
          src.push_back(tables[l].data());
          ord.push_back(order[l].data());
        }
        std::vector<float> got(static_cast<std::size_t>(rows * n * L), -3.0f);
        gather_rows(L, rows, n, src.data(), ord.data(), count, got.data());
        std::vector<std::vector<float>> gathered(static_cast<std::size_t>(count));
        for (i64 l = 0; l < count; ++l)
          for (i64 i = 0; i < rows; ++i)
            for (i64 f = 0; f < n; ++f) gathered[l].push_back(tables[l][order[l][i] * n + f]);
        ASSERT_EQ(got, by_hand(gathered, rows * n, L)) << "n " << n << ", " << count << " of " << L;
      }
}

TEST(Lanes, InterleaveAndDeinterleaveMoveEveryFloat) {
  for (int L : {8, 16})
    for (i64 count : {i64{L}, i64{L - 1}, i64{3}, i64{L > 8 ? 11 : 5}}) {  // full, short groups
      const i64 n = 8 * 5 + 3;  // whole 8 x 8 blocks and a tail
      const auto p = problems(count, n, 9);
      std::vector<const float*> src;
      for (const auto& v : p) src.push_back(v.data());
      std::vector<float> il(static_cast<std::size_t>(n * L), -3.0f);
      interleave(L, n, src.data(), count, il.data());
      EXPECT_EQ(il, by_hand(p, n, L));  // the other lanes zero
      std::vector<std::vector<float>> back(static_cast<std::size_t>(count),
                                           std::vector<float>(static_cast<std::size_t>(n)));
      std::vector<float*> dst;
      for (auto& v : back) dst.push_back(v.data());
      deinterleave(L, n, il.data(), count, dst.data());
      EXPECT_EQ(back, p);
    }
}

}  // namespace
}  // namespace detdl::cpu::lanes
