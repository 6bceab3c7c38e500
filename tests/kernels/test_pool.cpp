// Pooling kernels against the orders pool.h documents, written here as plain loops (bit
// for bit), a float64 reference, central differences in double of L = sum(y * r), and
// themselves on 1, 2 and 3 threads.
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
#include "kernels/cpu/activation.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/pool.h"

namespace {

using detdl::check_pool2d_shape;
using detdl::pool2d_shape;
using detdl::pool2d_shape_same;
using detdl::pool2d_shape_valid;
using detdl::Pool2dShape;
using i64 = std::int64_t;
using Vec = std::vector<float>;
using Vec64 = std::vector<double>;
using Idx = std::vector<std::int32_t>;
constexpr float kInf = std::numeric_limits<float>::infinity();

Vec random_vec(i64 n, std::uint32_t sub) {
  Vec v(static_cast<std::size_t>(n));
  for (i64 i = 0; i < n; ++i)
    v[i] = 2.0f * detdl::philox_uniform(7, detdl::RandomStream::test, sub, i) - 1.0f;
  return v;
}

void use_threads(int n) { detdl::cpu::set_num_threads(n); }

template <class T>
void expect_bits(const std::vector<T>& got, const std::vector<T>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(std::memcmp(&got[i], &want[i], sizeof(T)), 0)
        << what << " at " << i << ": " << got[i] << " vs " << want[i];
  }
}

i64 in_size(const Pool2dShape& s) { return s.N * s.C * s.H * s.W; }
i64 out_size(const Pool2dShape& s) { return s.N * s.C * s.OH * s.OW; }

// Calls fn(p, oh, ow, kh, kw, i) for every window position inside the input, in
// (p, oh, ow, kh, kw) order; i = ih*W + iw within plane p.
void for_window(const Pool2dShape& s, i64 p, i64 oh, i64 ow,
                const std::function<void(i64 kh, i64 kw, i64 i)>& fn) {
  for (i64 kh = 0; kh < s.KH; ++kh)
    for (i64 kw = 0; kw < s.KW; ++kw) {
      const i64 ih = oh * s.stride_h - s.pad_top + kh, iw = ow * s.stride_w - s.pad_left + kw;
      if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W) fn(kh, kw, ih * s.W + iw);
    }
}
i64 count_of(const Pool2dShape& s, bool include_pad, i64 p, i64 oh, i64 ow) {
  if (include_pad) return s.KH * s.KW;
  i64 n = 0;
  for_window(s, p, oh, ow, [&](i64, i64, i64) { ++n; });
  return n;
}

// ---- the documented orders as plain loops ----
void ref_maxpool(const Pool2dShape& s, const Vec& x, Vec& y, Idx& arg) {
  y.assign(out_size(s), 0.0f);
  arg.assign(out_size(s), 0);
  for (i64 p = 0; p < s.N * s.C; ++p)
    for (i64 oh = 0; oh < s.OH; ++oh)
      for (i64 ow = 0; ow < s.OW; ++ow) {
        float best = -kInf;
        i64 at = -1;
        for_window(s, p, oh, ow, [&](i64, i64, i64 i) {
          const float v = x[p * s.H * s.W + i];
          const bool take = at < 0 || (std::isnan(v) ? !std::isnan(best) : v > best);
          if (take) best = v, at = i;
        });
        y[(p * s.OH + oh) * s.OW + ow] = best;
        arg[(p * s.OH + oh) * s.OW + ow] = static_cast<std::int32_t>(at);
      }
}
// Pixel-centric: each input pixel sums the terms that reach it in (oh, ow) order.
Vec ref_maxpool_backward(const Pool2dShape& s, const Vec& dy, const Idx& arg) {
  Vec dx(in_size(s));
  for (i64 p = 0; p < s.N * s.C; ++p)
    for (i64 i = 0; i < s.H * s.W; ++i) {
      float acc = 0.0f;
      for (i64 j = 0; j < s.OH * s.OW; ++j)
        if (arg[p * s.OH * s.OW + j] == i) acc = acc + dy[p * s.OH * s.OW + j];
      dx[p * s.H * s.W + i] = acc;
    }
  return dx;
}
Vec ref_avgpool(const Pool2dShape& s, bool include_pad, const Vec& x) {
  Vec y(out_size(s));
  for (i64 p = 0; p < s.N * s.C; ++p)
    for (i64 oh = 0; oh < s.OH; ++oh)
      for (i64 ow = 0; ow < s.OW; ++ow) {
        float sum = 0.0f;
        for_window(s, p, oh, ow, [&](i64, i64, i64 i) { sum = sum + x[p * s.H * s.W + i]; });
        const i64 count = count_of(s, include_pad, p, oh, ow);
        y[(p * s.OH + oh) * s.OW + ow] = count ? sum / static_cast<float>(count) : 0.0f;
      }
  return y;
}
Vec ref_avgpool_backward(const Pool2dShape& s, bool include_pad, const Vec& dy) {
  Vec dx(in_size(s));
  for (i64 p = 0; p < s.N * s.C; ++p)
    for (i64 i = 0; i < s.H * s.W; ++i) {
      float acc = 0.0f;
      for (i64 oh = 0; oh < s.OH; ++oh)
        for (i64 ow = 0; ow < s.OW; ++ow) {
          bool hit = false;
          for_window(s, p, oh, ow, [&](i64, i64, i64 k) { hit = hit || k == i; });
          if (hit) {
            const float g = dy[(p * s.OH + oh) * s.OW + ow] /
                            static_cast<float>(count_of(s, include_pad, p, oh, ow));
            acc = acc + g;
          }
        }
      dx[p * s.H * s.W + i] = acc;
    }
  return dx;
}

// ---- float64 forward references, for tolerance and finite differences ----
Vec64 maxpool64(const Pool2dShape& s, const Vec64& x) {
  Vec64 y(out_size(s));
  for (i64 p = 0; p < s.N * s.C; ++p)
    for (i64 oh = 0; oh < s.OH; ++oh)
      for (i64 ow = 0; ow < s.OW; ++ow) {
        double best = -std::numeric_limits<double>::infinity();
        for_window(s, p, oh, ow,
                   [&](i64, i64, i64 i) { best = std::max(best, x[p * s.H * s.W + i]); });
        y[(p * s.OH + oh) * s.OW + ow] = best;
      }
  return y;
}
Vec64 avgpool64(const Pool2dShape& s, bool include_pad, const Vec64& x) {
  Vec64 y(out_size(s));
  for (i64 p = 0; p < s.N * s.C; ++p)
    for (i64 oh = 0; oh < s.OH; ++oh)
      for (i64 ow = 0; ow < s.OW; ++ow) {
        double sum = 0.0;
        for_window(s, p, oh, ow, [&](i64, i64, i64 i) { sum += x[p * s.H * s.W + i]; });
        const i64 count = count_of(s, include_pad, p, oh, ow);
        y[(p * s.OH + oh) * s.OW + ow] = count ? sum / double(count) : 0.0;
      }
  return y;
}
Vec64 to64(const Vec& v) { return Vec64(v.begin(), v.end()); }

// Central differences in double of L = sum(forward(x) * r) over finite outputs.
void fd_check(const Vec& x, const Vec& r, const Vec& grad, double h,
              const std::function<Vec64(const Vec64&)>& forward, const std::string& what) {
  Vec64 x64 = to64(x);
  auto loss = [&] {
    const Vec64 y = forward(x64);
    double L = 0.0;
    for (std::size_t i = 0; i < y.size(); ++i)
      if (std::isfinite(y[i])) L += y[i] * r[i];
    return L;
  };
  for (std::size_t i = 0; i < x64.size(); ++i) {
    const double keep = x64[i];
    x64[i] = keep + h;
    const double up = loss();
    x64[i] = keep - h;
    const double down = loss();
    x64[i] = keep;
    const double num = (up - down) / (2 * h);
    ASSERT_NEAR(grad[i], num, 1e-4 * (1.0 + std::fabs(num))) << what << " at " << i;
  }
}

struct Case {
  const char* name;
  Pool2dShape s;
};
std::vector<Case> cases() {
  using namespace detdl::cpu;
  return {
      {"2x2_s2_valid", pool2d_shape_valid(3, 3, 7, 5, 2, 2, 2)},
      {"2x2_s2_same_asym", pool2d_shape_same(2, 1, 7, 5, 2, 2, 2)},
      {"2x2_s2_N1C1", pool2d_shape(1, 1, 8, 6, 2, 2, 2, 0)},
      {"3x3_s2_p1", pool2d_shape(1, 3, 7, 5, 3, 3, 2, 1)},
      {"3x3_s1_same_overlap", pool2d_shape_same(2, 2, 6, 7, 3, 3, 1)},
      // 2x3 window, strides 1 and 2, pad 1 / 3: column 0's windows are all padding, and the
      // last rows/cols reach past the input.
      {"manual_all_padding", Pool2dShape{2, 2, 5, 6, 2, 3, 1, 2, 1, 3, 6, 5}},
  };
}

template <class T>
std::vector<T> same_on_threads(const std::function<std::vector<T>()>& make,
                               const std::string& what) {
  use_threads(1);
  const std::vector<T> first = make();
  for (int threads : {2, 3}) {
    use_threads(threads);
    expect_bits(make(), first, what + " threads=" + std::to_string(threads));
  }
  use_threads(1);
  return first;
}

TEST(PoolShape, BuildersAndValidation) {
  using namespace detdl::cpu;
  const Pool2dShape a = pool2d_shape_same(1, 1, 7, 6, 2, 2, 2);  // pad total 1 / 0
  EXPECT_EQ(a.OH, 4);
  EXPECT_EQ(a.OW, 3);
  EXPECT_EQ(a.pad_top, 0);
  EXPECT_EQ(a.pad_left, 0);
  const Pool2dShape b = pool2d_shape(1, 1, 32, 32, 3, 3, 2, 1);
  EXPECT_EQ(b.OH, 16);
  EXPECT_EQ(b.pad_left, 1);
  const Pool2dShape c = pool2d_shape_valid(1, 1, 7, 5, 2, 2, 2);
  EXPECT_EQ(c.OH, 3);
  EXPECT_EQ(c.OW, 2);
  try {
    pool2d_shape(1, 0, 4, 4, 2, 2, 2, 0);
    FAIL() << "C = 0 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("C must"), std::string::npos) << e.what();
  }
  EXPECT_THROW(pool2d_shape_valid(1, 1, 1, 4, 2, 2, 2), std::invalid_argument);
  Pool2dShape d = c;
  d.stride_w = 0;
  float v = 0;
  EXPECT_THROW(avgpool2d_forward(d, true, &v, &v), std::invalid_argument);
  EXPECT_THROW(global_avgpool_forward(1, 1, 0, &v, &v), std::invalid_argument);
}

TEST(Pool, MaxPool) {
  using namespace detdl::cpu;
  for (const Case& c : cases()) {
    const Pool2dShape& s = c.s;
    const Vec x = random_vec(in_size(s), 1), dy = random_vec(out_size(s), 2);
    Idx arg;
    const Vec y = same_on_threads<float>(
        [&] {
          Vec out(out_size(s));
          arg.assign(out_size(s), 99);
          maxpool2d_forward(s, x.data(), out.data(), arg.data());
          return out;
        },
        std::string(c.name) + " maxpool forward");
    Vec want_y;
    Idx want_arg;
    ref_maxpool(s, x, want_y, want_arg);
    expect_bits(y, want_y, std::string(c.name) + " maxpool forward vs loop");
    expect_bits(arg, want_arg, std::string(c.name) + " argmax vs loop");
    const Vec64 y64 = maxpool64(s, to64(x));
    for (std::size_t i = 0; i < y.size(); ++i)
      EXPECT_EQ(double(y[i]), y64[i]) << c.name << " " << i;

    const Vec dx = same_on_threads<float>(
        [&] {
          Vec out(in_size(s), 7.0f);
          maxpool2d_backward(s, dy.data(), arg.data(), out.data());
          return out;
        },
        std::string(c.name) + " maxpool backward");
    expect_bits(dx, ref_maxpool_backward(s, dy, arg),
                std::string(c.name) + " maxpool backward vs loop");
    fd_check(
        x, dy, dx, 1e-5, [&](const Vec64& xx) { return maxpool64(s, xx); },
        std::string(c.name) + " maxpool finite differences");
  }
}

// The 2x2 / stride-2 path runs 8 outputs per vector step: rows of 18, 14, 8 and 7 outputs
// (several steps, a short last one, a whole row in one short step), values from a few levels
// (ties everywhere) with NaNs and infinities, against the plain loop bit for bit.
TEST(Pool, MaxPool2x2VectorRowsTiesAndNans) {
  using namespace detdl::cpu;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const Pool2dShape& s :
       {pool2d_shape_valid(2, 3, 36, 37, 2, 2, 2), pool2d_shape_valid(2, 2, 28, 28, 2, 2, 2),
        pool2d_shape_valid(1, 2, 16, 17, 2, 2, 2), pool2d_shape_valid(3, 1, 14, 14, 2, 2, 2)}) {
    Vec x(in_size(s));
    for (std::size_t i = 0; i < x.size(); ++i) {
      const std::uint32_t h = static_cast<std::uint32_t>(i) * 2654435761u;
      x[i] = static_cast<float>(static_cast<int>(h >> 28) % 4) - 1.5f;
      if (h % 37 == 0) x[i] = nan;
      if (h % 41 == 0) x[i] = (h & 1) ? kInf : -kInf;
    }
    Vec y(out_size(s)), want;
    Idx arg(out_size(s)), want_arg;
    maxpool2d_forward(s, x.data(), y.data(), arg.data());
    ref_maxpool(s, x, want, want_arg);
    expect_bits(y, want, "2x2 vector rows: values");
    for (std::size_t i = 0; i < arg.size(); ++i) ASSERT_EQ(arg[i], want_arg[i]) << "argmax " << i;
    // The backward's 2x2 rows (one pass per plane) against the zero-then-scatter loop: odd
    // widths and heights (inputs in no window), -0.0f and NaN gradients, 1 and 3 threads.
    Vec dy = random_vec(out_size(s), 4);
    for (std::size_t i = 0; i < dy.size(); i += 3) dy[i] = -0.0f;
    dy[dy.size() / 2] = nan;
    for (int threads : {1, 3}) {
      use_threads(threads);
      Vec dx(in_size(s), 7.0f);
      maxpool2d_backward(s, dy.data(), arg.data(), dx.data());
      expect_bits(dx, ref_maxpool_backward(s, dy, arg), "2x2 vector rows: backward");
    }
    use_threads(1);
  }
}

// The fused relu + max pool (pool.h relu_maxpool2d_*) against the two kernels in turn, bit
// for bit: values with negatives, both zeros, NaN and infinities (relu's NaN -> +0.0f must
// not win the window as the unfused pool's NaN rule would have it), the 2x2 vector rows and
// the generic loop (overlapping 3x3 / stride 2 windows with padding, where an input gets
// several contributions before the mask), on 1, 2 and 3 threads.
TEST(Pool, ReluMaxPoolIsReluThenMaxPool) {
  using namespace detdl::cpu;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const Pool2dShape& s :
       {pool2d_shape_valid(2, 3, 28, 28, 2, 2, 2), pool2d_shape_valid(2, 2, 14, 17, 2, 2, 2),
        pool2d_shape(2, 3, 9, 11, 3, 3, 2, 1), pool2d_shape_same(1, 2, 7, 7, 3, 3, 2)}) {
    Vec x(in_size(s)), dy = random_vec(out_size(s), 3);
    for (std::size_t i = 0; i < dy.size(); i += 5) dy[i] = -0.0f;  // +0.0f + -0.0f = +0.0f
    for (std::size_t i = 0; i < x.size(); ++i) {
      const std::uint32_t h = static_cast<std::uint32_t>(i) * 2654435761u;
      x[i] = static_cast<float>(static_cast<int>(h >> 28) % 5) - 2.5f;
      if (h % 7 == 0) x[i] = 0.0f;
      if (h % 11 == 0) x[i] = -0.0f;
      if (h % 37 == 0) x[i] = nan;
      if (h % 41 == 0) x[i] = (h & 1) ? kInf : -kInf;
    }
    const i64 n = in_size(s);
    Vec r(n), y_want(out_size(s)), dr(n), dx_want(n);
    Idx arg_want(out_size(s));
    activation_forward(detdl::Activation::relu, 0.0f, x.data(), r.data(), n);
    maxpool2d_forward(s, r.data(), y_want.data(), arg_want.data());
    dr = ref_maxpool_backward(s, dy, arg_want);  // the plain loop, not the 2x2 rows
    activation_backward(detdl::Activation::relu, 0.0f, x.data(), r.data(), dr.data(),
                        dx_want.data(), n);
    for (int threads : {1, 2, 3}) {
      use_threads(threads);
      const std::string at = "threads " + std::to_string(threads) + " ";
      Vec y(out_size(s)), dx(n, 7.0f);
      Idx arg(out_size(s));
      relu_maxpool2d_forward(s, x.data(), y.data(), arg.data());
      expect_bits(y, y_want, at + "forward");
      expect_bits(arg, arg_want, at + "argmax");
      relu_maxpool2d_backward(s, x.data(), y.data(), dy.data(), arg.data(), dx.data());
      expect_bits(dx, dx_want, at + "backward");
    }
    use_threads(1);
  }
}

TEST(Pool, MaxPoolTiesNanInfAndAllPadding) {
  using namespace detdl::cpu;
  const Pool2dShape s = pool2d_shape_valid(1, 1, 2, 6, 2, 2, 2);  // three 2x2 windows
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // window 0: ties at 5 (first in (kh, kw) order is index 1); window 1: a NaN after a larger
  // number wins; window 2: all -inf, which is a value, not padding.
  const Vec x = {1, 5, 3, nan, -kInf, -kInf, 5, 5, 9, 2, -kInf, -kInf};
  Vec y(3);
  Idx arg(3);
  maxpool2d_forward(s, x.data(), y.data(), arg.data());
  EXPECT_EQ(y[0], 5.0f);
  EXPECT_EQ(arg[0], 1);
  EXPECT_TRUE(std::isnan(y[1]));
  EXPECT_EQ(arg[1], 3);
  EXPECT_EQ(y[2], -kInf);
  EXPECT_EQ(arg[2], 4);

  const Pool2dShape pad{1, 1, 2, 2, 2, 2, 1, 1, 0, 2, 1, 2};  // window 0 covers cols -2, -1
  const Vec x2 = {1, 2, 3, 4};
  Vec y2(2), dx2(4, 7.0f), yavg(2);
  Idx arg2(2);
  maxpool2d_forward(pad, x2.data(), y2.data(), arg2.data());
  EXPECT_EQ(y2[0], -kInf);
  EXPECT_EQ(arg2[0], -1);
  EXPECT_EQ(arg2[1], 2);  // window 1 covers cols -1, 0: values 1 and 3
  const Vec dy2 = {3.0f, 1.0f};
  maxpool2d_backward(pad, dy2.data(), arg2.data(), dx2.data());
  EXPECT_EQ(dx2, (Vec{0, 0, 1, 0}));
  avgpool2d_forward(pad, false, x2.data(), yavg.data());
  EXPECT_EQ(yavg[0], 0.0f);  // count 0
  EXPECT_EQ(yavg[1], 2.0f);  // (1 + 3) / 2: padding not counted
}

TEST(Pool, AvgPool) {
  using namespace detdl::cpu;
  for (const Case& c : cases())
    for (bool include_pad : {true, false}) {
      const Pool2dShape& s = c.s;
      const std::string name = std::string(c.name) + (include_pad ? " incl pad" : " excl pad");
      const Vec x = random_vec(in_size(s), 3), dy = random_vec(out_size(s), 4);
      const Vec y = same_on_threads<float>(
          [&] {
            Vec out(out_size(s));
            avgpool2d_forward(s, include_pad, x.data(), out.data());
            return out;
          },
          name + " avgpool forward");
      expect_bits(y, ref_avgpool(s, include_pad, x), name + " avgpool forward vs loop");
      const Vec64 y64 = avgpool64(s, include_pad, to64(x));
      for (std::size_t i = 0; i < y.size(); ++i)
        ASSERT_NEAR(y[i], y64[i], 1e-6) << name << " " << i;

      const Vec dx = same_on_threads<float>(
          [&] {
            Vec out(in_size(s), 7.0f);
            avgpool2d_backward(s, include_pad, dy.data(), out.data());
            return out;
          },
          name + " avgpool backward");
      expect_bits(dx, ref_avgpool_backward(s, include_pad, dy), name + " avgpool backward vs loop");
      fd_check(
          x, dy, dx, 1e-3, [&](const Vec64& xx) { return avgpool64(s, include_pad, xx); },
          name + " avgpool finite differences");
    }
}

TEST(Pool, GlobalAvgPool) {
  using namespace detdl::cpu;
  for (i64 HW : {i64{1}, i64{35}, i64{289}}) {  // 289 = 17*17 > 256: two chunks
    const i64 N = 3, C = 2;
    const std::string name = "global HW=" + std::to_string(HW);
    const Vec x = random_vec(N * C * HW, 5), dy = random_vec(N * C, 6);
    const Vec y = same_on_threads<float>(
        [&] {
          Vec out(N * C);
          global_avgpool_forward(N, C, HW, x.data(), out.data());
          return out;
        },
        name + " forward");
    Vec want(N * C);
    for (i64 p = 0; p < N * C; ++p) {  // canonical sum, chunk 256, pairwise tree, then / HW
      Vec parts;
      for (i64 s0 = 0; s0 < HW; s0 += 256) {
        float acc = 0.0f;
        for (i64 k = s0; k < std::min(HW, s0 + 256); ++k) acc = acc + x[p * HW + k];
        parts.push_back(acc);
      }
      const float sum = parts.size() == 2 ? parts[0] + parts[1] : parts[0];
      want[p] = sum / static_cast<float>(HW);
      double d = 0.0;
      for (i64 k = 0; k < HW; ++k) d += x[p * HW + k];
      EXPECT_NEAR(y[p], d / double(HW), 1e-6) << name;
    }
    expect_bits(y, want, name + " forward vs loop");

    const Vec dx = same_on_threads<float>(
        [&] {
          Vec out(N * C * HW, 7.0f);
          global_avgpool_backward(N, C, HW, dy.data(), out.data());
          return out;
        },
        name + " backward");
    Vec want_dx(N * C * HW);
    for (i64 i = 0; i < N * C * HW; ++i) want_dx[i] = dy[i / HW] / static_cast<float>(HW);
    expect_bits(dx, want_dx, name + " backward vs formula");
    fd_check(
        x, dy, dx, 1e-3,
        [&](const Vec64& xx) {
          Vec64 out(N * C, 0.0);
          for (i64 i = 0; i < N * C * HW; ++i) out[i / HW] += xx[i] / double(HW);
          return out;
        },
        name + " finite differences");
  }
}

}  // namespace
