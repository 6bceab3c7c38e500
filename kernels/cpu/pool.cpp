// CPU pooling. Orders in pool.h; each (n, c) plane is one task, so threads never share an
// output and never change a bit.
#include "kernels/cpu/pool.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/common/reduction.h"
#include "kernels/cpu/avx2.h"
#include "kernels/cpu/parallel.h"

namespace detdl::cpu {
namespace {

using i64 = std::int64_t;

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

// One output row of the 2x2 / stride-2 max pool, 8 outputs per step: rows r0 (x) and r1
// (x + W); candidates in the order (r0, 2ow), (r0, 2ow+1), (r1, 2ow), (r1, 2ow+1), each taken
// when v > best or when v is the first NaN, exactly as the generic loop decides per output.
// `base`: the plane index of x[0], for argmax. A short last step loads and stores only its
// own lanes, unless the plane has room past them: x_room floats readable from x, y_room
// writable from y (and at). Then its loads take whole vectors, reading the plane's next
// rows, and its stores write whole vectors, the lanes past the row landing on the next output
// row's first outputs, which that row writes again after (this row's caller goes in order).
// LeNet-5's second pool, rows of 7: masked loads and split stores had been most of its time
// in cache (conv2d_relu_max_pool2d pools each sample there). RELU: every candidate is
// relu(v) first (relu_maxpool2d_forward).
template <bool RELU>
void max2x2_row(const float* x, i64 W, i64 OW, std::int32_t base, float* y, std::int32_t* at,
                i64 x_room, i64 y_room) {
  const __m256i two = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  for (i64 ow = 0; ow < OW; ow += 8) {
    const i64 n = std::min<i64>(8, OW - ow), m = 2 * n;                // outputs, inputs per row
    const i64 na = std::min<i64>(8, m), nb = std::max<i64>(0, m - 8);  // inputs per half
    const __m256i ma = avx2::first_lanes(na), mb = avx2::first_lanes(nb);
    const bool whole_in = W + 2 * ow + 16 <= x_room, whole_out = ow + 8 <= y_room;
    // c[2 * row + q]: candidate (row, 2ow + q) of the 8 outputs, i[...] its plane index.
    __m256 c[4];
    __m256i i[4];
    for (int row = 0; row < 2; ++row) {
      const float* r = x + row * W + 2 * ow;
      // Plain loads where a half is whole (avx2::load_first's reason), the masks made once.
      __m256 a = na == 8 || whole_in ? _mm256_loadu_ps(r) : _mm256_maskload_ps(r, ma),
             b = nb == 8 || whole_in ? _mm256_loadu_ps(r + 8) : _mm256_maskload_ps(r + 8, mb);
      if (RELU) {  // relu(v) = v > 0 ? v : +0.0f, maxps's second operand for NaN and +-0
        a = _mm256_max_ps(a, _mm256_setzero_ps());
        b = _mm256_max_ps(b, _mm256_setzero_ps());
      }
      // Deinterleave: even and odd columns of the 16 inputs, in output order.
      c[2 * row] = _mm256_castpd_ps(_mm256_permute4x64_pd(
          _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))), 0xD8));
      c[2 * row + 1] = _mm256_castpd_ps(_mm256_permute4x64_pd(
          _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))), 0xD8));
      i[2 * row] = _mm256_add_epi32(
          _mm256_set1_epi32(base + static_cast<std::int32_t>(row * W + 2 * ow)), two);
      i[2 * row + 1] = _mm256_add_epi32(i[2 * row], _mm256_set1_epi32(1));
    }
    const auto pick = [](__m256 take, __m256i u, __m256i v) {  // take ? v : u
      return _mm256_castps_si256(
          _mm256_blendv_ps(_mm256_castsi256_ps(u), _mm256_castsi256_ps(v), take));
    };
    __m256 best;
    __m256i idx;
    if (RELU) {
      // After relu no candidate is NaN (relu(NaN) = +0.0f) nor -0.0f: the first maximum in
      // candidate order is the later pair's first maximum when it is greater than the earlier
      // pair's, else the earlier pair's, which the two pairs find side by side (two compares
      // deep where the chain below is three).
      const __m256 t01 = _mm256_cmp_ps(c[1], c[0], _CMP_GT_OQ),
                   t23 = _mm256_cmp_ps(c[3], c[2], _CMP_GT_OQ);
      const __m256 m01 = _mm256_blendv_ps(c[0], c[1], t01), m23 = _mm256_blendv_ps(c[2], c[3], t23);
      const __m256 t = _mm256_cmp_ps(m23, m01, _CMP_GT_OQ);
      best = _mm256_blendv_ps(m01, m23, t);
      idx = pick(t, pick(t01, i[0], i[1]), pick(t23, i[2], i[3]));
    } else {
      // In order, each taken when v > best or when v is the first NaN.
      best = c[0];
      idx = i[0];
      for (int q = 1; q < 4; ++q) {
        const __m256 v = c[q];
        const __m256 take = _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ),
                                         _mm256_andnot_ps(_mm256_cmp_ps(best, best, _CMP_UNORD_Q),
                                                          _mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
        best = _mm256_blendv_ps(best, v, take);
        idx = pick(take, idx, i[q]);
      }
    }
    if (whole_out) {
      _mm256_storeu_ps(y + ow, best);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(at + ow), idx);
    } else {
      avx2::store_first(y + ow, best, n);
      avx2::store_first(at + ow, idx, n);
    }
  }
}

// The common 2x2 / stride 2 window that never touches padding (LeNet, most CNNs).
bool is_2x2_stride2(const Pool2dShape& s) {
  return s.KH == 2 && s.KW == 2 && s.stride_h == 2 && s.stride_w == 2 && s.pad_top == 0 &&
         s.pad_left == 0 && 2 * s.OH <= s.H && 2 * s.OW <= s.W;
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

// maxpool2d_forward of plane p (one (n, c)); RELU: of relu(x), each candidate v taken as
// v > 0 ? v : +0.0f (padding stays -inf), which is what the pool sees after
// activation_forward(relu).
template <bool RELU>
void maxpool_plane(const Pool2dShape& s, i64 p, const float* x, float* y, std::int32_t* argmax) {
  const i64 HW = s.H * s.W, OHW = s.OH * s.OW;
  const float* xp = x + p * HW;
  if (is_2x2_stride2(s)) {
    // The common 2x2 / stride 2 window that never touches padding (LeNet, most CNNs): the
    // generic loop below without its per-window tap clipping. Same candidates in the same
    // order with the same rule, so the same result bit for bit (tested against it).
    float* yp = y + p * OHW;
    std::int32_t* ap = argmax + p * OHW;
    for (i64 oh = 0; oh < s.OH; ++oh)
      max2x2_row<RELU>(xp + 2 * oh * s.W, s.W, s.OW, static_cast<std::int32_t>(2 * oh * s.W),
                       yp + oh * s.OW, ap + oh * s.OW, HW - 2 * oh * s.W, OHW - oh * s.OW);
    return;
  }
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
          const float v = RELU ? (xp[i] > 0.0f ? xp[i] : 0.0f) : xp[i];
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
}

template <bool RELU>
void maxpool_forward(const Pool2dShape& s, const float* x, float* y, std::int32_t* argmax) {
  check_pool2d_shape(s);
  for_planes(s.N * s.C, [&](i64 p) { maxpool_plane<RELU>(s, p, x, y, argmax); });
}

// dx[i] = x[i] > 0 ? dx[i] : +0.0f over one plane: relu's backward, (x > 0 mask) & dx.
void relu_mask(const float* x, float* dx, i64 n) {
  i64 i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 m = _mm256_cmp_ps(_mm256_loadu_ps(x + i), _mm256_setzero_ps(), _CMP_GT_OQ);
    _mm256_storeu_ps(dx + i, _mm256_and_ps(_mm256_loadu_ps(dx + i), m));
  }
  for (; i < n; ++i) dx[i] = x[i] > 0.0f ? dx[i] : 0.0f;
}

// One output row of the 2x2 / stride-2 max pool's backward: input rows r0 (dx) and r1
// (dx + W), columns [0, 2 OW), 8 outputs (16 inputs per row) per step. Each input is the
// window's argmax or not: dx = +0.0f + dy there, +0.0f elsewhere, what zeroing the plane and
// adding each output's dy at its argmax gives when every argmax lies in its own window (the
// forward's 2x2 rows write only such). RELU_Y (the fused relu's pooled outputs): each dy
// first masked by relu_y > 0, which holds exactly where x > 0 at the argmax (relu_y =
// relu(x[argmax])), so the result is relu_mask's by x without reading x, four times the
// floats. `base`: the plane index of dx[0]. (Whole vectors past the row's end, as
// max2x2_row's, measured slower here: 0.101 -> 0.113 ms at LeNet-5's first pool.)
void max2x2_backward_row(const float* dy, const std::int32_t* at, i64 W, i64 OW, std::int32_t base,
                         const float* relu_y, float* dx) {
  const __m256i dup_lo = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3),
                dup_hi = _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7),
                iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256 zero = _mm256_setzero_ps();
  for (i64 ow = 0; ow < OW; ow += 8) {
    const i64 n = std::min<i64>(8, OW - ow), m = 2 * n;  // outputs, inputs per row
    // +0.0f + dy: the add of the zeroed plane (turns a -0.0f dy into +0.0f, as it did).
    __m256 d = _mm256_add_ps(zero, avx2::load_first(dy + ow, n));
    if (relu_y)
      d = _mm256_and_ps(d, _mm256_cmp_ps(avx2::load_first(relu_y + ow, n), zero, _CMP_GT_OQ));
    const __m256i a = avx2::load_first(at + ow, n);
    const __m256 d_lo = _mm256_permutevar8x32_ps(d, dup_lo),
                 d_hi = _mm256_permutevar8x32_ps(d, dup_hi);
    const __m256i a_lo = _mm256_permutevar8x32_epi32(a, dup_lo),
                  a_hi = _mm256_permutevar8x32_epi32(a, dup_hi);
    const i64 m_lo = std::min<i64>(8, m), m_hi = std::max<i64>(0, m - 8);
    for (int row = 0; row < 2; ++row) {
      const i64 off = row * W + 2 * ow;
      const __m256i pos =
          _mm256_add_epi32(_mm256_set1_epi32(base + static_cast<std::int32_t>(off)), iota);
      const __m256 lo = _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(a_lo, pos)), d_lo);
      const __m256 hi = _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(
                                          a_hi, _mm256_add_epi32(pos, _mm256_set1_epi32(8)))),
                                      d_hi);
      avx2::store_first(dx + off, lo, m_lo);
      if (m_hi > 0) avx2::store_first(dx + off + 8, hi, m_hi);
    }
  }
  for (int row = 0; row < 2; ++row)  // an odd width's last column: in no window
    std::fill(dx + row * W + 2 * OW, dx + row * W + W, 0.0f);
}

// maxpool2d_backward; with relu_x (and relu_y, the fused relu's pooled outputs), masked as
// relu's backward by x: by relu_y at the 2x2 rows, else each plane by relu_x > 0 in cache.
void maxpool_backward(const Pool2dShape& s, const float* relu_x, const float* relu_y,
                      const float* dy, const std::int32_t* argmax, float* dx) {
  check_pool2d_shape(s);
  const i64 HW = s.H * s.W, OHW = s.OH * s.OW;
  if (is_2x2_stride2(s)) {
    // The forward's 2x2 rows (maxpool_forward) put every argmax in its own window, which
    // no other window overlaps: each input is written once, in one pass over the plane.
    for_planes(s.N * s.C, [&](i64 p) {
      float* dxp = dx + p * HW;
      for (i64 oh = 0; oh < s.OH; ++oh)
        max2x2_backward_row(dy + p * OHW + oh * s.OW, argmax + p * OHW + oh * s.OW, s.W, s.OW,
                            static_cast<std::int32_t>(2 * oh * s.W),
                            relu_y ? relu_y + p * OHW + oh * s.OW : nullptr, dxp + 2 * oh * s.W);
      std::fill(dxp + 2 * s.OH * s.W, dxp + HW, 0.0f);  // an odd height's last row
    });
    return;
  }
  for_planes(s.N * s.C, [&](i64 p) {
    float* dxp = dx + p * HW;
    std::fill(dxp, dxp + HW, 0.0f);
    for (i64 j = 0; j < OHW; ++j) {
      const std::int32_t i = argmax[p * OHW + j];
      if (i >= 0) dxp[i] = dxp[i] + dy[p * OHW + j];
    }
    if (relu_x) relu_mask(relu_x + p * HW, dxp, HW);
  });
}

}  // namespace

void maxpool2d_forward(const Pool2dShape& s, const float* x, float* y, std::int32_t* argmax) {
  maxpool_forward<false>(s, x, y, argmax);
}

void relu_maxpool2d_forward(const Pool2dShape& s, const float* x, float* y, std::int32_t* argmax) {
  maxpool_forward<true>(s, x, y, argmax);
}

void relu_maxpool2d_forward_sample(const Pool2dShape& s, std::int64_t n, const float* x, float* y,
                                   std::int32_t* argmax) {
  check_pool2d_shape(s);
  for (i64 p = n * s.C; p < (n + 1) * s.C; ++p) maxpool_plane<true>(s, p, x, y, argmax);
}

void maxpool2d_backward(const Pool2dShape& s, const float* dy, const std::int32_t* argmax,
                        float* dx) {
  maxpool_backward(s, nullptr, nullptr, dy, argmax, dx);
}

void relu_maxpool2d_backward(const Pool2dShape& s, const float* x, const float* y, const float* dy,
                             const std::int32_t* argmax, float* dx) {
  maxpool_backward(s, x, y, dy, argmax, dx);
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
  require_field(N >= 1, "global_avgpool", "N", ">= 1", N);
  require_field(C >= 1, "global_avgpool", "C", ">= 1", C);
  require_field(HW >= 1, "global_avgpool", "HW", ">= 1", HW);
  const float count = static_cast<float>(HW);
  for_planes(N * C, [&](i64 p) { y[p] = canonical_sum(x + p * HW, HW) / count; });
}

void global_avgpool_backward(i64 N, i64 C, i64 HW, const float* dy, float* dx) {
  require_field(N >= 1, "global_avgpool", "N", ">= 1", N);
  require_field(C >= 1, "global_avgpool", "C", ">= 1", C);
  require_field(HW >= 1, "global_avgpool", "HW", ">= 1", HW);
  const float count = static_cast<float>(HW);
  for_planes(N * C, [&](i64 p) {
    const float g = dy[p] / count;
    std::fill(dx + p * HW, dx + (p + 1) * HW, g);
  });
}

// ---- The `emulated` level (pool.h, "The emulated level") ----

void maxpool2d_backward(ScatterOrder order, const ImplDraw& d, const Pool2dShape& s,
                        const float* dy, const std::int32_t* argmax, float* dx) {
  if (order == ScatterOrder::canonical || !pool_windows_overlap(s)) {
    maxpool2d_backward(s, dy, argmax, dx);
    return;
  }
  check_pool2d_shape(s);
  const i64 HW = s.H * s.W, OHW = s.OH * s.OW;
  const std::vector<i64> perm = pool_arrival_order(d, s);
  for_planes(s.N * s.C, [&](i64 p) {
    float* dxp = dx + p * HW;
    std::fill(dxp, dxp + HW, 0.0f);
    for (const i64 j : perm) {
      const std::int32_t i = argmax[p * OHW + j];
      if (i >= 0) dxp[i] = dxp[i] + dy[p * OHW + j];
    }
  });
}

void avgpool2d_backward(ScatterOrder order, const ImplDraw& d, const Pool2dShape& s,
                        bool count_include_pad, const float* dy, float* dx) {
  if (order == ScatterOrder::canonical || !pool_windows_overlap(s)) {
    avgpool2d_backward(s, count_include_pad, dy, dx);
    return;
  }
  check_pool2d_shape(s);
  const i64 HW = s.H * s.W, OHW = s.OH * s.OW;
  const std::vector<i64> perm = pool_arrival_order(d, s);
  for_planes(s.N * s.C, [&](i64 p) {
    float* dxp = dx + p * HW;
    std::fill(dxp, dxp + HW, 0.0f);
    for (const i64 j : perm) {
      const i64 oh = j / s.OW, ow = j % s.OW;
      const Taps r = taps(oh, s.stride_h, s.pad_top, s.KH, s.H);
      const Taps c = taps(ow, s.stride_w, s.pad_left, s.KW, s.W);
      const i64 count = window_count(s, count_include_pad, r, c);
      if (count == 0) continue;
      const float g = dy[p * OHW + j] / static_cast<float>(count);
      for (i64 kh = r.lo; kh < r.hi; ++kh) {
        const i64 base = (oh * s.stride_h - s.pad_top + kh) * s.W + ow * s.stride_w - s.pad_left;
        for (i64 kw = c.lo; kw < c.hi; ++kw) dxp[base + kw] = dxp[base + kw] + g;
      }
    }
  });
}

void global_avgpool_forward(ReduceShape shape, const ImplDraw& d, i64 N, i64 C, i64 HW,
                            const float* x, float* y) {
  require_field(N >= 1, "global_avgpool", "N", ">= 1", N);
  require_field(C >= 1, "global_avgpool", "C", ">= 1", C);
  require_field(HW >= 1, "global_avgpool", "HW", ">= 1", HW);
  const float count = static_cast<float>(HW);
  const std::vector<i64> order = arrival_order(shape, d, HW);
  for_planes(N * C, [&](i64 p) {
    const float* xp = x + p * HW;
    y[p] = shaped_sum_of(shape, order.data(), HW, [xp](i64 k) { return xp[k]; }) / count;
  });
}

}  // namespace detdl::cpu
