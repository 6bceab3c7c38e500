// Convolution kernels against (1) the order conv.h documents, written here as plain loops
// that build the canonical chunk tree level by level (bit for bit), (2) a float64
// reference (tolerance), (3) central differences in double of L = sum(y * r), and
// (4) themselves on 1, 2 and 3 threads and under several scratch budgets (bit for bit).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/common/philox.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/conv_direct.h"
#include "kernels/cpu/conv_pointwise.h"
#include "kernels/cpu/parallel.h"
#include "tests/kernels/reference.h"

namespace {

using detdl::check_conv2d_shape;
using detdl::conv2d_shape;
using detdl::conv2d_shape_same;
using detdl::conv2d_shape_valid;
using detdl::Conv2dShape;
using detdl::Level;
using i64 = std::int64_t;
using Vec = std::vector<float>;
using Vec64 = std::vector<double>;

Vec random_vec(i64 n, std::uint32_t sub) {
  Vec v(static_cast<std::size_t>(n));
  for (i64 i = 0; i < n; ++i)
    v[i] = 2.0f * detdl::philox_uniform(42, detdl::RandomStream::test, sub, i) - 1.0f;
  return v;
}

// ---- the canonical reduction, written independently of ChunkTree: level by level ----
float tree_of(Vec parts) { return detdl::reference::level_tree(std::move(parts)); }
float ref_dot(const Vec& a, const Vec& b) {
  Vec parts;
  for (std::size_t s = 0; s < a.size(); s += 4096) {
    float p = 0.0f;
    for (std::size_t k = s; k < std::min(a.size(), s + 4096); ++k) p = std::fmaf(a[k], b[k], p);
    parts.push_back(p);
  }
  return tree_of(parts);
}

// ---- index helpers ----
i64 xi(const Conv2dShape& s, i64 n, i64 c, i64 h, i64 w) {
  return ((n * s.C + c) * s.H + h) * s.W + w;
}
i64 yi(const Conv2dShape& s, i64 n, i64 o, i64 h, i64 w) {
  return ((n * s.O + o) * s.OH + h) * s.OW + w;
}
i64 wi(const Conv2dShape& s, i64 o, i64 c, i64 kh, i64 kw) {
  return ((o * s.C + c) * s.KH + kh) * s.KW + kw;
}
template <class T>
T xpad(const Conv2dShape& s, const std::vector<T>& x, i64 n, i64 c, i64 oh, i64 ow, i64 kh,
       i64 kw) {
  const i64 ih = oh * s.stride_h - s.pad_top + kh, iw = ow * s.stride_w - s.pad_left + kw;
  return (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) ? T(0) : x[xi(s, n, c, ih, iw)];
}
i64 x_size(const Conv2dShape& s) { return s.N * s.C * s.H * s.W; }
i64 y_size(const Conv2dShape& s) { return s.N * s.O * s.OH * s.OW; }
i64 w_size(const Conv2dShape& s) { return s.O * s.C * s.KH * s.KW; }

// ---- the documented orders as plain loops (float, bit for bit) ----
Vec ref_forward(const Conv2dShape& s, const Vec& x, const Vec& w, const float* bias) {
  Vec y(y_size(s));
  for (i64 n = 0; n < s.N; ++n)
    for (i64 o = 0; o < s.O; ++o)
      for (i64 oh = 0; oh < s.OH; ++oh)
        for (i64 ow = 0; ow < s.OW; ++ow) {
          Vec a, b;  // terms over (c, kh, kw), padding included as 0.0f
          for (i64 c = 0; c < s.C; ++c)
            for (i64 kh = 0; kh < s.KH; ++kh)
              for (i64 kw = 0; kw < s.KW; ++kw) {
                a.push_back(xpad(s, x, n, c, oh, ow, kh, kw));
                b.push_back(w[wi(s, o, c, kh, kw)]);
              }
          const float r = ref_dot(a, b);
          y[yi(s, n, o, oh, ow)] = bias ? r + bias[o] : r;
        }
  return y;
}
// Output position of input pixel (i, j) under tap (kh, kw), if there is one.
bool out_pos(const Conv2dShape& s, i64 i, i64 j, i64 kh, i64 kw, i64& oh, i64& ow) {
  const i64 a = i + s.pad_top - kh, b = j + s.pad_left - kw;
  if (a < 0 || b < 0 || a % s.stride_h != 0 || b % s.stride_w != 0) return false;
  oh = a / s.stride_h;
  ow = b / s.stride_w;
  return oh < s.OH && ow < s.OW;
}
Vec ref_backward_data(const Conv2dShape& s, const Vec& dy, const Vec& w) {
  Vec dx(x_size(s));
  for (i64 n = 0; n < s.N; ++n)
    for (i64 c = 0; c < s.C; ++c)
      for (i64 i = 0; i < s.H; ++i)
        for (i64 j = 0; j < s.W; ++j) {
          float acc = 0.0f;
          for (i64 kh = 0; kh < s.KH; ++kh)
            for (i64 kw = 0; kw < s.KW; ++kw) {
              i64 oh, ow;
              if (!out_pos(s, i, j, kh, kw, oh, ow)) continue;
              Vec a, b;  // terms over o
              for (i64 o = 0; o < s.O; ++o) {
                a.push_back(w[wi(s, o, c, kh, kw)]);
                b.push_back(dy[yi(s, n, o, oh, ow)]);
              }
              acc = acc + ref_dot(a, b);
            }
          dx[xi(s, n, c, i, j)] = acc;
        }
  return dx;
}
Vec ref_backward_weight(const Conv2dShape& s, const Vec& x, const Vec& dy) {
  Vec dw(w_size(s));
  for (i64 o = 0; o < s.O; ++o)
    for (i64 c = 0; c < s.C; ++c)
      for (i64 kh = 0; kh < s.KH; ++kh)
        for (i64 kw = 0; kw < s.KW; ++kw) {
          Vec a, b;  // terms over (n, oh, ow): one reduction across the batch
          for (i64 n = 0; n < s.N; ++n)
            for (i64 oh = 0; oh < s.OH; ++oh)
              for (i64 ow = 0; ow < s.OW; ++ow) {
                a.push_back(dy[yi(s, n, o, oh, ow)]);
                b.push_back(xpad(s, x, n, c, oh, ow, kh, kw));
              }
          dw[wi(s, o, c, kh, kw)] = ref_dot(a, b);
        }
  return dw;
}
Vec ref_backward_bias(const Conv2dShape& s, const Vec& dy) {
  Vec db(s.O);
  for (i64 o = 0; o < s.O; ++o) {
    Vec v;
    for (i64 n = 0; n < s.N; ++n)
      for (i64 k = 0; k < s.OH * s.OW; ++k) v.push_back(dy[(n * s.O + o) * s.OH * s.OW + k]);
    db[o] = detdl::reference::chunked_sum(v);
  }
  return db;
}

// ---- float64 references (abs = true gives the sum of |terms|, the error scale) ----
Vec64 to64(const Vec& v, bool abs) {
  Vec64 d(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) d[i] = abs ? std::fabs(double(v[i])) : double(v[i]);
  return d;
}
Vec64 fwd64(const Conv2dShape& s, const Vec64& x, const Vec64& w, const Vec64* bias) {
  Vec64 y(y_size(s));
  for (i64 n = 0; n < s.N; ++n)
    for (i64 o = 0; o < s.O; ++o)
      for (i64 oh = 0; oh < s.OH; ++oh)
        for (i64 ow = 0; ow < s.OW; ++ow) {
          double acc = bias ? (*bias)[o] : 0.0;
          for (i64 c = 0; c < s.C; ++c)
            for (i64 kh = 0; kh < s.KH; ++kh)
              for (i64 kw = 0; kw < s.KW; ++kw)
                acc += xpad(s, x, n, c, oh, ow, kh, kw) * w[wi(s, o, c, kh, kw)];
          y[yi(s, n, o, oh, ow)] = acc;
        }
  return y;
}
// The three gradients of L = sum(y * dy) in float64, written as the adjoint of fwd64.
struct Grads64 {
  Vec64 dx, dw, db;
};
Grads64 grads64(const Conv2dShape& s, const Vec64& x, const Vec64& w, const Vec64& dy) {
  Grads64 g{Vec64(x_size(s)), Vec64(w_size(s)), Vec64(s.O)};
  for (i64 n = 0; n < s.N; ++n)
    for (i64 o = 0; o < s.O; ++o)
      for (i64 oh = 0; oh < s.OH; ++oh)
        for (i64 ow = 0; ow < s.OW; ++ow) {
          const double d = dy[yi(s, n, o, oh, ow)];
          g.db[o] += d;
          for (i64 c = 0; c < s.C; ++c)
            for (i64 kh = 0; kh < s.KH; ++kh)
              for (i64 kw = 0; kw < s.KW; ++kw) {
                const i64 ih = oh * s.stride_h - s.pad_top + kh,
                          iw = ow * s.stride_w - s.pad_left + kw;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                g.dx[xi(s, n, c, ih, iw)] += d * w[wi(s, o, c, kh, kw)];
                g.dw[wi(s, o, c, kh, kw)] += d * x[xi(s, n, c, ih, iw)];
              }
        }
  return g;
}

void expect_bits(const Vec& got, const Vec& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) {
    std::uint32_t a, b;
    std::memcpy(&a, &got[i], 4);
    std::memcpy(&b, &want[i], 4);
    ASSERT_EQ(a, b) << what << " at " << i << ": " << got[i] << " vs " << want[i];
  }
}
void expect_close(const Vec& got, const Vec64& want, const Vec64& scale, double rel,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], rel * scale[i] + 1e-30) << what << " at " << i;
}

void use_threads(int n) { detdl::cpu::set_num_threads(n); }

struct Case {
  const char* name;
  Conv2dShape s;
};
std::vector<Case> cases() {
  using namespace detdl::cpu;
  return {
      {"1x1", conv2d_shape(3, 3, 7, 5, 4, 1, 1, 1, 0)},
      {"1x1_stride2", conv2d_shape(2, 3, 8, 7, 4, 1, 1, 2, 0)},
      {"3x3_s1_p1_N1", conv2d_shape(1, 3, 7, 5, 5, 3, 3, 1, 1)},
      {"3x3_s2_p1", conv2d_shape(2, 3, 7, 5, 4, 3, 3, 2, 1)},
      {"3x3_s2_same_asym", conv2d_shape_same(3, 2, 8, 6, 3, 3, 3, 2)},
      {"3x3_s2_same_odd", conv2d_shape_same(1, 3, 7, 5, 2, 3, 3, 2)},
      {"5x5_same_lenet", conv2d_shape_same(2, 1, 7, 5, 3, 5, 5, 1)},
      {"5x5_valid", conv2d_shape_valid(3, 3, 9, 8, 4, 5, 5, 1)},
      // 3x2 kernel, strides 1 and 2, and output rows/cols that reach past the input.
      {"manual_3x2_past", Conv2dShape{2, 2, 6, 5, 3, 3, 2, 1, 2, 1, 0, 7, 3}},
  };
}

struct Outputs {
  Vec y, y_nobias, dx, dw, db;
};
Outputs run_all(const Conv2dShape& s, const Vec& x, const Vec& w, const Vec& b, const Vec& dy) {
  using namespace detdl::cpu;
  Outputs r{Vec(y_size(s)), Vec(y_size(s)), Vec(x_size(s), 7.0f), Vec(w_size(s), 7.0f),
            Vec(s.O, 7.0f)};  // gradients are overwritten, never accumulated into
  conv2d_forward(Level::portable, s, x.data(), w.data(), b.data(), r.y.data());
  conv2d_forward(Level::repeatable, s, x.data(), w.data(), nullptr, r.y_nobias.data());
  conv2d_backward_data(Level::portable, s, dy.data(), w.data(), r.dx.data());
  conv2d_backward_weight(Level::portable, s, x.data(), dy.data(), r.dw.data());
  conv2d_backward_bias(Level::portable, s, dy.data(), r.db.data());
  return r;
}

// Checks every kernel on one shape: the same bits on 1, 2, 3 threads and under three scratch
// budgets (`sweep`), bit for bit against the documented order, near float64, and (`fd`)
// against central differences.
void check_all(const Conv2dShape& s, const std::string& name, bool sweep, bool fd) {
  const Vec x = random_vec(x_size(s), 1), w = random_vec(w_size(s), 2), b = random_vec(s.O, 3);
  const Vec dy = random_vec(y_size(s), 4);

  use_threads(1);
  const Outputs out = run_all(s, x, w, b, dy);
  if (sweep) {
    const i64 budget = detdl::cpu::conv_scratch_budget();
    for (int threads : {1, 2, 3}) {
      use_threads(threads);
      for (i64 bud : {budget, i64{1}, i64{5000}, i64{100000}}) {
        detdl::cpu::set_conv_scratch_budget(bud);
        const Outputs o = run_all(s, x, w, b, dy);
        const std::string at =
            name + " threads=" + std::to_string(threads) + " budget=" + std::to_string(bud) + " ";
        expect_bits(o.y, out.y, at + "forward");
        expect_bits(o.y_nobias, out.y_nobias, at + "forward no bias");
        expect_bits(o.dx, out.dx, at + "backward_data");
        expect_bits(o.dw, out.dw, at + "backward_weight");
        expect_bits(o.db, out.db, at + "backward_bias");
      }
    }
    detdl::cpu::set_conv_scratch_budget(budget);
    use_threads(1);
  }
  const Vec &y = out.y, &dx = out.dx, &dw = out.dw, &db = out.db;

  expect_bits(y, ref_forward(s, x, w, b.data()), name + " forward vs canonical loop");
  expect_bits(out.y_nobias, ref_forward(s, x, w, nullptr), name + " forward (no bias) vs loop");
  expect_bits(dx, ref_backward_data(s, dy, w), name + " backward_data vs canonical loop");
  expect_bits(dw, ref_backward_weight(s, x, dy), name + " backward_weight vs canonical loop");
  expect_bits(db, ref_backward_bias(s, dy), name + " backward_bias vs canonical loop");

  const Vec64 b64 = to64(b, false), babs = to64(b, true);
  expect_close(y, fwd64(s, to64(x, false), to64(w, false), &b64),
               fwd64(s, to64(x, true), to64(w, true), &babs), 1e-5, name + " forward vs f64");
  const Grads64 g = grads64(s, to64(x, false), to64(w, false), to64(dy, false));
  const Grads64 ga = grads64(s, to64(x, true), to64(w, true), to64(dy, true));
  expect_close(dx, g.dx, ga.dx, 1e-5, name + " backward_data vs f64");
  expect_close(dw, g.dw, ga.dw, 1e-5, name + " backward_weight vs f64");
  expect_close(db, g.db, ga.db, 1e-5, name + " backward_bias vs f64");
  if (!fd) return;

  // Central differences in double of L = sum(fwd64(x, w, b) * dy) for every input.
  const Vec64 r = to64(dy, false);
  Vec64 x64 = to64(x, false), w64 = to64(w, false), bb64 = to64(b, false);
  auto loss = [&] {
    const Vec64 yy = fwd64(s, x64, w64, &bb64);
    double L = 0.0;
    for (std::size_t i = 0; i < yy.size(); ++i) L += yy[i] * r[i];
    return L;
  };
  const double h = 1e-3;
  auto fd_check = [&](Vec64& param, const Vec& grad, const char* what) {
    for (std::size_t i = 0; i < param.size(); ++i) {
      const double keep = param[i];
      param[i] = keep + h;
      const double up = loss();
      param[i] = keep - h;
      const double down = loss();
      param[i] = keep;
      const double num = (up - down) / (2 * h);
      ASSERT_NEAR(grad[i], num, 1e-4 * (1.0 + std::fabs(num))) << name << " " << what << " " << i;
    }
  };
  fd_check(x64, dx, "finite-difference dx");
  fd_check(w64, dw, "finite-difference dw");
  fd_check(bb64, db, "finite-difference db");
}

TEST(ConvShape, Builders) {
  using namespace detdl::cpu;
  const Conv2dShape a = conv2d_shape(2, 3, 7, 5, 4, 3, 3, 2, 1);
  EXPECT_EQ(a.OH, 4);
  EXPECT_EQ(a.OW, 3);
  EXPECT_EQ(a.pad_top, 1);
  // Keras 'same', stride 2, even size: 0 before, 1 after.
  const Conv2dShape b = conv2d_shape_same(1, 1, 8, 6, 1, 3, 3, 2);
  EXPECT_EQ(b.OH, 4);
  EXPECT_EQ(b.OW, 3);
  EXPECT_EQ(b.pad_top, 0);
  EXPECT_EQ(b.pad_left, 0);
  const Conv2dShape c = conv2d_shape_same(1, 1, 28, 28, 6, 5, 5, 1);  // LeNet
  EXPECT_EQ(c.OH, 28);
  EXPECT_EQ(c.pad_top, 2);
  const Conv2dShape d = conv2d_shape_same(1, 1, 1, 1, 1, 3, 3, 2);  // pad total 2
  EXPECT_EQ(d.OH, 1);
  EXPECT_EQ(d.pad_top, 1);
  const Conv2dShape e = conv2d_shape_valid(1, 1, 14, 13, 16, 5, 5, 1);
  EXPECT_EQ(e.OH, 10);
  EXPECT_EQ(e.OW, 9);
  EXPECT_EQ(e.pad_left, 0);
}

TEST(ConvShape, RejectsBadFieldsByName) {
  using namespace detdl::cpu;
  auto message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no throw");
  };
  EXPECT_NE(message([] { conv2d_shape(0, 1, 4, 4, 1, 3, 3, 1, 1); }).find("N must"),
            std::string::npos);
  EXPECT_NE(message([] { conv2d_shape(1, 1, 4, 4, 0, 3, 3, 1, 1); }).find("O must"),
            std::string::npos);
  EXPECT_NE(message([] { conv2d_shape(1, 1, 4, 4, 1, 3, 3, 0, 1); }).find("stride"),
            std::string::npos);
  EXPECT_NE(message([] { conv2d_shape(1, 1, 4, 4, 1, 3, 3, 1, -1); }).find("pad"),
            std::string::npos);
  EXPECT_NE(message([] { conv2d_shape_valid(1, 1, 2, 4, 1, 3, 3, 1); }).find("KH"),
            std::string::npos);
  Conv2dShape s = conv2d_shape(1, 1, 4, 4, 1, 3, 3, 1, 1);
  s.OW = 0;
  EXPECT_NE(message([&] { check_conv2d_shape(s); }).find("OW"), std::string::npos);
  float v = 0;
  EXPECT_THROW(conv2d_forward(Level::portable, s, &v, &v, nullptr, &v), std::invalid_argument);
}

TEST(Conv, AllKernelsOnAwkwardShapes) {
  for (const Case& c : cases()) check_all(c.s, c.name, /*sweep=*/true, /*fd=*/false);
}

TEST(Conv, GradientsByFiniteDifferences) {
  for (const Case& c : cases()) check_all(c.s, c.name, /*sweep=*/false, /*fd=*/true);
}

// Reductions longer than one chunk: forward K = C*KH*KW = 4113, data-gradient O = 4100,
// weight gradient N*OH*OW = 2*48*48 = 4608, 5*48*48 = 11520 (3 chunks) and 3*80*80 = 19200
// (5 chunks, where the pairwise tree differs from a running sum; tiled by 1, 2 or all chunks
// under the budgets of check_all), bias N*OH*OW = 300 > 256.
TEST(Conv, LongReductions) {
  using namespace detdl::cpu;
  check_all(conv2d_shape(1, 457, 3, 3, 2, 3, 3, 1, 1), "forward K=4113", true, false);
  check_all(conv2d_shape(1, 2, 3, 3, 4100, 3, 3, 1, 1), "data O=4100", true, false);
  check_all(conv2d_shape(2, 1, 48, 48, 2, 3, 3, 1, 1), "weight K=4608", true, false);
  check_all(conv2d_shape_same(5, 1, 48, 48, 2, 3, 3, 1), "weight K=11520", true, false);
  check_all(conv2d_shape(3, 1, 80, 80, 2, 3, 3, 1, 1), "weight K=19200", true, false);
  check_all(conv2d_shape(3, 2, 10, 10, 3, 1, 1, 1, 0), "bias n=300", true, false);
}

// `fast` is allowed to differ from the canonical bits, but must still be right. The bias and
// weight gradients depend on which samples / tiles each thread got (forced here with the
// pool's test hook): that is the variation `fast` exists to produce.
TEST(Conv, FastLevelIsCloseAndDependsOnSchedule) {
  using namespace detdl::cpu;
  const Conv2dShape s = conv2d_shape_same(5, 1, 48, 48, 2, 3, 3, 1);
  const Vec x = random_vec(x_size(s), 1), dy = random_vec(y_size(s), 4), w(w_size(s), 0.0f);
  const Grads64 g = grads64(s, to64(x, false), to64(w, false), to64(dy, false));
  const Grads64 ga = grads64(s, to64(x, true), to64(w, true), to64(dy, true));
  const i64 budget = conv_scratch_budget();
  for (int threads : {1, 2, 3}) {
    use_threads(threads);
    for (i64 bud : {budget, i64{1}}) {  // one sgemm over the batch; 3 tiles of one chunk
      set_conv_scratch_budget(bud);
      Vec dw(w_size(s)), db(s.O);
      conv2d_backward_weight(Level::fast, s, x.data(), dy.data(), dw.data());
      conv2d_backward_bias(Level::fast, s, dy.data(), db.data());
      expect_close(dw, g.dw, ga.dw, 1e-5, "fast backward_weight");
      expect_close(db, g.db, ga.db, 1e-5, "fast backward_bias");
    }
  }
  use_threads(2);
  std::vector<Vec> db_runs, dw_runs;
  for (const std::vector<int>& assignment :
       {std::vector<int>{0, 1, 0, 1, 0}, std::vector<int>{0, 0, 0, 0, 1},
        std::vector<int>{1, 0, 0, 1, 1}}) {
    set_dynamic_assignment_for_testing(assignment);
    Vec db(s.O), dw(w_size(s));
    conv2d_backward_bias(Level::fast, s, dy.data(), db.data());
    conv2d_backward_weight(Level::fast, s, x.data(), dy.data(), dw.data());  // 3 tiles
    db_runs.push_back(db);
    dw_runs.push_back(dw);
  }
  set_conv_scratch_budget(budget);
  set_dynamic_assignment_for_testing({});
  use_threads(1);
  auto differ = [](const std::vector<Vec>& r) {
    const std::size_t bytes = r[0].size() * sizeof(float);
    return std::memcmp(r[0].data(), r[1].data(), bytes) != 0 ||
           std::memcmp(r[0].data(), r[2].data(), bytes) != 0;
  };
  EXPECT_TRUE(differ(db_runs)) << "fast bias gradient did not depend on the schedule";
  EXPECT_TRUE(differ(dw_runs)) << "fast weight gradient did not depend on the schedule";
}

// The direct kernels (conv_direct.h: forward with K <= 4096, data gradient with O <= 4096,
// any stride; the weight gradient) on the shapes that exercise their tiling: rows of more than 8
// positions (several vectors per row, a short last one), rows of 8 or fewer (two rows per
// tile), an odd number of vectors, channel counts that leave 1..5 rows in the last tile,
// padding wider than the kernel, output rows past the input, strides 2 and 3 (input columns
// split by phase in the forward, pixels taken by phase in the data gradient). Each must
// equal the canonical loops (check_all) and the im2col + sgemm path, bit for bit, also
// with NaN, infinite and signed-zero weights and subnormal inputs.
TEST(Conv, DirectKernelsMatchLoopsAndGemmPath) {
  using namespace detdl::cpu;
  const std::vector<Case> shapes = {
      {"lenet5_c1", conv2d_shape_same(3, 1, 28, 28, 6, 5, 5, 1)},
      {"lenet5_c2_O13_C7", conv2d_shape_same(2, 7, 14, 14, 13, 5, 5, 1)},
      {"rows_of_8", conv2d_shape(2, 3, 8, 8, 5, 3, 3, 1, 1)},
      {"odd_vectors_9x9", conv2d_shape(2, 2, 9, 9, 7, 3, 3, 1, 1)},
      {"valid_12x12_O4", conv2d_shape_valid(2, 2, 12, 12, 4, 5, 5, 1)},
      {"pad_past_kernel", conv2d_shape(1, 2, 5, 6, 3, 3, 3, 1, 3)},
      {"stride_h2_w1", Conv2dShape{2, 3, 9, 11, 8, 3, 3, 2, 1, 1, 1, 5, 11}},
      {"out_past_input", Conv2dShape{2, 2, 6, 5, 3, 3, 2, 1, 1, 1, 0, 7, 5}},
      {"N1_C12_O2", conv2d_shape(1, 12, 4, 19, 2, 3, 3, 1, 1)},
      {"weight_3_chunks_O20", conv2d_shape_same(5, 2, 48, 48, 20, 3, 3, 1)},
      {"rows_of_16_O40", conv2d_shape_same(2, 3, 16, 16, 40, 3, 3, 1)},
      {"rows_of_32_O9", conv2d_shape_same(2, 2, 32, 32, 9, 5, 5, 1)},
      {"stride2_same_keras", conv2d_shape_same(3, 4, 16, 16, 8, 3, 3, 2)},
      {"stride2_1x2", conv2d_shape(2, 5, 9, 9, 7, 1, 2, 2, 0)},
      {"projection_1x1_s2", conv2d_shape(2, 6, 10, 10, 9, 1, 1, 2, 0)},
      // The pointwise kernels (conv_pointwise.h): flat positions in pairs of vectors with a
      // short last pair, 6-channel blocks with a short last one, strides 1, 2, 3, rows of
      // 20 at stride 2 (the vector spread), and output smaller than the input.
      {"pointwise_s1_P35_O13", conv2d_shape(3, 7, 5, 7, 13, 1, 1, 1, 0)},
      {"pointwise_s2_rows_of_20", conv2d_shape(2, 4, 6, 40, 8, 1, 1, 2, 0)},
      {"pointwise_s3_O7", conv2d_shape(2, 5, 11, 10, 7, 1, 1, 3, 0)},
      {"pointwise_sh2_sw1_short", Conv2dShape{2, 3, 9, 11, 6, 1, 1, 2, 1, 0, 0, 4, 10}},
      // ... and with AVX-512 at stride 2 on rows of 16k, x read and dx written in place
      // (forward_in_place): rows of 32 (two vectors), rows of 31 (the second 16 floats of a
      // vector's 32 masked to 15; the last output row on the last input row, no zero row
      // below it), stride 3 down (two zero rows per output row), rows past the last output
      // row's (zeroed apart), channel blocks of 8 with short last ones.
      {"pointwise_s2_in_place_rows_of_64", conv2d_shape(2, 5, 6, 64, 11, 1, 1, 2, 0)},
      {"pointwise_s2_in_place_rows_of_31", conv2d_shape(3, 9, 7, 31, 17, 1, 1, 2, 0)},
      {"pointwise_s2_in_place_sh3", Conv2dShape{2, 3, 10, 32, 5, 1, 1, 3, 2, 0, 0, 4, 16}},
      {"pointwise_s2_in_place_rows_past", Conv2dShape{2, 10, 11, 32, 9, 1, 1, 2, 2, 0, 0, 4, 16}},
      // ... and the data gradient on output rows of 8, two per vector: ResNet's 32 -> 64
      // projection (16 x 16 in, short last channel blocks), rows of 15 (each row's 16th float
      // masked; no zero row below the last), stride 3 down (two zero rows below each), rows
      // past the last output row's.
      {"pointwise_s2_pairs_16x16_C32_O44", conv2d_shape(2, 32, 16, 16, 44, 1, 1, 2, 0)},
      {"pointwise_s2_pairs_rows_of_15", conv2d_shape(3, 5, 11, 15, 9, 1, 1, 2, 0)},
      {"pointwise_s2_pairs_sh3", Conv2dShape{2, 3, 11, 16, 5, 1, 1, 3, 2, 0, 0, 4, 8}},
      {"pointwise_s2_pairs_rows_past", Conv2dShape{2, 4, 13, 16, 6, 1, 1, 2, 2, 0, 0, 4, 8}},
      // The weight gradient's lanes over input channels (conv_pointwise_avx512.h, C <= 16, OW
      // a multiple of 16; the four above too): 16 channels at stride 1 over two chunks, the
      // boundary mid-sample and mid-row (4096 = 2304 + 37 * 48 + 16), 24 + 23 output channels.
      {"weight_by_input_lanes_2_chunks", conv2d_shape(3, 16, 48, 48, 47, 1, 1, 1, 0)},
      // ... two vectors of them (17..32 input channels, where O * 2 <= C * ceil(O / 16)): 24
      // channels on rows of 32, and 20 on row pairs of 8 over two chunks (the boundary in the
      // second sample, between two row pairs); the pairs_16x16_C32_O44 shape above too.
      {"weight_by_input_lanes_C24_O8", conv2d_shape(2, 24, 6, 64, 8, 1, 1, 2, 0)},
      {"weight_by_input_lanes_pairs_2_chunks", conv2d_shape(2, 20, 600, 16, 9, 1, 1, 2, 0)},
      {"stride3_5x5_p2", conv2d_shape(2, 2, 17, 19, 6, 5, 5, 3, 2)},
      {"stride2_rows_past_input", Conv2dShape{2, 2, 6, 9, 3, 3, 3, 2, 2, 1, 1, 4, 6}},
      // The weight gradient's row tiles (conv_direct_tiles.inc, weight_rows_tile): 4 vectors
      // of channels with AVX-512 (O 64), a short last panel (O 70: 64 + 6), 5x5 taps with two
      // vectors on the input itself (valid: no padded copy), 1x1 at stride 2 on the input.
      {"weight_rows_O64_3x3", conv2d_shape_same(2, 3, 8, 8, 64, 3, 3, 1)},
      {"weight_rows_O30_5x5_valid", conv2d_shape_valid(3, 4, 11, 11, 30, 5, 5, 1)},
      {"weight_rows_O70_1x1_s2", conv2d_shape(2, 5, 9, 9, 70, 1, 1, 2, 0)},
      // ... and the sliding ones (weight_slide_tile, stride 1, 3 or 5 taps per row): a chunk
      // edge leaving a segment shorter than a row's taps (4096 = 91 * 45 + 1, 65 * 63 + 1),
      // rows of 2 positions under 3 taps.
      {"weight_slide_chunk_edge_3x3", conv2d_shape_same(2, 2, 50, 45, 16, 3, 3, 1)},
      {"weight_slide_chunk_edge_5x5", conv2d_shape_same(2, 1, 40, 63, 16, 5, 5, 1)},
      {"weight_slide_rows_of_2", conv2d_shape(2, 2, 4, 2, 16, 3, 3, 1, 1)},
      // The data gradient's 8-channel tiles with the sums in memory (AVX-512,
      // data_mem_tile): 16 channels as 8 + 8 on rows of two vectors, 11 as 6 + 5 at stride 2
      // (phase rows of 14 and 13), 9 as 5 + 4 under 5x5 valid taps (dy smaller than dx);
      // groups of 3, 2 and 1 vectors.
      {"data_mem_C16_rows_of_32", conv2d_shape_same(3, 16, 6, 32, 5, 3, 3, 1)},
      {"data_mem_C11_stride2", conv2d_shape_same(3, 11, 7, 27, 4, 3, 3, 2)},
      {"data_mem_C9_valid_5x5", conv2d_shape_valid(3, 9, 12, 13, 3, 5, 5, 1)},
      // Lanes over channels (AVX-512; conv_direct_tiles.inc fwd_chan_tile, data_chan_tile):
      // rows of at most 8 with 32+ output channels (forward) or input channels (data
      // gradient), a short last panel (40 = 32 + 8), 5x5 valid with dy smaller than dx.
      {"chan_8x8_C40_O36", conv2d_shape_same(2, 40, 8, 8, 36, 3, 3, 1)},
      // The results' transposition in 8 x 8 blocks with short edges both ways: 49
      // positions of 40 channels (forward), 8-pixel rows of 44 channels (data gradient).
      {"chan_7x7_O40", conv2d_shape_same(2, 16, 7, 7, 40, 3, 3, 1)},
      {"chan_8x8_C44", conv2d_shape_same(3, 44, 8, 8, 12, 3, 3, 1)},
      {"chan_valid_5x5_C33", conv2d_shape_valid(2, 33, 8, 7, 5, 5, 5, 1)},
      {"chan_rows_of_13_C32", conv2d_shape_same(2, 32, 5, 13, 6, 3, 3, 1)},
      // ... and at strides: Keras 'same' at stride 2 (padding 0 before, 1 after), a vertical
      // stride alone, stride 3 with 5x5 taps (three column phases).
      {"chan_stride2_same_C32", conv2d_shape_same(3, 32, 16, 15, 9, 3, 3, 2)},
      {"chan_stride_h2_w1_C34", Conv2dShape{3, 34, 9, 11, 5, 3, 3, 2, 1, 1, 1, 5, 11}},
      {"chan_stride3_5x5_C32", conv2d_shape(3, 32, 17, 19, 6, 5, 5, 3, 2)},
      // The forward's channel lanes at stride 2 on rows of 9..16, reading the input at its
      // stride: padded ('same', a short last panel), unpadded (valid 3x3, and the 1x1
      // projection, taken from conv_pointwise), where the tiles read x itself.
      {"chan_fwd_stride2_rows_of_14_O36", conv2d_shape_same(2, 5, 24, 27, 36, 3, 3, 2)},
      {"chan_fwd_stride2_valid_O33", conv2d_shape_valid(2, 3, 17, 21, 33, 3, 3, 2)},
      {"chan_fwd_projection_O40", conv2d_shape(2, 6, 20, 22, 40, 1, 1, 2, 0)},
      // One vector of channel lanes (fwd_chan1, exactly 16 output channels on rows of 9..16):
      // LeNet-5's second layer, 'same' 3x3 rows of 13, stride 2 rows of 16, a 1x1 row of 11.
      {"chan1_lenet5_c2_valid_5x5", conv2d_shape_valid(2, 6, 14, 14, 16, 5, 5, 1)},
      {"chan1_same_3x3_rows_of_13", conv2d_shape_same(2, 5, 6, 13, 16, 3, 3, 1)},
      {"chan1_stride2_rows_of_16", conv2d_shape_same(2, 3, 9, 32, 16, 3, 3, 2)},
      {"chan1_1x1_rows_of_11", conv2d_shape(2, 7, 4, 11, 16, 1, 1, 1, 0)},
      // The channel-lane forward's taps leave out the positions whose window has them in
      // the padding (FwdChanTile's cols): 'same' 5x5 (two positions at each end: LeNet-5's
      // second layer in Keras), 5x5 on rows of 3, 7x7 on rows of 3 (taps with no position).
      {"chan1_lenet5_c2_same_5x5", conv2d_shape_same(2, 6, 14, 14, 16, 5, 5, 1)},
      {"chan_same_5x5_rows_of_3_O32", conv2d_shape_same(2, 4, 5, 3, 32, 5, 5, 1)},
      {"chan_same_7x7_rows_of_3_O32", conv2d_shape_same(2, 3, 4, 3, 32, 7, 7, 1)},
      // ... and the data gradient's (data_chan1, exactly 16 input channels, phase rows of up
      // to 16): stride 2 on rows of 31 (phases of 16 and 15), stride 1 on rows of 13.
      {"chan1_data_stride2_C16", conv2d_shape_same(3, 16, 7, 31, 5, 3, 3, 2)},
      {"chan1_data_rows_of_13_C16", conv2d_shape_same(3, 16, 5, 13, 7, 3, 3, 1)},
      // The data gradient with lanes over samples (data_sample_tile: stride 1, C < 8, blocks
      // of 16 or 8 samples): LeNet-5's second layer in Keras with a last block of 2 samples,
      // 7 channels as 6 + 1 under valid 5x5 taps on rows of 9, LeNet-5's first layer (one
      // channel, rows of 28), ResNet's stem (3 channels, 3x3), padding past the kernel on one
      // side only (taps with no pixel), an output of 8 columns from rows of 30 (most pixels'
      // taps read past the end of dy's rows: the buffer's slack).
      {"samples_lenet5_c2_same_N18", conv2d_shape_same(18, 6, 14, 14, 16, 5, 5, 1)},
      {"samples_C7_valid_5x5_rows_of_9", conv2d_shape_valid(17, 7, 11, 9, 13, 5, 5, 1)},
      {"samples_lenet5_c1_N16", conv2d_shape_same(16, 1, 28, 28, 6, 5, 5, 1)},
      {"samples_resnet_stem_C3", conv2d_shape_same(16, 3, 32, 32, 16, 3, 3, 1)},
      {"samples_pad_past_kernel_C4", Conv2dShape{17, 4, 5, 7, 3, 3, 3, 1, 1, 4, 0, 7, 11}},
      {"samples_output_narrower_than_input", Conv2dShape{17, 2, 6, 30, 3, 3, 3, 1, 1, 1, 4, 5, 8}},
      // ... and the forward's (fwd_sample_tile: AVX-512, stride 1, O <= 8; the shapes above
      // with O <= 8 too): 8 channels under valid 3x3 taps on rows of 9, LeNet-1's first layer
      // (4 channels, rows of 28) with a last block of 4 samples.
      {"samples_fwd_O8_valid_3x3", conv2d_shape_valid(16, 2, 9, 11, 8, 3, 3, 1)},
      {"samples_fwd_lenet1_c1_N20", conv2d_shape_same(20, 1, 28, 28, 4, 5, 5, 1)},
  };
  // On a CPU with AVX-512 the shapes whose rows or channels fill 16 lanes run the AVX-512
  // tiles; the AVX2 tiles run them too, with AVX-512 held off.
  for (bool avx512 : {true, false}) {
    conv_direct::set_avx512_allowed(avx512);
    for (const Case& c : shapes) {
      if (std::string(c.name).rfind("pointwise_s2_in_place", 0) == 0) {  // the path they are for
        ASSERT_EQ(conv_pointwise::forward_in_place(c.s), avx512 && conv_direct::avx512_available())
            << c.name;
        ASSERT_EQ(conv_pointwise::weight_by_input_lanes(c.s),
                  avx512 && conv_direct::avx512_available())
            << c.name;
      }
      if (std::string(c.name).rfind("weight_by_input_lanes", 0) == 0) {
        ASSERT_EQ(conv_pointwise::weight_by_input_lanes(c.s),
                  avx512 && conv_direct::avx512_available())
            << c.name;
      }
      if (std::string(c.name).rfind("pointwise_s2_pairs", 0) == 0) {
        ASSERT_EQ(conv_pointwise::backward_data_in_place(c.s),
                  avx512 && conv_direct::avx512_available())
            << c.name;
      }
      if (std::string(c.name).rfind("samples_", 0) == 0) {
        ASSERT_TRUE(conv_direct::backward_data_by_samples(c.s)) << c.name;
        ASSERT_EQ(conv_direct::forward_by_samples(c.s),
                  c.s.O <= 8 && avx512 && conv_direct::avx512_available())
            << c.name;
      }
      ASSERT_TRUE(conv_direct::forward_applies(c.s)) << c.name;
      ASSERT_TRUE(conv_direct::backward_data_applies(c.s)) << c.name;
      ASSERT_TRUE(conv_direct::backward_weight_applies(c.s)) << c.name;
      check_all(c.s, std::string(c.name) + (avx512 ? "" : " avx2"), /*sweep=*/true, /*fd=*/false);
    }
  }
  conv_direct::set_avx512_allowed(true);
  for (const Case& c : shapes) {
    const Conv2dShape& s = c.s;
    Vec x = random_vec(x_size(s), 5), w = random_vec(w_size(s), 6), b = random_vec(s.O, 7);
    Vec dy = random_vec(y_size(s), 8);
    // An infinity at the first position (its window reads the padding where there is one):
    // the weight gradient's tiles that leave out the padding's products must not there.
    dy[0] = std::numeric_limits<float>::infinity();
    x[0] = 1e-40f;  // subnormal
    if (x.size() > 3) x[3] = -0.0f;
    w[1] = -0.0f;
    if (w.size() > 9) w[9] = std::numeric_limits<float>::infinity();
    w[w.size() - 1] = std::numeric_limits<float>::quiet_NaN();
    for (int threads : {1, 2, 3}) {
      use_threads(threads);
      conv_direct::set_avx512_allowed(threads != 3);  // 3 threads: the AVX2 tiles
      Vec y1(y_size(s)), y2(y_size(s)), dx1(x_size(s), 7.0f), dx2(x_size(s), 7.0f);
      Vec dw1(w_size(s), 7.0f), dw2(w_size(s), 7.0f);
      conv_direct::set_enabled(true);
      conv2d_forward(Level::portable, s, x.data(), w.data(), b.data(), y1.data());
      conv2d_backward_data(Level::portable, s, dy.data(), w.data(), dx1.data());
      conv2d_backward_weight(Level::portable, s, x.data(), dy.data(), dw1.data());
      conv_direct::set_enabled(false);
      conv2d_forward(Level::portable, s, x.data(), w.data(), b.data(), y2.data());
      conv2d_backward_data(Level::portable, s, dy.data(), w.data(), dx2.data());
      conv2d_backward_weight(Level::portable, s, x.data(), dy.data(), dw2.data());
      conv_direct::set_enabled(true);
      const std::string at = std::string(c.name) + " threads=" + std::to_string(threads) + " ";
      expect_bits(y1, y2, at + "forward direct vs gemm");
      expect_bits(dx1, dx2, at + "backward_data direct vs gemm");
      expect_bits(dw1, dw2, at + "backward_weight direct vs gemm");
    }
  }
  use_threads(1);
  conv_direct::set_enabled(true);
  conv_direct::set_avx512_allowed(true);
}

}  // namespace
