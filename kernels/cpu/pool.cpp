// CPU pooling. Orders in pool.h; each (n, c) plane is one task, so threads never share an
// output and never change a bit.
#include "kernels/cpu/pool.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels/common/reduction.h"
#include "kernels/cpu/parallel.h"

namespace detdl::cpu {
namespace {

using i64 = std::int64_t;

void require(bool ok, const char* where, const char* field, const std::string& what, i64 got) {
  if (!ok)
    throw std::invalid_argument(std::string(where) + ": " + field + " must be " + what + ", got " +
                                std::to_string(got));
}

i64 floor_div(i64 a, i64 b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }  // b > 0
i64 ceil_div(i64 a, i64 b) { return floor_div(a + b - 1, b); }

// Window taps k in [lo, hi) of output index o that land inside [0, size):
// i = o*stride - pad + k.
struct Taps {
  i64 lo, hi;
};
Taps taps(i64 o, i64 stride, i64 pad, i64 k_size, i64 size) {
  const i64 start = o * stride - pad;
  const i64 lo = std::max<i64>(0, -start), hi = std::min<i64>(k_size, size - start);
  return {lo, std::max(lo, hi)};
}

// Runs fn(plane) for every (n, c) plane on the pool.
template <class Fn>
void for_planes(i64 planes, Fn fn) {
  parallel_ranges(planes, [&](i64 b, i64 e, int) {
    for (i64 p = b; p < e; ++p) fn(p);
  });
}

i64 window_count(const Pool2dShape& s, bool count_include_pad, const Taps& r, const Taps& c) {
  return count_include_pad ? s.KH * s.KW : (r.hi - r.lo) * (c.hi - c.lo);
}

}  // namespace

void check_pool2d_shape(const Pool2dShape& s) {
  const char* where = "pool2d";
  require(s.N >= 1, where, "N", ">= 1", s.N);
  require(s.C >= 1, where, "C", ">= 1", s.C);
  require(s.H >= 1, where, "H", ">= 1", s.H);
  require(s.W >= 1, where, "W", ">= 1", s.W);
  require(s.H * s.W <= std::numeric_limits<std::int32_t>::max(), where, "H*W",
          "<= 2^31-1 (int32 argmax)", s.H * s.W);
  require(s.KH >= 1, where, "KH", ">= 1", s.KH);
  require(s.KW >= 1, where, "KW", ">= 1", s.KW);
  require(s.stride_h >= 1, where, "stride_h", ">= 1", s.stride_h);
  require(s.stride_w >= 1, where, "stride_w", ">= 1", s.stride_w);
  require(s.pad_top >= 0, where, "pad_top", ">= 0", s.pad_top);
  require(s.pad_left >= 0, where, "pad_left", ">= 0", s.pad_left);
  require(s.OH >= 1, where, "OH", ">= 1", s.OH);
  require(s.OW >= 1, where, "OW", ">= 1", s.OW);
}

Pool2dShape pool2d_shape(i64 N, i64 C, i64 H, i64 W, i64 KH, i64 KW, i64 stride, i64 pad) {
  const char* where = "pool2d_shape";
  require(stride >= 1, where, "stride", ">= 1", stride);
  require(pad >= 0, where, "pad", ">= 0", pad);
  require(KH >= 1 && H + 2 * pad >= KH, where, "KH", "in [1, H + 2*pad]", KH);
  require(KW >= 1 && W + 2 * pad >= KW, where, "KW", "in [1, W + 2*pad]", KW);
  Pool2dShape s{N,
                C,
                H,
                W,
                KH,
                KW,
                stride,
                stride,
                pad,
                pad,
                (H + 2 * pad - KH) / stride + 1,
                (W + 2 * pad - KW) / stride + 1};
  check_pool2d_shape(s);
  return s;
}

Pool2dShape pool2d_shape_same(i64 N, i64 C, i64 H, i64 W, i64 KH, i64 KW, i64 stride) {
  const char* where = "pool2d_shape_same";
  require(stride >= 1, where, "stride", ">= 1", stride);
  require(H >= 1, where, "H", ">= 1", H);
  require(W >= 1, where, "W", ">= 1", W);
  const i64 OH = ceil_div(H, stride), OW = ceil_div(W, stride);
  const i64 pad_h = std::max<i64>((OH - 1) * stride + KH - H, 0);
  const i64 pad_w = std::max<i64>((OW - 1) * stride + KW - W, 0);
  Pool2dShape s{N, C, H, W, KH, KW, stride, stride, pad_h / 2, pad_w / 2, OH, OW};
  check_pool2d_shape(s);
  return s;
}

Pool2dShape pool2d_shape_valid(i64 N, i64 C, i64 H, i64 W, i64 KH, i64 KW, i64 stride) {
  const char* where = "pool2d_shape_valid";
  require(stride >= 1, where, "stride", ">= 1", stride);
  require(KH >= 1 && KH <= H, where, "KH", "in [1, H]", KH);
  require(KW >= 1 && KW <= W, where, "KW", "in [1, W]", KW);
  Pool2dShape s{
      N, C, H, W, KH, KW, stride, stride, 0, 0, (H - KH) / stride + 1, (W - KW) / stride + 1};
  check_pool2d_shape(s);
  return s;
}

void maxpool2d_forward(const Pool2dShape& s, const float* x, float* y, std::int32_t* argmax) {
  check_pool2d_shape(s);
  const i64 HW = s.H * s.W, OHW = s.OH * s.OW;
  if (s.KH == 2 && s.KW == 2 && s.stride_h == 2 && s.stride_w == 2 && s.pad_top == 0 && s.pad_left == 0 &&
      2 * s.OH <= s.H && 2 * s.OW <= s.W) {
    // The common 2x2 / stride 2 window that never touches padding (LeNet, most CNNs): the
    // generic loop below without its per-window tap clipping. Same candidates in the same
    // order with the same rule, so the same result bit for bit (tested against it).
    for_planes(s.N * s.C, [&](i64 p) {
      const float* xp = x + p * HW;
      float* yp = y + p * OHW;
      std::int32_t* ap = argmax + p * OHW;
      for (i64 oh = 0; oh < s.OH; ++oh) {
        const i64 r0 = 2 * oh * s.W, r1 = r0 + s.W;
        for (i64 ow = 0; ow < s.OW; ++ow) {
          const i64 idx[4] = {r0 + 2 * ow, r0 + 2 * ow + 1, r1 + 2 * ow, r1 + 2 * ow + 1};
          float best = xp[idx[0]];
          i64 at = idx[0];
          for (int q = 1; q < 4; ++q) {
            const float v = xp[idx[q]];
            if (v > best || (std::isnan(v) && !std::isnan(best))) {
              best = v;
              at = idx[q];
            }
          }
          yp[oh * s.OW + ow] = best;
          ap[oh * s.OW + ow] = static_cast<std::int32_t>(at);
        }
      }
    });
    return;
  }
  for_planes(s.N * s.C, [&](i64 p) {
    const float* xp = x + p * HW;
    for (i64 oh = 0; oh < s.OH; ++oh) {
      const Taps r = taps(oh, s.stride_h, s.pad_top, s.KH, s.H);
      for (i64 ow = 0; ow < s.OW; ++ow) {
        const Taps c = taps(ow, s.stride_w, s.pad_left, s.KW, s.W);
        float best = -std::numeric_limits<float>::infinity();
        i64 at = -1;
        for (i64 kh = r.lo; kh < r.hi; ++kh) {
          const i64 row = (oh * s.stride_h - s.pad_top + kh) * s.W;
          for (i64 kw = c.lo; kw < c.hi; ++kw) {
            const i64 i = row + ow * s.stride_w - s.pad_left + kw;
            const float v = xp[i];
            // Strict > keeps the first maximum; a first NaN wins and then stays.
            if (at < 0 || v > best || (std::isnan(v) && !std::isnan(best))) {
              best = v;
              at = i;
            }
          }
        }
        y[p * OHW + oh * s.OW + ow] = best;
        argmax[p * OHW + oh * s.OW + ow] = static_cast<std::int32_t>(at);
      }
    }
  });
}

void maxpool2d_backward(const Pool2dShape& s, const float* dy, const std::int32_t* argmax,
                        float* dx) {
  check_pool2d_shape(s);
  const i64 HW = s.H * s.W, OHW = s.OH * s.OW;
  for_planes(s.N * s.C, [&](i64 p) {
    float* dxp = dx + p * HW;
    std::fill(dxp, dxp + HW, 0.0f);
    for (i64 j = 0; j < OHW; ++j) {
      const std::int32_t i = argmax[p * OHW + j];
      if (i >= 0) dxp[i] = dxp[i] + dy[p * OHW + j];
    }
  });
}

void avgpool2d_forward(const Pool2dShape& s, bool count_include_pad, const float* x, float* y) {
  check_pool2d_shape(s);
  const i64 HW = s.H * s.W, OHW = s.OH * s.OW;
  for_planes(s.N * s.C, [&](i64 p) {
    const float* xp = x + p * HW;
    for (i64 oh = 0; oh < s.OH; ++oh) {
      const Taps r = taps(oh, s.stride_h, s.pad_top, s.KH, s.H);
      for (i64 ow = 0; ow < s.OW; ++ow) {
        const Taps c = taps(ow, s.stride_w, s.pad_left, s.KW, s.W);
        float sum = 0.0f;
        for (i64 kh = r.lo; kh < r.hi; ++kh) {
          const i64 base = (oh * s.stride_h - s.pad_top + kh) * s.W + ow * s.stride_w - s.pad_left;
          for (i64 kw = c.lo; kw < c.hi; ++kw) sum = sum + xp[base + kw];
        }
        const i64 count = window_count(s, count_include_pad, r, c);
        y[p * OHW + oh * s.OW + ow] = count > 0 ? sum / static_cast<float>(count) : 0.0f;
      }
    }
  });
}

void avgpool2d_backward(const Pool2dShape& s, bool count_include_pad, const float* dy, float* dx) {
  check_pool2d_shape(s);
  const i64 HW = s.H * s.W, OHW = s.OH * s.OW;
  for_planes(s.N * s.C, [&](i64 p) {
    float* dxp = dx + p * HW;
    std::fill(dxp, dxp + HW, 0.0f);
    for (i64 oh = 0; oh < s.OH; ++oh) {
      const Taps r = taps(oh, s.stride_h, s.pad_top, s.KH, s.H);
      for (i64 ow = 0; ow < s.OW; ++ow) {
        const Taps c = taps(ow, s.stride_w, s.pad_left, s.KW, s.W);
        const i64 count = window_count(s, count_include_pad, r, c);
        if (count == 0) continue;
        const float g = dy[p * OHW + oh * s.OW + ow] / static_cast<float>(count);
        for (i64 kh = r.lo; kh < r.hi; ++kh) {
          const i64 base = (oh * s.stride_h - s.pad_top + kh) * s.W + ow * s.stride_w - s.pad_left;
          for (i64 kw = c.lo; kw < c.hi; ++kw) dxp[base + kw] = dxp[base + kw] + g;
        }
      }
    }
  });
}

void global_avgpool_forward(i64 N, i64 C, i64 HW, const float* x, float* y) {
  require(N >= 1, "global_avgpool", "N", ">= 1", N);
  require(C >= 1, "global_avgpool", "C", ">= 1", C);
  require(HW >= 1, "global_avgpool", "HW", ">= 1", HW);
  const float count = static_cast<float>(HW);
  for_planes(N * C, [&](i64 p) { y[p] = canonical_sum(x + p * HW, HW) / count; });
}

void global_avgpool_backward(i64 N, i64 C, i64 HW, const float* dy, float* dx) {
  require(N >= 1, "global_avgpool", "N", ">= 1", N);
  require(C >= 1, "global_avgpool", "C", ">= 1", C);
  require(HW >= 1, "global_avgpool", "HW", ">= 1", HW);
  const float count = static_cast<float>(HW);
  for_planes(N * C, [&](i64 p) {
    const float g = dy[p] / count;
    std::fill(dx + p * HW, dx + (p + 1) * HW, g);
  });
}

}  // namespace detdl::cpu
