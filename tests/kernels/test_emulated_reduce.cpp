// The `emulated` level's reduce and scatter families on the CPU (emulated_reduce.h, the
// emulated batch norm of batchnorm.h and the emulated pooling of pool.h). For every
// alternative: (i) within the float64 bound the canonical tests use, (ii) the same bits on
// 1, 2 and 3 threads, (iii) other bits than the canonical order on some random inputs (not
// inert), (iv) the draw -> choice mapping reaches it over a few hundred seeds; and the
// canonical choice reproduces the canonical kernels bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <set>
#include <vector>

#include "kernels/common/philox.h"
#include "kernels/common/reduction.h"
#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/emulated_reduce.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/pool.h"
#include "kernels/cpu/reduce.h"
#include "tests/kernels/reference.h"

namespace {

using detdl::ImplDraw;
using detdl::ImplFamily;
using detdl::Level;
using detdl::cpu::ReduceShape;
using detdl::cpu::ScatterOrder;
using i64 = std::int64_t;
using Vec = std::vector<float>;
namespace cpu = detdl::cpu;

constexpr double kU = 0x1p-24;  // float's unit roundoff
constexpr int kShapes = detdl::cpu::kReduceShapeCount;

Vec random_vec(i64 n, std::uint32_t sub, float lo = -1.0f, float hi = 1.0f) {
  Vec v(static_cast<std::size_t>(n));
  for (i64 i = 0; i < n; ++i)
    v[i] = lo + (hi - lo) * detdl::philox_uniform(23, detdl::RandomStream::test, sub, i);
  return v;
}

std::uint32_t bits(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
bool same_bits(const Vec& a, const Vec& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

ImplDraw draw(std::uint64_t seed, ImplFamily f = ImplFamily::reduce, std::uint32_t place = 0,
              std::uint32_t step = 0) {
  return ImplDraw{seed, f, place, step};
}

ReduceShape shape(int i) { return static_cast<ReduceShape>(i); }

// The bound of test_reduction.cpp's float64 sanity check: (256 + 20) u sum |x|.
void expect_within_canonical_bound(float got, const float* x, i64 n, i64 stride, int s) {
  double exact = 0, mag = 0;
  for (i64 k = 0; k < n; ++k) {
    exact += x[k * stride];
    mag += std::fabs(x[k * stride]);
  }
  EXPECT_NEAR(got, exact, (detdl::kChunkValues + 20) * kU * mag) << "shape " << s << " n " << n;
}

TEST(EmulatedReduce, EveryShapeWithinTheCanonicalBound) {
  for (int s = 0; s < kShapes; ++s)
    for (i64 n : {1, 2, 31, 32, 33, 255, 256, 257, 1000, 1025, 4097, 20000, 70000}) {
      const Vec x = random_vec(n, static_cast<std::uint32_t>(n));
      expect_within_canonical_bound(cpu::shaped_sum(shape(s), draw(5), n, x.data()), x.data(), n, 1,
                                    s);
    }
}

TEST(EmulatedReduce, ColumnAndPlaneSumsWithinTheCanonicalBound) {
  const i64 rows = 700, cols = 19, N = 9, C = 5, P = 77;
  const Vec x = random_vec(rows * cols, 1), y = random_vec(N * C * P, 2);
  for (int s = 0; s < kShapes; ++s) {
    Vec out(cols), pout(C);
    cpu::shaped_column_sums(shape(s), draw(3), rows, cols, x.data(), out.data());
    for (i64 j = 0; j < cols; ++j)
      expect_within_canonical_bound(out[j], x.data() + j, rows, cols, s);
    cpu::shaped_plane_sums(shape(s), draw(3), N, C, P, y.data(), pout.data());
    for (i64 c = 0; c < C; ++c) {
      Vec flat;  // channel c's values in (n, p) order
      for (i64 n = 0; n < N; ++n)
        for (i64 p = 0; p < P; ++p) flat.push_back(y[(n * C + c) * P + p]);
      expect_within_canonical_bound(pout[c], flat.data(), N * P, 1, s);
    }
  }
}

TEST(EmulatedReduce, CanonicalShapeIsTheCanonicalOrder) {
  const i64 rows = 600, cols = 70, N = 4, C = 6, P = 100;
  const Vec x = random_vec(rows * cols, 4), y = random_vec(N * C * P, 5);
  Vec got(cols), want(cols);
  cpu::shaped_column_sums(ReduceShape::canonical, draw(1), rows, cols, x.data(), got.data());
  cpu::column_sums(Level::portable, rows, cols, x.data(), want.data());
  EXPECT_TRUE(same_bits(got, want));
  Vec pg(C);
  cpu::shaped_plane_sums(ReduceShape::canonical, draw(1), N, C, P, y.data(), pg.data());
  for (i64 c = 0; c < C; ++c) {
    std::vector<float> flat;
    for (i64 n = 0; n < N; ++n)
      for (i64 p = 0; p < P; ++p) flat.push_back(y[(n * C + c) * P + p]);
    EXPECT_EQ(bits(pg[c]), bits(detdl::reference::chunked_sum(flat))) << c;
  }
  EXPECT_EQ(bits(cpu::shaped_sum(ReduceShape::canonical, draw(1), rows * cols, x.data())),
            bits(cpu::sum_all(Level::portable, rows * cols, x.data())));
}

TEST(EmulatedReduce, SameBitsOnOneTwoThreeThreads) {
  const i64 rows = 513, cols = 37, N = 5, C = 7, P = 61, n = 9000;
  const Vec x = random_vec(rows * cols, 6), y = random_vec(N * C * P, 7);
  for (int s = 0; s < kShapes; ++s) {
    std::vector<Vec> cs, ps, gs;
    std::vector<std::uint32_t> ss;
    for (int t : {1, 2, 3}) {
      cpu::set_num_threads(t);
      Vec a(cols), b(C), g(N * C);
      cpu::shaped_column_sums(shape(s), draw(9), rows, cols, x.data(), a.data());
      cpu::shaped_plane_sums(shape(s), draw(9), N, C, P, y.data(), b.data());
      cpu::global_avgpool_forward(shape(s), draw(9), N, C, P, y.data(), g.data());
      cs.push_back(a);
      ps.push_back(b);
      gs.push_back(g);
      ss.push_back(bits(cpu::shaped_sum(shape(s), draw(9), n, x.data())));
    }
    cpu::set_num_threads(1);
    for (int t = 1; t < 3; ++t) {
      EXPECT_TRUE(same_bits(cs[0], cs[t])) << s;
      EXPECT_TRUE(same_bits(ps[0], ps[t])) << s;
      EXPECT_TRUE(same_bits(gs[0], gs[t])) << s;
      EXPECT_EQ(ss[0], ss[t]) << s;
    }
  }
}

// Each non-canonical shape gives other bits than the canonical order on some inputs.
TEST(EmulatedReduce, EveryShapeChangesBitsSomewhere) {
  for (int s = 1; s < kShapes; ++s) {
    int differ = 0;
    for (std::uint32_t trial = 0; trial < 20; ++trial) {
      const Vec x = random_vec(3000, 100 + trial);
      differ += bits(cpu::shaped_sum(shape(s), draw(trial), 3000, x.data())) !=
                bits(detdl::canonical_sum(x.data(), 3000));
    }
    EXPECT_GT(differ, 0) << "shape " << s << " is inert";
  }
}

TEST(EmulatedReduce, DrawMappingReachesEveryShape) {
  std::vector<int> hits(kShapes, 0);
  for (std::uint64_t seed = 0; seed < 300; ++seed)
    ++hits[static_cast<int>(cpu::reduce_shape(draw(seed, ImplFamily::reduce, seed % 7)))];
  for (int s = 0; s < kShapes; ++s) EXPECT_GT(hits[s], 20) << "shape " << s;
}

TEST(EmulatedReduce, EmulatedFunctionsFollowTheDraw) {
  const i64 rows = 300, cols = 11;
  const Vec x = random_vec(rows * cols, 8);
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    const ImplDraw d = draw(seed, ImplFamily::reduce, 3, 4);
    Vec a(cols), b(cols), pa(cols), pb(cols);
    cpu::emulated_column_sums(d, rows, cols, x.data(), a.data());
    cpu::shaped_column_sums(cpu::reduce_shape(d), d, rows, cols, x.data(), b.data());
    EXPECT_TRUE(same_bits(a, b));
    cpu::emulated_plane_sums(d, rows, cols, 1, x.data(), pa.data());
    EXPECT_TRUE(same_bits(pa, b));  // P = 1: the same sums as the column sums
    EXPECT_EQ(bits(cpu::emulated_sum(d, rows * cols, x.data())),
              bits(cpu::shaped_sum(cpu::reduce_shape(d), d, rows * cols, x.data())));
  }
}

// block_atomic: the same step gives the same bits; other steps land the blocks in other
// orders, and so other bits for some steps.
TEST(EmulatedReduce, BlockAtomicOrderIsDrawnPerStep) {
  const Vec x = random_vec(5000, 9);
  std::set<std::uint32_t> seen;
  for (std::uint32_t step = 0; step < 30; ++step) {
    const ImplDraw d = draw(77, ImplFamily::reduce, 0, step);
    const float a = cpu::shaped_sum(ReduceShape::block_atomic, d, 5000, x.data());
    EXPECT_EQ(bits(a), bits(cpu::shaped_sum(ReduceShape::block_atomic, d, 5000, x.data())));
    seen.insert(bits(a));
  }
  EXPECT_GT(seen.size(), 1u);
}

// ---- batch norm (reduce + contraction) ----

struct BnOut {
  Vec y, mean, inv_std, var, dx, dgamma, dbeta;
};

BnOut run_bn(const cpu::BatchnormImpl* impl, i64 N, i64 C, i64 HW, const Vec& x, const Vec& g,
             const Vec& b, const Vec& dy) {
  BnOut o{Vec(x.size()), Vec(C), Vec(C), Vec(C), Vec(x.size()), Vec(C), Vec(C)};
  if (impl) {
    cpu::batchnorm_forward_train(*impl, N, C, HW, x.data(), g.data(), b.data(), 1e-5f, o.y.data(),
                                 o.mean.data(), o.inv_std.data(), o.var.data());
    cpu::batchnorm_backward(*impl, N, C, HW, x.data(), dy.data(), g.data(), o.mean.data(),
                            o.inv_std.data(), o.dx.data(), o.dgamma.data(), o.dbeta.data());
  } else {
    cpu::batchnorm_forward_train(Level::portable, N, C, HW, x.data(), g.data(), b.data(), 1e-5f,
                                 o.y.data(), o.mean.data(), o.inv_std.data(), o.var.data());
    cpu::batchnorm_backward(Level::portable, N, C, HW, x.data(), dy.data(), g.data(), o.mean.data(),
                            o.inv_std.data(), o.dx.data(), o.dgamma.data(), o.dbeta.data());
  }
  return o;
}

bool same_bn(const BnOut& a, const BnOut& b) {
  return same_bits(a.y, b.y) && same_bits(a.mean, b.mean) && same_bits(a.var, b.var) &&
         same_bits(a.dx, b.dx) && same_bits(a.dgamma, b.dgamma) && same_bits(a.dbeta, b.dbeta);
}

// Float64 forward and analytic backward: the tolerances of test_batchnorm.cpp.
void expect_bn_near64(const BnOut& o, i64 N, i64 C, i64 HW, const Vec& x, const Vec& g,
                      const Vec& b, const Vec& dy, const char* what) {
  const double count = static_cast<double>(N * HW);
  for (i64 c = 0; c < C; ++c) {
    double s = 0, q = 0, db = 0, dg = 0;
    auto at = [&](i64 n, i64 hw) { return (n * C + c) * HW + hw; };
    for (i64 n = 0; n < N; ++n)
      for (i64 hw = 0; hw < HW; ++hw) s += x[at(n, hw)];
    const double mean = s / count;
    for (i64 n = 0; n < N; ++n)
      for (i64 hw = 0; hw < HW; ++hw) q += (x[at(n, hw)] - mean) * (x[at(n, hw)] - mean);
    const double var = q / count, inv = 1.0 / std::sqrt(var + double(1e-5f));
    EXPECT_NEAR(o.mean[c], mean, 1e-6 + 1e-5 * std::fabs(mean)) << what;
    EXPECT_NEAR(o.var[c], var, 1e-6 + 1e-5 * var) << what;
    for (i64 n = 0; n < N; ++n)
      for (i64 hw = 0; hw < HW; ++hw) {
        const double xh = (x[at(n, hw)] - mean) * inv;
        ASSERT_NEAR(o.y[at(n, hw)], xh * g[c] + b[c], 1e-4) << what;
        db += dy[at(n, hw)];
        dg += dy[at(n, hw)] * xh;
      }
    EXPECT_NEAR(o.dbeta[c], db, 1e-4 * (1 + std::fabs(db))) << what;
    EXPECT_NEAR(o.dgamma[c], dg, 1e-4 * (1 + std::fabs(dg))) << what;
    for (i64 n = 0; n < N; ++n)
      for (i64 hw = 0; hw < HW; ++hw) {
        const double xh = (x[at(n, hw)] - mean) * inv;
        const double want = g[c] * inv / count * (count * dy[at(n, hw)] - db - xh * dg);
        ASSERT_NEAR(o.dx[at(n, hw)], want, 1e-4 * (1 + std::fabs(want))) << what;
      }
  }
}

struct BnCase {
  i64 N, C, HW;
};
constexpr BnCase kBnCases[] = {{32, 6, 1}, {8, 4, 81}, {3, 5, 700}};

std::vector<cpu::BatchnormImpl> bn_alternatives() {
  std::vector<cpu::BatchnormImpl> v;
  for (int s = 0; s < kShapes; ++s) v.push_back({shape(s), draw(13), false, false, false});
  v.push_back({ReduceShape::canonical, draw(13), true, false, false});
  v.push_back({ReduceShape::canonical, draw(13), false, true, false});
  v.push_back({ReduceShape::canonical, draw(13), false, false, true});
  v.push_back({ReduceShape::warp_tree_256, draw(13), true, true, true});
  return v;
}

TEST(EmulatedBatchnorm, DefaultImplIsTheCanonicalKernel) {
  for (const BnCase& k : kBnCases) {
    const i64 n = k.N * k.C * k.HW;
    const Vec x = random_vec(n, 30), g = random_vec(k.C, 31, 0.5f, 1.5f), b = random_vec(k.C, 32),
              dy = random_vec(n, 33);
    const cpu::BatchnormImpl canonical{};
    EXPECT_TRUE(same_bn(run_bn(&canonical, k.N, k.C, k.HW, x, g, b, dy),
                        run_bn(nullptr, k.N, k.C, k.HW, x, g, b, dy)));
  }
}

TEST(EmulatedBatchnorm, EveryAlternativeNearFloat64AndThreadInvariant) {
  for (const BnCase& k : kBnCases) {
    const i64 n = k.N * k.C * k.HW;
    Vec x = random_vec(n, 40), dy = random_vec(n, 43);
    for (i64 i = 0; i < n; ++i) x[i] += 0.25f * static_cast<float>((i / k.HW) % k.C % 5);
    const Vec g = random_vec(k.C, 41, 0.5f, 1.5f), b = random_vec(k.C, 42);
    for (const cpu::BatchnormImpl& impl : bn_alternatives()) {
      std::vector<BnOut> runs;
      for (int t : {1, 2, 3}) {
        cpu::set_num_threads(t);
        runs.push_back(run_bn(&impl, k.N, k.C, k.HW, x, g, b, dy));
      }
      cpu::set_num_threads(1);
      EXPECT_TRUE(same_bn(runs[0], runs[1]) && same_bn(runs[0], runs[2]));
      expect_bn_near64(runs[0], k.N, k.C, k.HW, x, g, b, dy, "batch norm alternative");
    }
  }
}

TEST(EmulatedBatchnorm, EveryAlternativeChangesBitsSomewhere) {
  const BnCase k{16, 8, 49};
  const i64 n = k.N * k.C * k.HW;
  const Vec x = random_vec(n, 50), g = random_vec(k.C, 51, 0.5f, 1.5f), b = random_vec(k.C, 52),
            dy = random_vec(n, 53);
  const BnOut canonical = run_bn(nullptr, k.N, k.C, k.HW, x, g, b, dy);
  const auto alts = bn_alternatives();
  for (std::size_t a = 1; a < alts.size(); ++a)
    EXPECT_FALSE(same_bn(run_bn(&alts[a], k.N, k.C, k.HW, x, g, b, dy), canonical)) << a;
  // The forward affine's contraction alone changes y; the backward sites change dx.
  const cpu::BatchnormImpl fa{ReduceShape::canonical, draw(1), true, false, false};
  EXPECT_FALSE(same_bits(run_bn(&fa, k.N, k.C, k.HW, x, g, b, dy).y, canonical.y));
  const cpu::BatchnormImpl f2{ReduceShape::canonical, draw(1), false, false, true};
  EXPECT_FALSE(same_bits(run_bn(&f2, k.N, k.C, k.HW, x, g, b, dy).dx, canonical.dx));
}

TEST(EmulatedBatchnorm, DrawMappingReachesEveryChoice) {
  std::vector<int> shapes(kShapes, 0);
  int fa = 0, f1 = 0, f2 = 0;
  for (std::uint64_t seed = 0; seed < 300; ++seed) {
    const ImplDraw r = draw(seed, ImplFamily::reduce), c = draw(seed, ImplFamily::contraction);
    const cpu::BatchnormImpl impl = cpu::batchnorm_impl(&r, &c);
    ++shapes[static_cast<int>(impl.reduce)];
    fa += impl.fma_affine, f1 += impl.fma_count_dy, f2 += impl.fma_xhat_dgamma;
  }
  for (int s = 0; s < kShapes; ++s) EXPECT_GT(shapes[s], 20) << s;
  for (int v : {fa, f1, f2}) {
    EXPECT_GT(v, 100);
    EXPECT_LT(v, 200);
  }
  const cpu::BatchnormImpl none = cpu::batchnorm_impl(nullptr, nullptr);
  EXPECT_EQ(none.reduce, ReduceShape::canonical);
  EXPECT_FALSE(none.fma_affine || none.fma_count_dy || none.fma_xhat_dgamma);
}

TEST(EmulatedBatchnorm, EvalContractionNearAndNotInert) {
  const i64 N = 8, C = 4, HW = 25, n = N * C * HW;
  const Vec x = random_vec(n, 60), g = random_vec(C, 61, 0.5f, 1.5f), b = random_vec(C, 62),
            rm = random_vec(C, 63), rv = random_vec(C, 64, 0.5f, 2.0f);
  Vec want(n), got(n), fused(n);
  cpu::batchnorm_forward_eval(N, C, HW, x.data(), g.data(), b.data(), rm.data(), rv.data(), 1e-5f,
                              want.data());
  cpu::batchnorm_forward_eval(cpu::BatchnormImpl{}, N, C, HW, x.data(), g.data(), b.data(),
                              rm.data(), rv.data(), 1e-5f, got.data());
  EXPECT_TRUE(same_bits(got, want));
  const cpu::BatchnormImpl f{ReduceShape::canonical, draw(1), true, false, false};
  cpu::batchnorm_forward_eval(f, N, C, HW, x.data(), g.data(), b.data(), rm.data(), rv.data(),
                              1e-5f, fused.data());
  EXPECT_FALSE(same_bits(fused, want));
  for (i64 i = 0; i < n; ++i) {
    const i64 c = (i / HW) % C;
    const double y = (double(x[i]) - rm[c]) / std::sqrt(double(rv[c]) + 1e-5f) * g[c] + b[c];
    ASSERT_NEAR(fused[i], y, 1e-5) << i;
  }
}

// ---- pooling: scatter order of overlapping windows, global average pooling ----

// Float64 backward of avg / max pooling for dy (the exact sums of the contributions).
std::vector<double> pool_backward64(const detdl::Pool2dShape& s, bool max, const Vec& dy,
                                    const std::vector<std::int32_t>& argmax) {
  std::vector<double> dx(static_cast<std::size_t>(s.N * s.C * s.H * s.W), 0.0);
  for (i64 p = 0; p < s.N * s.C; ++p)
    for (i64 oh = 0; oh < s.OH; ++oh)
      for (i64 ow = 0; ow < s.OW; ++ow) {
        const i64 j = p * s.OH * s.OW + oh * s.OW + ow;
        if (max) {
          if (argmax[j] >= 0) dx[p * s.H * s.W + argmax[j]] += dy[j];
          continue;
        }
        for (i64 kh = 0; kh < s.KH; ++kh)
          for (i64 kw = 0; kw < s.KW; ++kw) {
            const i64 ih = oh * s.stride_h - s.pad_top + kh, iw = ow * s.stride_w - s.pad_left + kw;
            if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W)
              dx[p * s.H * s.W + ih * s.W + iw] += double(dy[j]) / double(s.KH * s.KW);
          }
      }
  return dx;
}

Vec pool_backward(ScatterOrder o, const ImplDraw& d, const detdl::Pool2dShape& s, bool max,
                  const Vec& dy, const std::vector<std::int32_t>& argmax) {
  Vec dx(static_cast<std::size_t>(s.N * s.C * s.H * s.W));
  if (max)
    cpu::maxpool2d_backward(o, d, s, dy.data(), argmax.data(), dx.data());
  else
    cpu::avgpool2d_backward(o, d, s, /*count_include_pad=*/true, dy.data(), dx.data());
  return dx;
}

TEST(EmulatedPool, OverlappingScatterNearFloat64ThreadInvariantAndNotInert) {
  const detdl::Pool2dShape s = detdl::pool2d_shape(2, 3, 13, 11, 3, 3, 1, 1);
  ASSERT_TRUE(cpu::pool_windows_overlap(s));
  const i64 out = s.N * s.C * s.OH * s.OW;
  const Vec x = random_vec(s.N * s.C * s.H * s.W, 70);
  Vec y(out);
  std::vector<std::int32_t> argmax(out);
  cpu::maxpool2d_forward(s, x.data(), y.data(), argmax.data());
  for (bool max : {false, true}) {
    int differ = 0;
    for (std::uint32_t step = 0; step < 8; ++step) {
      const Vec dy = random_vec(out, 71 + step);
      const ImplDraw d = draw(5, ImplFamily::scatter, 0, step);
      std::vector<Vec> runs;
      for (int t : {1, 2, 3}) {
        cpu::set_num_threads(t);
        runs.push_back(pool_backward(ScatterOrder::arrival, d, s, max, dy, argmax));
      }
      cpu::set_num_threads(1);
      EXPECT_TRUE(same_bits(runs[0], runs[1]) && same_bits(runs[0], runs[2]));
      const auto want = pool_backward64(s, max, dy, argmax);
      for (std::size_t i = 0; i < want.size(); ++i)
        ASSERT_NEAR(runs[0][i], want[i], 1e-6 * (1 + std::fabs(want[i]))) << max << " " << i;
      const Vec canonical = pool_backward(ScatterOrder::canonical, d, s, max, dy, argmax);
      Vec plain(canonical.size());
      if (max)
        cpu::maxpool2d_backward(s, dy.data(), argmax.data(), plain.data());
      else
        cpu::avgpool2d_backward(s, true, dy.data(), plain.data());
      EXPECT_TRUE(same_bits(canonical, plain));
      differ += !same_bits(runs[0], canonical);
    }
    EXPECT_GT(differ, 0) << (max ? "max" : "avg") << " pool arrival order is inert";
  }
}

TEST(EmulatedPool, NonOverlappingScatterIsCanonical) {
  const detdl::Pool2dShape s = detdl::pool2d_shape(2, 3, 8, 8, 2, 2, 2, 0);  // LeNet's pools
  ASSERT_FALSE(cpu::pool_windows_overlap(s));
  const i64 out = s.N * s.C * s.OH * s.OW;
  const Vec x = random_vec(s.N * s.C * s.H * s.W, 80), dy = random_vec(out, 81);
  Vec y(out);
  std::vector<std::int32_t> argmax(out);
  cpu::maxpool2d_forward(s, x.data(), y.data(), argmax.data());
  for (bool max : {false, true})
    EXPECT_TRUE(same_bits(pool_backward(ScatterOrder::arrival, draw(1), s, max, dy, argmax),
                          pool_backward(ScatterOrder::canonical, draw(1), s, max, dy, argmax)));
}

TEST(EmulatedPool, ScatterDrawMappingReachesBothOrders) {
  int arrival = 0;
  for (std::uint64_t seed = 0; seed < 300; ++seed)
    arrival += cpu::scatter_order(draw(seed, ImplFamily::scatter)) == ScatterOrder::arrival;
  EXPECT_GT(arrival, 100);
  EXPECT_LT(arrival, 200);
}

TEST(EmulatedPool, GlobalAvgPoolShapes) {
  const i64 N = 3, C = 4, HW = 1000;
  const Vec x = random_vec(N * C * HW, 90);
  Vec want(N * C);
  cpu::global_avgpool_forward(N, C, HW, x.data(), want.data());
  for (int s = 0; s < kShapes; ++s) {
    Vec y(N * C);
    cpu::global_avgpool_forward(shape(s), draw(2), N, C, HW, x.data(), y.data());
    if (s == 0) {
      EXPECT_TRUE(same_bits(y, want));
    }
    int differ = 0;
    for (i64 p = 0; p < N * C; ++p) {
      double sum = 0, mag = 0;
      for (i64 k = 0; k < HW; ++k) sum += x[p * HW + k], mag += std::fabs(x[p * HW + k]);
      EXPECT_NEAR(y[p], sum / HW, (detdl::kChunkValues + 22) * kU * mag / HW) << s;
      differ += bits(y[p]) != bits(want[p]);
    }
    if (s != 0) {
      EXPECT_GT(differ, 0) << "shape " << s;
    }
  }
}

}  // namespace
