// Pointwise (1x1, unpadded) convolutions: see conv_pointwise.h for the orders kept.
#include "kernels/cpu/conv_pointwise.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/common/reduction.h"
#include "kernels/cpu/avx2.h"
#include "kernels/cpu/conv_direct.h"
#include "kernels/cpu/conv_pointwise_avx512.h"
#include "kernels/cpu/parallel.h"

namespace detdl::cpu::conv_pointwise {
namespace {

using i64 = std::int64_t;
constexpr int kRows = 6;  // channels per tile: 12 accumulators + 2 loads + 1 broadcast

// One fmaf chain from +0.0f per output over k in [0, K): acc[v][r] lane l =
// sum_k a[k*kRows + r] * b[k*ldb + v*8 + l], for r < MR and the NV vectors at b. With SHORT,
// the last vector holds `last` lanes (1..7) and its loads are masked, so nothing past them is
// read. store(r, v, acc) takes each result. (The loops are unrolled so that the
// accumulators stay in registers.)
template <int MR, int NV, bool SHORT, class Store>
__attribute__((always_inline)) inline void tile(const float* __restrict a, i64 K,
                                                const float* __restrict b, i64 ldb, i64 last,
                                                const Store& store) {
  __m256 acc[NV][MR];
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v)
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) acc[v][r] = _mm256_setzero_ps();
  const __m256i mask = avx2::first_lanes(last);
  for (i64 k = 0; k < K; ++k, a += kRows, b += ldb) {
    __m256 x[NV];
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v)
      x[v] =
          SHORT && v == NV - 1 ? _mm256_maskload_ps(b + 8 * v, mask) : _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m256 wv = _mm256_broadcast_ss(a + r);
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[v][r] = _mm256_fmadd_ps(wv, x[v], acc[v][r]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) store(r, v, acc[v][r]);
}

// Runs the tiles of one block of MR channels over flat positions [0, P): vectors of 8 in
// pairs, the last pair or vector short where P asks.
template <int MR, class Store>
void block(const float* a, i64 K, const float* b, i64 ldb, i64 P, const Store& store) {
  for (i64 p = 0; p < P; p += 16) {
    const i64 left = P - p;
    const auto at = [&](int r, int v, __m256 acc) { store(r, p + 8 * v, acc); };
    if (left >= 16)
      tile<MR, 2, false>(a, K, b + p, ldb, 8, at);
    else if (left > 8)
      tile<MR, 2, true>(a, K, b + p, ldb, left - 8, at);
    else if (left == 8)
      tile<MR, 1, false>(a, K, b + p, ldb, 8, at);
    else
      tile<MR, 1, true>(a, K, b + p, ldb, left, at);
  }
}

// block<mr> for a block of mr (1..6) channels.
template <class Store>
void any_block(i64 mr, const float* a, i64 K, const float* b, i64 ldb, i64 P, const Store& st) {
  switch (mr) {
    case 1: return block<1>(a, K, b, ldb, P, st);
    case 2: return block<2>(a, K, b, ldb, P, st);
    case 3: return block<3>(a, K, b, ldb, P, st);
    case 4: return block<4>(a, K, b, ldb, P, st);
    case 5: return block<5>(a, K, b, ldb, P, st);
    default: return block<6>(a, K, b, ldb, P, st);
  }
}

// The last `n` lanes of a store: the first n of v at p (n >= 8: all).
inline void put(float* p, __m256 v, i64 n) { avx2::store_first(p, v, std::min<i64>(8, n)); }

// packed[blk][k][r] = m[(blk*R + r)*rs + k*ks], zero past `rows` (the tiles' operand a:
// rows of the block side by side for each k; R = kRows, or kRows512 for the AVX-512 tiles).
std::vector<float> pack(const float* m, i64 rows, i64 K, i64 rs, i64 ks, i64 R = kRows) {
  const i64 blocks = (rows + R - 1) / R;
  std::vector<float> packed(static_cast<std::size_t>(blocks * K * R), 0.0f);
  for (i64 i = 0; i < rows; ++i)
    for (i64 k = 0; k < K; ++k)
      packed[static_cast<std::size_t>(((i / R) * K + k) * R + i % R)] = m[i * rs + k * ks];
  return packed;
}

bool unstrided(const Conv2dShape& s) {
  return s.stride_h == 1 && s.stride_w == 1 && s.OH == s.H && s.OW == s.W;
}

bool shape_applies(const Conv2dShape& s) {
  return conv_direct::enabled() && s.KH == 1 && s.KW == 1 && s.pad_top == 0 && s.pad_left == 0 &&
         (s.OH - 1) * s.stride_h < s.H && (s.OW - 1) * s.stride_w < s.W;
}

// dst[j] = src[j*S] for j < n.
void gather_columns(const float* src, i64 S, i64 n, float* dst) {
  i64 j = 0;
  if (S == 1) {
    std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
    return;
  }
  if (S == 2)  // even columns of 16 inputs, in order; reads stay below src[2*(n-1)]
    for (; j + 8 < n; j += 8) {
      const __m256 lo = _mm256_loadu_ps(src + 2 * j), hi = _mm256_loadu_ps(src + 2 * j + 8);
      const __m256 even = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));  // 0 2 8 10 4 6 ..
      _mm256_storeu_ps(dst + j, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(even),
                                                                       _MM_SHUFFLE(3, 1, 2, 0))));
    }
  for (; j < n; ++j) dst[j] = src[j * S];
}

// dst[w] = src[w / S] where w % S == 0 and w / S < n, +0.0f elsewhere, for w < W.
void spread_columns(const float* src, i64 S, i64 n, i64 W, float* dst) {
  i64 w = 0;
  if (S == 2) {
    const __m256 zero = _mm256_setzero_ps();
    for (i64 j = 0; j + 8 <= n && 2 * j + 16 <= W; j += 8, w += 16) {
      const __m256 v = _mm256_loadu_ps(src + j);
      const __m256 lo = _mm256_unpacklo_ps(v, zero), hi = _mm256_unpackhi_ps(v, zero);
      _mm256_storeu_ps(dst + w, _mm256_permute2f128_ps(lo, hi, 0x20));  // v0 0 v1 0 .. v3 0
      _mm256_storeu_ps(dst + w + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
    }
  }
  for (; w < W; ++w) dst[w] = w % S == 0 && w / S < n ? src[w / S] : 0.0f;
}

}  // namespace

bool forward_applies(const Conv2dShape& s) { return shape_applies(s) && s.C <= kChunkProducts; }
// The AVX-512 tiles' output rows: whole vectors of 16 positions, at horizontal stride 2 (or
// also 1).
static bool rows_of_16(const Conv2dShape& s, bool stride1_too) {
  return conv_direct::avx512_enabled() && s.OW % 16 == 0 &&
         (s.stride_w == 2 || (stride1_too && s.stride_w == 1));
}
// ... or, for the data and weight gradients, two output rows of 8 per vector at stride 2
// (each one x / dx row of 15 or 16 floats: ResNet's 32 -> 64 projection on 16 x 16), an even
// count of them.
// (The forward on such rows stays with conv_direct's channel lanes: at --batch=8 they measured
// 0.024 ms against 0.027 for the pairs read in place, bench/RESULTS.md.)
static bool row_pairs_of_8(const Conv2dShape& s) {
  return conv_direct::avx512_enabled() && s.stride_w == 2 && s.OW == 8 && s.W <= 16 &&
         s.OH % 2 == 0;
}
bool forward_in_place(const Conv2dShape& s) { return forward_applies(s) && rows_of_16(s, false); }
// Up to 16 input channels: one vector of them. 17..32: two, where that is no more FMAs than
// lanes over output channels take (O * 2 <= C * ceil(O / 16): ResNet's 32 -> 64 projection).
bool weight_by_input_lanes(const Conv2dShape& s) {
  const bool lanes = s.C <= 16 || (s.C <= 32 && s.O * 2 <= s.C * ((s.O + 15) / 16));
  return shape_applies(s) && lanes && (rows_of_16(s, true) || row_pairs_of_8(s));
}
bool backward_data_in_place(const Conv2dShape& s) {
  return backward_data_applies(s) && (rows_of_16(s, false) || row_pairs_of_8(s)) && 2 * s.OW >= s.W;
}
bool backward_data_applies(const Conv2dShape& s) {
  return shape_applies(s) && s.O <= kChunkProducts;
}

// With AVX-512 the blocks are 8 rows of 16-lane tiles (conv_pointwise_avx512.h), else 6 rows
// of 8-lane ones; either way each output is the same chain.
void forward(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  const i64 P = s.OH * s.OW, HW = s.H * s.W;
  const bool wide = conv_direct::avx512_enabled();
  const i64 R = wide ? kRows512 : kRows;
  const std::vector<float> wp = pack(w, s.O, s.C, s.C, 1, R);  // (blocks, C, R)
  const bool in_place = forward_in_place(s);
  parallel_ranges(s.N, [&](i64 n0, i64 n1, int) {
    thread_local std::vector<float> cols;  // (C, P): the input at the output positions
    for (i64 n = n0; n < n1; ++n) {
      const float* xn = x + n * s.C * HW;
      const float* b = xn;
      if (in_place) {
        block_s2_avx512(s.O, wp.data(), s.C, xn, HW, s.W, s.stride_h * s.W, s.OH, s.OW, bias,
                        y + n * s.O * P, P);
        continue;
      }
      if (!unstrided(s)) {
        cols.resize(static_cast<std::size_t>(s.C * P));
        for (i64 c = 0; c < s.C; ++c)
          for (i64 oh = 0; oh < s.OH; ++oh) {
            const float* row = xn + c * HW + oh * s.stride_h * s.W;
            float* dst = cols.data() + c * P + oh * s.OW;
            if (wide && s.stride_w == 2)
              gather_even_avx512(row, s.W, s.OW, dst);
            else
              gather_columns(row, s.stride_w, s.OW, dst);
          }
        b = cols.data();
      }
      for (i64 o0 = 0; o0 < s.O; o0 += R) {
        float* yb = y + (n * s.O + o0) * P;
        const float* bb = bias ? bias + o0 : nullptr;
        if (wide) {
          block_avx512(std::min(R, s.O - o0), wp.data() + o0 * s.C, s.C, b, P, P, bb, false, yb, P);
          continue;
        }
        any_block(std::min<i64>(kRows, s.O - o0), wp.data() + o0 * s.C, s.C, b, P, P,
                  [&](int r, i64 p, __m256 acc) {
                    if (bb) acc = _mm256_add_ps(acc, _mm256_broadcast_ss(bb + r));
                    put(yb + r * P + p, acc, P - p);
                  });
      }
    }
  });
}

void backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const i64 P = s.OH * s.OW, HW = s.H * s.W;
  const bool wide = conv_direct::avx512_enabled();
  const i64 R = wide ? kRows512 : kRows;
  const std::vector<float> wt = pack(w, s.C, s.O, 1, s.C, R);  // (blocks, O, R)
  const bool direct = unstrided(s), spread_in_place = backward_data_in_place(s);
  parallel_ranges(s.N, [&](i64 n0, i64 n1, int) {
    thread_local std::vector<float> t;  // (C, P) when strided: +0.0f + each pixel's tap
    if (!direct && !spread_in_place) t.resize(static_cast<std::size_t>(s.C * P));
    for (i64 n = n0; n < n1; ++n) {
      float* dxn = dx + n * s.C * HW;
      if (spread_in_place) {
        // The rows past the last output row's that no output row maps to (none at H = 2 * OH);
        // the tiles write every other row whole.
        for (i64 c = 0; c < s.C; ++c)
          for (i64 i = s.OH * s.stride_h; i < s.H; ++i)
            std::memset(dxn + c * HW + i * s.W, 0, static_cast<std::size_t>(s.W) * sizeof(float));
        data_s2_avx512(s.C, wt.data(), s.O, dy + n * s.O * P, P, dxn, s.H, s.W, s.stride_h, s.OH,
                       s.OW);
        continue;
      }
      float* out = direct ? dxn : t.data();  // rows P apart either way (P == HW when direct)
      const __m256 zero = _mm256_setzero_ps();
      for (i64 c0 = 0; c0 < s.C; c0 += R) {
        if (wide) {
          block_avx512(std::min(R, s.C - c0), wt.data() + c0 * s.O, s.O, dy + n * s.O * P, P, P,
                       nullptr, true, out + c0 * P, P);
          continue;
        }
        any_block(std::min<i64>(kRows, s.C - c0), wt.data() + c0 * s.O, s.O, dy + n * s.O * P, P, P,
                  [&](int r, i64 p, __m256 acc) {
                    put(out + (c0 + r) * P + p, _mm256_add_ps(zero, acc), P - p);
                  });
      }
      if (direct) continue;
      for (i64 c = 0; c < s.C; ++c)
        for (i64 i = 0; i < s.H; ++i) {
          float* row = dxn + c * HW + i * s.W;
          if (i % s.stride_h != 0 || i / s.stride_h >= s.OH) {
            std::fill(row, row + s.W, 0.0f);
            continue;
          }
          spread_columns(t.data() + c * P + (i / s.stride_h) * s.OW, s.stride_w, s.OW, s.W, row);
        }
    }
  });
}

}  // namespace detdl::cpu::conv_pointwise
