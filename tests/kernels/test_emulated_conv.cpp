// The `emulated` convolutions (kernels/cpu/emulated_conv.h), every alternative forced
// through an explicit ConvAlgo / EmulatedGemmPlan / tap order / WeightGradPlan: (1) bit for
// bit against the alternative's order written as plain loops, (2) within the float64 bound
// gamma_n * sum |terms| (n the number of products of an output), (3) the same bits on 1, 2
// and 3 threads and under a small scratch budget, (4) the canonical choices give conv.h's
// canonical bits, the others change bits (the families are not inert), and (5) the draw ->
// plan mappings reach every alternative.
#include "kernels/cpu/emulated_conv.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "kernels/common/philox.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/conv_direct.h"
#include "kernels/cpu/parallel.h"

namespace detdl::cpu {
namespace {

using i64 = std::int64_t;
using Vec = std::vector<float>;
using Vec64 = std::vector<double>;

Vec random_vec(i64 n, std::uint32_t sub) {
  Vec v(static_cast<std::size_t>(n));
  for (i64 i = 0; i < n; ++i) v[i] = 2.0f * philox_uniform(42, RandomStream::test, sub, i) - 1.0f;
  return v;
}
double gamma(i64 n) {  // n u / (1 - n u), u = 2^-24
  const double u = 0x1p-24;
  return n * u / (1.0 - n * u);
}

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
bool out_pos(const Conv2dShape& s, i64 i, i64 j, i64 kh, i64 kw, i64& oh, i64& ow) {
  const i64 a = i + s.pad_top - kh, b = j + s.pad_left - kw;
  if (a < 0 || b < 0 || a % s.stride_h != 0 || b % s.stride_w != 0) return false;
  oh = a / s.stride_h;
  ow = b / s.stride_w;
  return oh < s.OH && ow < s.OW;
}

// ---- each alternative's order as plain loops ----
float combine(const Vec& parts, SplitCombine c, const std::vector<std::int32_t>& order) {
  if (parts.size() == 1) return parts[0];
  if (c == SplitCombine::arrival) {
    float r = 0.0f;
    for (std::int32_t j : order) r = r + parts[j];
    return r;
  }
  Vec level = parts;
  while (level.size() > 1) {
    Vec next;
    for (std::size_t j = 0; j + 1 < level.size(); j += 2) next.push_back(level[j] + level[j + 1]);
    if (level.size() % 2) next.push_back(level.back());
    level = next;
  }
  return level[0];
}
float plan_dot(const EmulatedGemmPlan& p, const Vec& a, const Vec& b) {
  Vec parts;
  for (i64 j = 0; j < p.slices(); ++j) {
    float acc = 0.0f;
    for (i64 k = p.cuts[j]; k < p.cuts[j + 1]; ++k) acc = std::fmaf(a[k], b[k], acc);
    parts.push_back(acc);
  }
  return combine(parts, p.combine, p.order);
}
Vec ref_forward(ConvAlgo algo, const Conv2dShape& s, const Vec& x, const Vec& w, const Vec& b) {
  Vec y(y_size(s));
  for (i64 n = 0; n < s.N; ++n)
    for (i64 o = 0; o < s.O; ++o)
      for (i64 oh = 0; oh < s.OH; ++oh)
        for (i64 ow = 0; ow < s.OW; ++ow) {
          float r = 0.0f;
          for (i64 kh = 0; kh < s.KH; ++kh)
            for (i64 kw = 0; kw < s.KW; ++kw) {
              float tap = 0.0f;
              for (i64 c = 0; c < s.C; ++c) {
                const float t = xpad(s, x, n, c, oh, ow, kh, kw), v = w[wi(s, o, c, kh, kw)];
                if (algo == ConvAlgo::im2col_hwc)
                  r = std::fmaf(t, v, r);
                else
                  tap = std::fmaf(t, v, tap);
              }
              if (algo == ConvAlgo::per_tap) r = r + tap;
            }
          y[yi(s, n, o, oh, ow)] = r + b[o];
        }
  return y;
}
Vec ref_backward_data(const Conv2dShape& s, const EmulatedGemmPlan& p,
                      const std::vector<std::int32_t>& taps, const Vec& dy, const Vec& w) {
  Vec dx(x_size(s));
  for (i64 n = 0; n < s.N; ++n)
    for (i64 c = 0; c < s.C; ++c)
      for (i64 i = 0; i < s.H; ++i)
        for (i64 j = 0; j < s.W; ++j) {
          float acc = 0.0f;
          for (std::int32_t t : taps) {
            const i64 kh = t / s.KW, kw = t % s.KW;
            i64 oh, ow;
            if (!out_pos(s, i, j, kh, kw, oh, ow)) continue;
            Vec a, b;  // terms over o
            for (i64 o = 0; o < s.O; ++o) {
              a.push_back(w[wi(s, o, c, kh, kw)]);
              b.push_back(dy[yi(s, n, o, oh, ow)]);
            }
            acc = acc + plan_dot(p, a, b);
          }
          dx[xi(s, n, c, i, j)] = acc;
        }
  return dx;
}
Vec ref_backward_weight(const Conv2dShape& s, const WeightGradPlan& p, const Vec& x,
                        const Vec& dy) {
  Vec dw(w_size(s));
  for (i64 o = 0; o < s.O; ++o)
    for (i64 c = 0; c < s.C; ++c)
      for (i64 kh = 0; kh < s.KH; ++kh)
        for (i64 kw = 0; kw < s.KW; ++kw) {
          Vec parts;
          for (i64 g = 0; g < p.groups; ++g) {
            float acc = 0.0f;  // one chain over the group's (n, oh, ow)
            for (i64 n = s.N * g / p.groups; n < s.N * (g + 1) / p.groups; ++n)
              for (i64 oh = 0; oh < s.OH; ++oh)
                for (i64 ow = 0; ow < s.OW; ++ow)
                  acc = std::fmaf(dy[yi(s, n, o, oh, ow)], xpad(s, x, n, c, oh, ow, kh, kw), acc);
            parts.push_back(acc);
          }
          dw[wi(s, o, c, kh, kw)] = combine(parts, p.combine, p.order);
        }
  return dw;
}

// ---- float64 references; abs = true gives the sums of |terms| (the error scale) ----
Vec64 to64(const Vec& v, bool abs) {
  Vec64 d(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) d[i] = abs ? std::fabs(double(v[i])) : double(v[i]);
  return d;
}
struct All64 {
  Vec64 y, dx, dw;
};
All64 all64(const Conv2dShape& s, const Vec64& x, const Vec64& w, const Vec64& b, const Vec64& dy) {
  All64 r{Vec64(y_size(s)), Vec64(x_size(s)), Vec64(w_size(s))};
  for (i64 n = 0; n < s.N; ++n)
    for (i64 o = 0; o < s.O; ++o)
      for (i64 oh = 0; oh < s.OH; ++oh)
        for (i64 ow = 0; ow < s.OW; ++ow) {
          double acc = b[o];
          const double d = dy[yi(s, n, o, oh, ow)];
          for (i64 c = 0; c < s.C; ++c)
            for (i64 kh = 0; kh < s.KH; ++kh)
              for (i64 kw = 0; kw < s.KW; ++kw) {
                const i64 ih = oh * s.stride_h - s.pad_top + kh,
                          iw = ow * s.stride_w - s.pad_left + kw;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                const double xv = x[xi(s, n, c, ih, iw)], wv = w[wi(s, o, c, kh, kw)];
                acc += xv * wv;
                r.dx[xi(s, n, c, ih, iw)] += d * wv;
                r.dw[wi(s, o, c, kh, kw)] += d * xv;
              }
          r.y[yi(s, n, o, oh, ow)] = acc;
        }
  return r;
}

std::uint32_t bits(float v) {
  std::uint32_t u;
  std::memcpy(&u, &v, 4);
  return u;
}
void expect_bits(const Vec& got, const Vec& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_EQ(bits(got[i]), bits(want[i]))
        << what << " at " << i << ": " << got[i] << " vs " << want[i];
}
i64 count_differing(const Vec& a, const Vec& b) {
  i64 n = 0;
  for (std::size_t i = 0; i < a.size(); ++i) n += bits(a[i]) != bits(b[i]);
  return n;
}
// |got - exact| <= gamma_n * scale; returns the largest ratio error / bound.
double expect_bound(const Vec& got, const Vec64& exact, const Vec64& scale, i64 n,
                    const std::string& what) {
  double worst = 0.0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(got[i] - exact[i]), bound = gamma(n) * scale[i];
    EXPECT_LE(err, bound) << what << " at " << i;
    if (err > bound) return worst;
    if (bound > 0) worst = std::max(worst, err / bound);
  }
  return worst;
}

struct Case {
  const char* name;
  Conv2dShape s;
};
std::vector<Case> cases() {
  return {
      {"1x1", conv2d_shape(3, 3, 7, 5, 4, 1, 1, 1, 0)},
      {"1x1_stride2", conv2d_shape(2, 3, 8, 7, 4, 1, 1, 2, 0)},
      {"3x3_s1_p1_N1", conv2d_shape(1, 3, 7, 5, 5, 3, 3, 1, 1)},
      {"3x3_s2_p1", conv2d_shape(2, 3, 7, 5, 4, 3, 3, 2, 1)},
      {"3x3_s2_same_asym", conv2d_shape_same(3, 2, 8, 6, 3, 3, 3, 2)},
      {"5x5_same_lenet", conv2d_shape_same(2, 1, 7, 5, 3, 5, 5, 1)},
      {"5x5_valid", conv2d_shape_valid(3, 3, 9, 8, 4, 5, 5, 1)},
      {"manual_3x2_past", Conv2dShape{2, 2, 6, 5, 3, 3, 2, 1, 2, 1, 0, 7, 3}},
      {"lenet_c2", conv2d_shape_valid(9, 6, 14, 14, 16, 5, 5, 1)},
      {"long_k", conv2d_shape_same(2, 24, 6, 5, 3, 5, 5, 1)},  // K = 600: gemm_chain slices
      // rows of several vectors, 20 output channels (two weight panels), 7 input channels
      {"wide_rows", conv2d_shape_same(2, 7, 5, 19, 20, 3, 3, 1)},
  };
}

struct Data {
  Vec x, w, b, dy;
  All64 ref, mag;
};
Data make(const Conv2dShape& s) {
  Data d{random_vec(x_size(s), 1),
         random_vec(w_size(s), 2),
         random_vec(s.O, 3),
         random_vec(y_size(s), 4),
         {},
         {}};
  d.ref = all64(s, to64(d.x, false), to64(d.w, false), to64(d.b, false), to64(d.dy, false));
  d.mag = all64(s, to64(d.x, true), to64(d.w, true), to64(d.b, true), to64(d.dy, true));
  return d;
}

std::vector<std::int32_t> iota_taps(i64 T) {
  std::vector<std::int32_t> t(static_cast<std::size_t>(T));
  for (i64 i = 0; i < T; ++i) t[i] = static_cast<std::int32_t>(i);
  return t;
}
// The tap orders tested: row-major, reversed, and a fixed shuffle.
std::vector<std::vector<std::int32_t>> tap_orders(i64 T) {
  std::vector<std::vector<std::int32_t>> out{iota_taps(T), iota_taps(T)};
  std::reverse(out[1].begin(), out[1].end());
  std::vector<std::int32_t> shuffled(static_cast<std::size_t>(T));
  impl_permutation(ImplDraw{5, ImplFamily::scatter, 0, 0}, 1, T, shuffled.data());
  out.push_back(shuffled);
  return out;
}
std::vector<EmulatedGemmPlan> data_plans(i64 O) {
  std::vector<EmulatedGemmPlan> out;
  for (int sp : kSplitFactors)
    for (SplitCombine c : {SplitCombine::arrival, SplitCombine::tree}) {
      EmulatedGemmPlan p = split_k_plan(O, sp, c);
      std::reverse(p.order.begin(), p.order.end());
      out.push_back(p);
    }
  return out;
}
std::vector<WeightGradPlan> weight_plans(const Conv2dShape& s) {
  std::vector<WeightGradPlan> out;
  for (int g : kWeightGroups)
    for (SplitCombine c : {SplitCombine::arrival, SplitCombine::tree}) {
      WeightGradPlan p = weight_grad_plan(s, g, c);
      std::reverse(p.order.begin(), p.order.end());
      out.push_back(p);
    }
  return out;
}

struct ThreadsGuard {
  ~ThreadsGuard() {
    set_num_threads(1);
    set_conv_scratch_budget(i64{4} << 20);
  }
};

void print_worst(const char* what, const std::map<std::string, double>& worst) {
  for (const auto& [alt, w] : worst)
    std::printf("%s %-22s max error / bound %.4f\n", what, alt.c_str(), w);
}

TEST(EmulatedConv, ForwardAlgorithmsAreTheirOrdersWithinTheBound) {
  std::map<std::string, double> worst;
  for (const Case& c : cases()) {
    const Conv2dShape& s = c.s;
    const Data d = make(s);
    Vec canon(y_size(s));
    conv2d_forward(Level::portable, s, d.x.data(), d.w.data(), d.b.data(), canon.data());
    for (int a = 0; a < kConvAlgoCount; ++a) {
      const ConvAlgo algo = static_cast<ConvAlgo>(a);
      const std::string what = std::string(c.name) + " algo " + std::to_string(a);
      Vec y(y_size(s), 7.0f);
      emulated_conv2d_forward(algo, s, d.x.data(), d.w.data(), d.b.data(), y.data());
      expect_bits(y, algo == ConvAlgo::im2col_chw ? canon : ref_forward(algo, s, d.x, d.w, d.b),
                  what);
      const char* names[] = {"im2col_chw", "im2col_hwc", "per_tap"};
      double& w = worst[names[a]];
      w = std::max(w, expect_bound(y, d.ref.y, d.mag.y, s.C * s.KH * s.KW + 1, what));
    }
  }
  print_worst("forward", worst);
}

TEST(EmulatedConv, DataGradientPlansAndTapOrdersWithinTheBound) {
  std::map<std::string, double> worst;
  for (const Case& c : cases()) {
    const Conv2dShape& s = c.s;
    const Data d = make(s);
    const i64 T = s.KH * s.KW;
    Vec canon(x_size(s));
    conv2d_backward_data(Level::portable, s, d.dy.data(), d.w.data(), canon.data());
    Vec same(x_size(s), 7.0f);  // no plan, no order: the canonical kernel's bits
    emulated_conv2d_backward_data(s, nullptr, nullptr, d.dy.data(), d.w.data(), same.data());
    expect_bits(same, canon, std::string(c.name) + " canonical choices");
    for (const auto& taps : tap_orders(T)) {
      Vec only_taps(x_size(s), 7.0f);  // scatter alone, canonical GEMM
      emulated_conv2d_backward_data(s, nullptr, taps.data(), d.dy.data(), d.w.data(),
                                    only_taps.data());
      const std::string tap_kind = taps == iota_taps(T) ? "taps row-major" : "taps permuted";
      double& wt = worst[tap_kind + ", no split"];
      wt = std::max(wt, expect_bound(only_taps, d.ref.dx, d.mag.dx, s.O * T, c.name));
      for (const EmulatedGemmPlan& p : data_plans(s.O)) {
        const std::string what = std::string(c.name) + " slices " + std::to_string(p.slices()) +
                                 (p.combine == SplitCombine::tree ? " tree" : " arrival") +
                                 " first tap " + std::to_string(taps[0]);
        Vec dx(x_size(s), 7.0f);
        emulated_conv2d_backward_data(s, &p, taps.data(), d.dy.data(), d.w.data(), dx.data());
        expect_bits(dx, ref_backward_data(s, p, taps, d.dy, d.w), what);
        double& w = worst["split " + std::to_string(p.slices()) +
                          (p.combine == SplitCombine::tree ? " tree" : " arrival")];
        w = std::max(w, expect_bound(dx, d.ref.dx, d.mag.dx, s.O * T, what));
      }
    }
  }
  print_worst("data gradient", worst);
}

TEST(EmulatedConv, WeightGradientPlansWithinTheBound) {
  std::map<std::string, double> worst;
  for (const Case& c : cases()) {
    const Conv2dShape& s = c.s;
    const Data d = make(s);
    Vec canon(w_size(s));
    conv2d_backward_weight(Level::portable, s, d.x.data(), d.dy.data(), canon.data());
    for (const WeightGradPlan& p : weight_plans(s)) {
      const std::string what = std::string(c.name) + " groups " + std::to_string(p.groups) +
                               (p.combine == SplitCombine::tree ? " tree" : " arrival");
      Vec dw(w_size(s), 7.0f);
      emulated_conv2d_backward_weight(p, s, d.x.data(), d.dy.data(), dw.data());
      expect_bits(dw, ref_backward_weight(s, p, d.x, d.dy), what);
      if (p.groups == 1 && s.N * s.OH * s.OW <= 4096) expect_bits(dw, canon, what + " canonical");
      double& w = worst["groups " + std::to_string(p.groups) +
                        (p.combine == SplitCombine::tree ? " tree" : " arrival")];
      w = std::max(w, expect_bound(dw, d.ref.dw, d.mag.dw, s.N * s.OH * s.OW, what));
    }
  }
  print_worst("weight gradient", worst);
}

// All outputs of every alternative, concatenated.
Vec everything(const Conv2dShape& s, const Data& d) {
  Vec all;
  const i64 T = s.KH * s.KW;
  for (int a = 0; a < kConvAlgoCount; ++a) {
    Vec y(y_size(s));
    emulated_conv2d_forward(static_cast<ConvAlgo>(a), s, d.x.data(), d.w.data(), d.b.data(),
                            y.data());
    all.insert(all.end(), y.begin(), y.end());
  }
  for (const auto& taps : tap_orders(T))
    for (const EmulatedGemmPlan& p : data_plans(s.O)) {
      Vec dx(x_size(s));
      emulated_conv2d_backward_data(s, &p, taps.data(), d.dy.data(), d.w.data(), dx.data());
      all.insert(all.end(), dx.begin(), dx.end());
    }
  for (const WeightGradPlan& p : weight_plans(s)) {
    Vec dw(w_size(s));
    emulated_conv2d_backward_weight(p, s, d.x.data(), d.dy.data(), dw.data());
    all.insert(all.end(), dw.begin(), dw.end());
  }
  return all;
}

TEST(EmulatedConv, SameBitsOnOneTwoThreeThreadsAndAnyBudget) {
  ThreadsGuard guard;
  for (const Case& c : {cases()[3], cases()[6], cases()[8]}) {
    const Data d = make(c.s);
    set_num_threads(1);
    const Vec one = everything(c.s, d);
    for (int threads : {2, 3}) {
      set_num_threads(threads);
      expect_bits(everything(c.s, d), one,
                  std::string(c.name) + " threads " + std::to_string(threads));
    }
    set_conv_scratch_budget(500);  // tiles of one sample, weight tiles of a few positions
    expect_bits(everything(c.s, d), one, std::string(c.name) + " small budget");
    set_conv_scratch_budget(i64{4} << 20);
  }
}

// The emulated orders run on the direct tiles where conv_direct applies (and there on
// AVX-512 or AVX2), on im2col + GEMM elsewhere: every path gives the same bits.
TEST(EmulatedConv, DirectTilesAndIm2colPathsGiveTheSameBits) {
  struct Restore {
    ~Restore() {
      conv_direct::set_enabled(true);
      conv_direct::set_avx512_allowed(true);
    }
  } restore;
  for (const Case& c : cases()) {
    const Data d = make(c.s);
    conv_direct::set_enabled(true);
    const Vec direct = everything(c.s, d);
    conv_direct::set_enabled(false);
    expect_bits(everything(c.s, d), direct, std::string(c.name) + " im2col path");
    conv_direct::set_enabled(true);
    if (conv_direct::avx512_available()) {
      conv_direct::set_avx512_allowed(false);
      expect_bits(everything(c.s, d), direct, std::string(c.name) + " AVX2 tiles");
      conv_direct::set_avx512_allowed(true);
    }
  }
}

TEST(EmulatedConv, AlternativesChangeBits) {
  const Conv2dShape s = cases()[8].s;  // LeNet's second convolution, 9 samples
  const Data d = make(s);
  Vec y0(y_size(s)), dx0(x_size(s)), dw0(w_size(s));
  conv2d_forward(Level::portable, s, d.x.data(), d.w.data(), d.b.data(), y0.data());
  conv2d_backward_data(Level::portable, s, d.dy.data(), d.w.data(), dx0.data());
  conv2d_backward_weight(Level::portable, s, d.x.data(), d.dy.data(), dw0.data());
  for (ConvAlgo a : {ConvAlgo::im2col_hwc, ConvAlgo::per_tap}) {
    Vec y(y_size(s));
    emulated_conv2d_forward(a, s, d.x.data(), d.w.data(), d.b.data(), y.data());
    EXPECT_GT(count_differing(y, y0), y_size(s) / 10) << "algo " << static_cast<int>(a);
  }
  const auto orders = tap_orders(s.KH * s.KW);
  Vec dx(x_size(s));
  emulated_conv2d_backward_data(s, nullptr, orders[1].data(), d.dy.data(), d.w.data(), dx.data());
  EXPECT_GT(count_differing(dx, dx0), x_size(s) / 10) << "reversed taps";
  const EmulatedGemmPlan split = split_k_plan(s.O, 4, SplitCombine::tree);
  emulated_conv2d_backward_data(s, &split, nullptr, d.dy.data(), d.w.data(), dx.data());
  EXPECT_GT(count_differing(dx, dx0), x_size(s) / 10) << "split over o";
  for (const WeightGradPlan& p : weight_plans(s)) {
    Vec dw(w_size(s));
    emulated_conv2d_backward_weight(p, s, d.x.data(), d.dy.data(), dw.data());
    if (p.groups > 1) {
      EXPECT_GT(count_differing(dw, dw0), w_size(s) / 10) << p.groups;
    }
  }
}

TEST(EmulatedConv, DrawsCoverEveryAlternative) {
  const Conv2dShape s = cases()[8].s;  // N = 9: every group count fits
  std::set<int> algos, groups, combines, identity;
  std::set<std::vector<std::int32_t>> taps;
  for (std::uint64_t seed = 0; seed < 300; ++seed) {
    const ImplDraw d{seed, ImplFamily::conv, static_cast<std::uint32_t>(seed % 5), 2};
    algos.insert(static_cast<int>(conv_forward_algo(d, s)));
    const WeightGradPlan p = conv_weight_plan(d, s);
    groups.insert(p.groups);
    combines.insert(static_cast<int>(p.combine));
    ASSERT_EQ(conv_data_plan(d, s).cuts.back(), s.O);
    const ImplDraw sc{seed, ImplFamily::scatter, 0, 2};
    const auto order = scatter_tap_order(sc, s);
    taps.insert(order);
    identity.insert(order == iota_taps(s.KH * s.KW));
    // The algorithm is fixed per place: another step keeps it.
    ImplDraw later = d;
    later.step = 9;
    ASSERT_EQ(conv_forward_algo(later, s), conv_forward_algo(d, s));
    ASSERT_EQ(conv_weight_plan(later, s).groups, p.groups);
  }
  EXPECT_EQ(algos.size(), static_cast<std::size_t>(kConvAlgoCount));
  EXPECT_EQ(groups, (std::set<int>{1, 2, 4, 8}));
  EXPECT_EQ(combines.size(), 2u);
  EXPECT_EQ(identity.size(), 2u) << "both row-major and permuted tap orders";
  EXPECT_GE(taps.size(), 100u) << "permutations should vary with the seed";
  // Group counts are capped at N.
  const Conv2dShape small = cases()[0].s;  // N = 3
  for (std::uint64_t seed = 0; seed < 50; ++seed)
    ASSERT_LE(conv_weight_plan(ImplDraw{seed, ImplFamily::conv, 0, 0}, small).groups, small.N);
}

}  // namespace
}  // namespace detdl::cpu
