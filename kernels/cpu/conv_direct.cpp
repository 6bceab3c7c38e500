// Direct convolutions (conv_direct.h): the drivers. They pad, pack the weights, cut the
// work into tiles and tasks, and call the register tiles of one ISA (conv_direct_tiles.h).
#include "kernels/cpu/conv_direct.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <functional>
#include <vector>

#include "kernels/common/reduction.h"
#include "kernels/cpu/avx2.h"
#include "kernels/cpu/conv_direct_tiles.h"
#include "kernels/cpu/conv_pointwise.h"
#include "kernels/cpu/conv_pointwise_avx512.h"
#include "kernels/cpu/parallel.h"

namespace detdl::cpu::conv_direct {
namespace {

using i64 = std::int64_t;

std::atomic<bool> g_enabled{true};
std::atomic<bool> g_avx512_allowed{true};

i64 round_up(i64 a, i64 b) { return (a + b - 1) / b * b; }

// The tiles for a dimension of `extent` lanes' worth (OW, W or O): AVX-512 where the CPU has
// it and 16-lane vectors waste no more lanes than 8-lane ones, AVX2 otherwise. Either gives
// the same bits (conv_direct_tiles.h).
const TileSet& tiles_for(i64 extent) {
  if (avx512_enabled() && round_up(extent, 16) == round_up(extent, 8)) return tiles_avx512();
  return tiles_avx2();
}

// The paired tiles (two rows of at most 8 lanes per 16-lane vector) for a dimension of
// `extent` lanes (OW or J), where the CPU has AVX-512 and the AVX2 tiles would fill 8 lanes
// with one short row each.
bool use_pairs(i64 extent, i64 rows) { return avx512_enabled() && extent <= 8 && rows >= 2; }

// Whether every one of n floats is finite: v * 0 is +-0 for a finite v and NaN for an
// infinity or a NaN, and a sum of them stays NaN once one is. One FMA per 8 floats.
bool all_finite(const float* p, i64 n) {
  const __m256 z = _mm256_setzero_ps();
  __m256 a0 = z, a1 = z, a2 = z, a3 = z;
  i64 i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(p + i), z, a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(p + i + 8), z, a1);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(p + i + 16), z, a2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(p + i + 24), z, a3);
  }
  const __m256 a = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
  bool ok = _mm256_movemask_ps(_mm256_cmp_ps(a, a, _CMP_UNORD_Q)) == 0;
  for (; i < n; ++i) ok = ok && std::isfinite(p[i]);
  return ok;
}

// The widest tiles the CPU runs: the sample-lane paths take one vector's worth of samples.
const TileSet& widest_tiles() { return avx512_enabled() ? tiles_avx512() : tiles_avx2(); }

// The most rows R of a tile family (tiles[R - 1], R <= most) whose registers fit.
template <class Tile>
i64 rows_that_fit(const Tile* tiles, i64 most) {
  while (most > 1 && tiles[most - 1] == nullptr) --most;
  return most;
}

// A vector's worth of positions: row `row`, columns [col, col + lanes).
struct Seg {
  i64 row, col, lanes;
};
// The rows of a rows x cols plane cut into vectors of `width` lanes (the last of a row
// shorter); consecutive vectors pair up into tiles, so short rows pair with the next row.
std::vector<Seg> segments(i64 rows, i64 cols, i64 width) {
  std::vector<Seg> out;
  for (i64 r = 0; r < rows; ++r)
    for (i64 c = 0; c < cols; c += width) out.push_back({r, c, std::min(width, cols - c)});
  return out;
}

// A grow-only float buffer on 64-byte boundaries: the tiles' whole-vector loads of packed
// weights and gradients then never straddle two cache lines (a split load costs two).
class AlignedFloats {
 public:
  float* get(i64 n) {
    if (n > cap_) {
      const std::size_t bytes = static_cast<std::size_t>((n * 4 + 63) / 64 * 64);
      p_.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
      if (!p_) throw std::bad_alloc();
      cap_ = n;
    }
    return p_.get();
  }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> p_;
  i64 cap_ = 0;
};

// Per-thread grow-only scratch, kept between calls (contents not kept when it grows). Slot
// 0 serves every pass; a pass that needs a second buffer while slot 0 is in use takes slot
// 1 (the lanes-over-channels forward's outputs of one sample, the weight gradient's padded
// input of one task).
template <int Slot = 0>
float* scratch(i64 n) {
  thread_local AlignedFloats buf;
  return buf.get(n);
}
// The weight gradient's shared scratch (the chunk partials), owned by the calling thread.
struct WeightScratch {
  std::vector<float> part;
};
WeightScratch& weight_scratch() {
  thread_local WeightScratch w;
  return w;
}

// How many of `left` items the next group takes when groups of at most `most` share them as
// evenly as they go (a lone vector pays a whole tile's broadcasts).
i64 even_group(i64 left, i64 most) {
  const i64 groups = (left + most - 1) / most;
  return (left + groups - 1) / groups;
}

// dst[blk][tap][o][r] = w[o][blk*rows + r][tap] for r < rows (input channels in blocks of
// `rows`), each (blk, tap, o) `width` floats apart, zero elsewhere: the data gradient's tiles'
// weights.
void pack_data_weights(const Conv2dShape& s, const float* w, i64 rows, i64 width, float* dst) {
  const i64 taps = s.KH * s.KW, blocks = (s.C + rows - 1) / rows;
  std::fill_n(dst, blocks * taps * s.O * width, 0.0f);
  for (i64 o = 0; o < s.O; ++o)
    for (i64 c = 0; c < s.C; ++c)
      for (i64 t = 0; t < taps; ++t)
        dst[(((c / rows) * taps + t) * s.O + o) * width + c % rows] = w[(o * s.C + c) * taps + t];
}

// Copies n floats: the rows copied here are short (tens of floats) and many, where a
// memcpy call costs more than the copy.
inline void copy_row(float* dst, const float* src, i64 n) {
  i64 i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_loadu_ps(src + i));
  if (i < n)  // the last 1..7 floats: a masked load reads nothing past them
    avx2::store_first(dst + i, _mm256_maskload_ps(src + i, avx2::first_lanes(n - i)), n - i);
}

// Zeros n floats (short runs, like copy_row).
inline void zero_row(float* dst, i64 n) {
  if (n <= 2) {  // a padding's column or two: plain stores (a masked store costs more; a loop
                 // here became a memset call)
    if (n > 0) dst[0] = 0.0f;
    if (n > 1) dst[1] = 0.0f;
    return;
  }
  i64 i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_setzero_ps());
  if (i < n) avx2::store_first(dst + i, _mm256_setzero_ps(), n - i);
}

// dst[q] = src[q + q0] where 0 <= q + q0 < len, +0.0f elsewhere, for q < n. The in-range
// span [lo, hi) is the same for every row of a call, so a row costs no division.
struct RowWindow {
  i64 n, q0, lo, hi;
  RowWindow(i64 n_, i64 q0_, i64 len)
      : n(n_), q0(q0_), lo(std::clamp<i64>(-q0_, 0, n_)), hi(std::clamp<i64>(len - q0_, lo, n_)) {}
  void operator()(float* dst, const float* src) const {
    zero_row(dst, lo);
    copy_row(dst + lo, src + q0 + lo, hi - lo);
    zero_row(dst + hi, n - hi);
  }
};

// dst[f][j] = src[j*S + f] for f < S, j < m, dst rows `ld` apart; src holds m*S floats and
// 16 more that may be read. Stride 2 splits pairs in registers.
void split_phases(const float* src, i64 S, i64 m, float* dst, i64 ld) {
  i64 j = 0;
  if (S == 2)
    for (; j + 8 <= m; j += 8) {
      const __m256 a = _mm256_loadu_ps(src + 2 * j), b = _mm256_loadu_ps(src + 2 * j + 8);
      const __m256 ev = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));  // a0 a2 b0 b2 a4 ..
      const __m256 od = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));  // a1 a3 b1 b3 a5 ..
      const int order = _MM_SHUFFLE(3, 1, 2, 0);  // 64-bit pairs 0 2 1 3: a0 a2 a4 a6 b0 ..
      _mm256_storeu_ps(dst + j,
                       _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), order)));
      _mm256_storeu_ps(dst + ld + j,
                       _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(od), order)));
    }
  for (; j < m; ++j)
    for (i64 f = 0; f < S; ++f) dst[f * ld + j] = src[j * S + f];
}

// The inverse: dst[j*S + f] = src[f*ld + j] for j*S + f < n. Stride 2 interleaves pairs of
// rows in registers.
void merge_phases(const float* src, i64 ld, i64 S, i64 n, float* dst) {
  i64 j = 0;
  if (S == 2)
    for (; 2 * j + 16 <= n; j += 8) {
      const __m256 a = _mm256_loadu_ps(src + j), b = _mm256_loadu_ps(src + ld + j);
      const __m256 lo = _mm256_unpacklo_ps(a, b),
                   hi = _mm256_unpackhi_ps(a, b);                               // a0 b0 a1 b1 a4 ..
      _mm256_storeu_ps(dst + 2 * j, _mm256_permute2f128_ps(lo, hi, 0x20));      // a0 b0 .. a3 b3
      _mm256_storeu_ps(dst + 2 * j + 8, _mm256_permute2f128_ps(lo, hi, 0x31));  // a4 b4 .. a7 b7
    }
  for (i64 q = j * S; q < n; ++q) dst[q] = src[q % S * ld + q / S];
}

// Copies one (C, H, W) input into (C, p.rows, p.cols) planes at offset (pad_top, pad_left),
// zeros elsewhere.
void fill_input_pad(const Conv2dShape& s, const Pad& p, i64 channels, const float* src,
                    float* dst) {
  const RowWindow window(p.cols, -s.pad_left, s.W);  // every float written once
  for (i64 c = 0; c < channels; ++c)
    for (i64 r = 0; r < p.rows; ++r) {
      const i64 ih = r - s.pad_top;
      float* row = dst + c * p.plane + r * p.cols;
      if (ih >= 0 && ih < s.H)
        window(row, src + (c * s.H + ih) * s.W);
      else
        std::fill(row, row + p.cols, 0.0f);
    }
}

// dst[i][l] = src[l][i] for l < rows, 0 for rows <= l < width; i < cols. src rows are `ld`
// apart, dst rows `width` (a multiple of 8) apart. Blocks of 8 x 8 go through registers.
void transpose_rows(const float* src, i64 ld, i64 rows, i64 cols, float* dst, i64 width) {
  i64 i = 0;
  for (; i + 8 <= cols; i += 8)
    for (i64 l0 = 0; l0 < width; l0 += 8) {
      __m256 r[8];
      for (i64 l = 0; l < 8; ++l)
        r[l] = l0 + l < rows ? _mm256_loadu_ps(src + (l0 + l) * ld + i) : _mm256_setzero_ps();
      avx2::transpose8(r);  // r[l][k] -> r[k][l]
      for (i64 k = 0; k < 8; ++k) _mm256_storeu_ps(dst + (i + k) * width + l0, r[k]);
    }
  for (; i < cols; ++i)
    for (i64 l = 0; l < width; ++l) dst[i * width + l] = l < rows ? src[l * ld + i] : 0.0f;
}

// dst[l*ldd + j*step] = src[j*lds + l] for j < nj, l < nl: the lanes-over-channels tiles'
// (position, channel) results into planes. Blocks of 8 x 8 go through registers where step
// is 1 (a strided scalar loop had been a tenth of the 8 x 8 forward's time).
void transpose_out(const float* src, i64 lds, i64 nj, i64 nl, float* dst, i64 ldd, i64 step) {
  i64 j0 = 0;
  if (step == 1)
    for (; j0 + 8 <= nj; j0 += 8) {
      i64 l0 = 0;
      for (; l0 + 8 <= nl; l0 += 8) {
        __m256 r[8];
        for (i64 j = 0; j < 8; ++j) r[j] = _mm256_loadu_ps(src + (j0 + j) * lds + l0);
        avx2::transpose8(r);  // r[j][l] -> r[l][j]
        for (i64 l = 0; l < 8; ++l) _mm256_storeu_ps(dst + (l0 + l) * ldd + j0, r[l]);
      }
      for (; l0 < nl; ++l0)
        for (i64 j = j0; j < j0 + 8; ++j) dst[l0 * ldd + j] = src[j * lds + l0];
    }
  for (i64 l = 0; l < nl; ++l)
    for (i64 j = j0; j < nj; ++j) dst[l * ldd + j * step] = src[j * lds + l];
}

// `fast`: tasks go to threads by timing (parallel_dynamic). Each thread adds the chunk
// partials of the tasks it ran into running sums, in the order it ran them, and the threads'
// sums are added in the order the threads finished. Which chunks meet in which sum changes
// with the schedule, and so do the bits (with 2+ threads).
template <class Task>
void fast_fold(const Conv2dShape& s, i64 K, i64 panels, i64 groups, i64 width, i64 group_taps,
               i64 Opad, i64 n_tasks, const Task& run_task, const float* part, float* dw) {
  const int T = static_cast<int>(std::min<i64>(num_threads(), n_tasks));
  std::vector<std::vector<i64>> ran(static_cast<std::size_t>(T));  // tasks per thread, in order
  std::vector<i64> finished(static_cast<std::size_t>(T), -1);
  std::atomic<i64> stamp{0};
  parallel_dynamic(n_tasks, [&](i64 task, int worker) {
    run_task(task);
    ran[static_cast<std::size_t>(worker)].push_back(task);
    finished[static_cast<std::size_t>(worker)] = stamp.fetch_add(1);
  });
  std::vector<int> order;
  for (int w = 0; w < T; ++w)
    if (finished[static_cast<std::size_t>(w)] >= 0) order.push_back(w);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    return finished[static_cast<std::size_t>(a)] < finished[static_cast<std::size_t>(b)];
  });
  parallel_ranges(s.O * K, [&](i64 b, i64 e, int) {
    for (i64 i = b; i < e; ++i) {
      const i64 o = i / K, k = i % K, panel = o / width, g = k / group_taps;
      float total = 0.0f;
      bool first_thread = true;
      for (int w : order) {
        float sum = 0.0f;
        bool any = false;
        for (i64 task : ran[static_cast<std::size_t>(w)]) {
          if (task / groups % panels != panel || task % groups != g) continue;
          const float v = part[(task / (panels * groups) * K + k) * Opad + o];
          sum = any ? sum + v : v;
          any = true;
        }
        if (!any) continue;
        total = first_thread ? sum : total + sum;
        first_thread = false;
      }
      dw[i] = total;
    }
  });
}

}  // namespace

void set_enabled(bool on) { g_enabled.store(on); }
bool enabled() { return g_enabled.load(); }
void set_avx512_allowed(bool on) { g_avx512_allowed.store(on); }
bool avx512_available() { return __builtin_cpu_supports("avx512f"); }
// AVX-512 tiles may run: the CPU has AVX-512F and the test hook allows them.
bool avx512_enabled() {
  static const bool has512 = __builtin_cpu_supports("avx512f");
  return has512 && g_avx512_allowed.load();
}

bool forward_applies(const Conv2dShape& s) {
  return enabled() && s.C * s.KH * s.KW <= kChunkProducts;
}

// Lanes over output channels where AVX-512 has two vectors' worth of them and rows are at
// most 8 wide (ResNet's 8 x 8 stage), which the paired tiles run at about half oneDNN's
// speed, or at most 16 wide at stride 2, where these tiles read the input without the
// column-phase split (ResNet's downsampling layers and projections). On wider rows at stride
// 1 the position tiles measured faster (bench/RESULTS.md, 2026-12-05).
bool forward_by_channels(const Conv2dShape& s) {
  if (!forward_applies(s) || !avx512_enabled()) return false;
  // Exactly 16 output channels (one vector of them) on rows of 9..16 positions, which fill
  // 9..16 of a position tile's lanes: LeNet-5's second layer (10-wide rows).
  if (s.O == 16 && s.OW > 8 && s.OW <= 16) return true;
  return s.O >= 32 && (s.OW <= 8 || (s.stride_w == 2 && s.OW <= 16));
}

// The padded input of one sample, its columns split by phase so that every tap reads
// consecutive output positions from consecutive floats at any horizontal stride S: row r of
// plane c holds, for each phase f in [0, S), the padded columns q = q'*S + f at q' in
// [0, colsP), i.e. xpad[c][r][f][q'] = x[c][r - pad_top][q'*S + f - pad_left] inside the
// input, 0 elsewhere. Output column ow at tap kw reads q = ow*S + kw: phase kw % S, q' = ow +
// kw / S. Rows cover every output row's window; columns every lane of a row's last vector
// (lanes past OW compute on zeros or real inputs and are never stored).
namespace {

// dst[k * L + l] = src[l * ld + k] for k < K and l < nb, +0.0f for nb <= l < L: nb rows of
// K floats into K vectors of L lanes (L 8 or 16), through 8 x 8 transposes.
void to_sample_lanes(const float* src, i64 ld, i64 K, i64 nb, i64 L, float* dst) {
  for (i64 h = 0; h < L; h += 8) {
    i64 k = 0;
    for (; k + 8 <= K; k += 8) {
      __m256 r[8];
      for (i64 l = 0; l < 8; ++l)
        r[l] = h + l < nb ? _mm256_loadu_ps(src + (h + l) * ld + k) : _mm256_setzero_ps();
      avx2::transpose8(r);
      for (i64 q = 0; q < 8; ++q) _mm256_storeu_ps(dst + (k + q) * L + h, r[q]);
    }
    for (; k < K; ++k)
      for (i64 l = 0; l < 8; ++l) dst[k * L + h + l] = h + l < nb ? src[(h + l) * ld + k] : 0.0f;
  }
}

// The inverse for the first nb lanes: dst[l * ld + k] = src[k * L + l], k < K, l < nb.
void from_sample_lanes(const float* src, i64 K, i64 nb, i64 L, float* dst, i64 ld) {
  for (i64 h = 0; h < L && h < nb; h += 8) {
    i64 k = 0;
    for (; k + 8 <= K; k += 8) {
      __m256 r[8];
      for (i64 q = 0; q < 8; ++q) r[q] = _mm256_loadu_ps(src + (k + q) * L + h);
      avx2::transpose8(r);
      for (i64 l = 0; l < 8 && h + l < nb; ++l) _mm256_storeu_ps(dst + (h + l) * ld + k, r[l]);
    }
    for (; k < K; ++k)
      for (i64 l = 0; l < 8 && h + l < nb; ++l) dst[(h + l) * ld + k] = src[k * L + h + l];
  }
}

// The data gradient with lanes over samples (data_sample_tile) where the canonical order runs
// at stride 1 on fewer than 8 input channels (LeNet's second layers: 6 or 4): blocks of one
// vector's worth of samples, the block's dy transposed into (O, OH, OW, lanes) and its dx
// back out of (C, H, W, lanes). Position lanes had filled 14 of 16 lanes on a 14-wide row and
// computed every edge tap on the padding's columns (a fifth of their products at 'same' 5 x
// 5); here a tap outside dy is left out pixel by pixel. A block's buffers are bounded
// (kSampleBlockBytes): ResNet's stem (3 -> 16 channels, 32 x 32) takes 1.2 MiB and still ran
// 3.9 -> 2.1 ms (bench/RESULTS.md, 2026-12-06 third session).
constexpr i64 kSampleBlockBytes = i64{2} << 20;
bool data_by_samples(const Conv2dShape& s, i64 lanes) {
  return s.stride_h == 1 && s.stride_w == 1 && s.C < 8 && s.N >= lanes &&
         (s.O * s.OH * s.OW + s.C * s.H * s.W) * lanes * 4 <= kSampleBlockBytes;
}

void backward_data_sample_lanes(const TileSet& ts, const Conv2dShape& s, const float* dy,
                                const float* w, float* dx) {
  const i64 L = ts.lanes, taps = s.KH * s.KW, blocks = (s.C + kMR - 1) / kMR;
  AlignedFloats wt_buf;
  float* wt = wt_buf.get(blocks * taps * s.O * kMR);
  pack_data_weights(s, w, kMR, kMR, wt);
  const i64 KY = s.O * s.OH * s.OW, KX = s.C * s.H * s.W, HWL = s.H * s.W * L;
  // A dropped pixel reads dy columns pad_left - (KW - 1) .. W - 1 + pad_left of a row
  // inside dy: up to KW - 1 floats before the first plane, W + pad_left - OW past the last.
  const i64 slack = std::max(s.KW, s.W + s.pad_left - s.OW) * L;
  const i64 sample_blocks = (s.N + L - 1) / L;
  parallel_ranges(sample_blocks, [&](i64 b0, i64 b1, int) {
    float* ybuf = scratch(KY * L + 2 * slack);
    float* dys = ybuf + slack;
    float* dxs = scratch<1>(KX * L);
    std::fill(ybuf, dys, 0.0f);  // the slack: read by dropped pixels only, zeros all the same
    std::fill(dys + KY * L, dys + KY * L + slack, 0.0f);
    for (i64 b = b0; b < b1; ++b) {
      const i64 n0 = b * L, nb = std::min(L, s.N - n0);
      to_sample_lanes(dy + n0 * KY, KY, KY, nb, L, dys);
      for (i64 blk = 0; blk < blocks; ++blk) {
        const i64 mc = std::min<i64>(kMR, s.C - blk * kMR);
        const DataSampleTile* row_tiles = ts.data_sample + (mc - 1) * kDataSampleRows;
        const i64 rmax = rows_that_fit(row_tiles, kDataSampleRows);
        for (i64 i = 0; i < s.H; ++i)
          for (i64 j0 = 0; j0 < s.W;) {
            const i64 r = even_group(s.W - j0, rmax);
            row_tiles[r - 1](s, wt + blk * taps * s.O * kMR, i, j0, dys, dxs + blk * kMR * HWL);
            j0 += r;
          }
      }
      from_sample_lanes(dxs, KX, nb, L, dx + n0 * KX, KX);
    }
  });
}

// The forward with lanes over samples (fwd_sample_tile) where the canonical order runs at
// stride 1 on at most 8 output channels (LeNet's first layers: 6 or 4) with AVX-512: blocks
// of 16 samples, the block's input transposed into a zero-padded (C, rows, cols, 16) buffer
// and its output back out of (O, OH, OW, 16). Position lanes had filled 28 of 32 lanes on a
// 28-wide row and computed the padding's columns; here a row's positions take 16 samples'
// worth each, and a tap all of whose positions read the padding is left out (finite
// weights). after_sample: each sample of a block once the block's outputs are in y.
bool fwd_by_samples(const Conv2dShape& s) {
  if (!avx512_enabled() || s.stride_h != 1 || s.stride_w != 1 || s.O > kFwdSampleWidth || s.N < 16)
    return false;
  const i64 rows = s.OH - 1 + s.KH, cols = s.OW - 1 + s.KW;
  return (s.C * rows * cols + s.O * s.OH * s.OW) * 16 * 4 <= kSampleBlockBytes;
}

void forward_sample_lanes(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                          float* y, const std::function<void(i64)>* after_sample) {
  const TileSet& ts = tiles_avx512();
  const i64 L = ts.lanes, K = s.C * s.KH * s.KW, KW8 = kFwdSampleWidth;
  const i64 oblocks = (s.O + KW8 - 1) / KW8;
  AlignedFloats wq_buf;
  float* wq = wq_buf.get(oblocks * K * KW8);  // wq[ob][k][r] = w[ob * 8 + r][k], zero past O
  std::fill_n(wq, oblocks * K * KW8, 0.0f);
  for (i64 o = 0; o < s.O; ++o)
    for (i64 k = 0; k < K; ++k) wq[(o / KW8 * K + k) * KW8 + o % KW8] = w[o * K + k];
  const bool skip = all_finite(w, s.O * K);
  const i64 rows = s.OH - 1 + s.KH, cols = s.OW - 1 + s.KW;
  const Pad pad{rows, cols, rows * cols};
  // The input rows and columns inside the buffer: ih in [ih0, ih1) at row ih + pad_top.
  const i64 ih0 = std::max<i64>(0, -s.pad_top), ih1 = std::min(s.H, rows - s.pad_top);
  const i64 iw0 = std::max<i64>(0, -s.pad_left), iw1 = std::min(s.W, cols - s.pad_left);
  const i64 XS = s.C * s.H * s.W, YS = s.O * s.OH * s.OW, sample_blocks = (s.N + L - 1) / L;
  parallel_ranges(sample_blocks, [&](i64 b0, i64 b1, int) {
    float* xs = scratch(s.C * pad.plane * L);
    float* ys = scratch<1>(YS * L);
    std::fill_n(xs, s.C * pad.plane * L, 0.0f);  // the padding; the inside is rewritten
    for (i64 b = b0; b < b1; ++b) {
      const i64 n0 = b * L, nb = std::min(L, s.N - n0);
      for (i64 c = 0; c < s.C; ++c)
        for (i64 ih = ih0; ih < ih1; ++ih)
          to_sample_lanes(x + n0 * XS + (c * s.H + ih) * s.W + iw0, XS, iw1 - iw0, nb, L,
                          xs + ((c * rows + ih + s.pad_top) * cols + iw0 + s.pad_left) * L);
      for (i64 ob = 0; ob < oblocks; ++ob) {
        const i64 mo = std::min(KW8, s.O - ob * KW8);
        const FwdSampleTile* row_tiles = ts.fwd_sample + (mo - 1) * kFwdSampleRows;
        const i64 rmax = rows_that_fit(row_tiles, kFwdSampleRows);
        const float* bb = bias ? bias + ob * KW8 : nullptr;
        for (i64 oh = 0; oh < s.OH; ++oh)
          for (i64 ow0 = 0; ow0 < s.OW;) {
            const i64 r = even_group(s.OW - ow0, rmax);
            row_tiles[r - 1](s, pad, wq + ob * K * KW8, bb, oh, ow0, skip, xs,
                             ys + ob * KW8 * s.OH * s.OW * L);
            ow0 += r;
          }
      }
      from_sample_lanes(ys, YS, nb, L, y + n0 * YS, YS);
      if (after_sample)
        for (i64 n = n0; n < n0 + nb; ++n) (*after_sample)(n);
    }
  });
}

}  // namespace

bool forward_by_samples(const Conv2dShape& s) { return forward_applies(s) && fwd_by_samples(s); }

void forward(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y,
             const std::function<void(i64)>* after_sample) {
  if (fwd_by_samples(s)) return forward_sample_lanes(s, x, w, bias, y, after_sample);
  forward_ordered(ForwardOrder::chw, s, x, w, bias, y, after_sample);
}

// The other orders run the same tiles on a shape that makes the tile's loops walk them:
//   hwc: C' = 1, KW' = KW*C, and tap kw' = kw*C + c at kwoff'[kw'] = c*plane + kwoff[kw], so
//     the tile's (kh, kw') loop is the (kh, kw, c) chain; the weights packed in that order.
//   per_tap: the per-tap tiles (fwd_tap_tile: per tap a chain over c, added in registers),
//     6 channels x 2 vectors, weights packed (tap, c).
void forward_ordered(ForwardOrder order, const Conv2dShape& s, const float* x, const float* w,
                     const float* bias, float* y, const std::function<void(i64)>* after_sample) {
  // chan: lanes over output channels (fwd_chan_tile; forward_by_channels).
  const bool chan = order == ForwardOrder::chw && forward_by_channels(s);
  const bool pairs = !chan && use_pairs(s.OW, s.OH);
  const TileSet& ts = pairs || chan ? tiles_avx512() : tiles_for(s.OW);
  // L: the lanes one row of a vector takes (a half vector when paired; chan: one position).
  const bool taps = order == ForwardOrder::per_tap;
  const i64 L = chan ? 1 : pairs ? 8 : ts.lanes;
  const i64 R = taps ? kMR : ts.fwd_rows, NV = taps ? 2 : ts.fwd_vectors;
  const i64 T = s.KH * s.KW, K = s.C * T;
  const i64 blocks = (s.O + R - 1) / R;
  const i64 OHW = s.OH * s.OW, S = s.stride_w;
  // chan at horizontal stride 1 or 2 reads the input padded as it is, its broadcasts SW
  // floats apart, not split by column phase (the split had been a quarter of a stride-2
  // forward's time); and where no window reads padding (the 1x1 projection), x itself.
  const bool plain = chan && S <= 2;
  const i64 SW = plain ? S : 1;
  const i64 rows = (s.OH - 1) * s.stride_h + s.KH;
  const bool direct =
      plain && s.pad_top == 0 && s.pad_left == 0 && rows <= s.H && (s.OW - 1) * S + s.KW <= s.W;
  const i64 colsP = round_up(s.OW, L) + (s.KW - 1) / S, colsX = (s.OW - 1) * S + s.KW;
  const Pad pad = direct  ? Pad{s.H, s.W, s.H * s.W}
                  : plain ? Pad{rows, colsX, rows * colsX}
                          : Pad{rows, S * colsP, rows * S * colsP};
  std::vector<i64> kwoff(static_cast<std::size_t>(s.KW));
  for (i64 kw = 0; kw < s.KW; ++kw)
    kwoff[static_cast<std::size_t>(kw)] = plain ? kw : kw % S * colsP + kw / S;
  // The tile's shape and column offsets, and k's place in the weights: wp[blk][k'][r] =
  // w[blk*R + r][k(k')], zero past O (per_tap: k' = tap*C + c, each tap's C rows in turn).
  Conv2dShape st = s;
  std::vector<i64> tile_kwoff = kwoff;
  std::vector<i64> k_of(static_cast<std::size_t>(K));
  for (i64 k = 0; k < K; ++k) k_of[static_cast<std::size_t>(k)] = k;
  if (order != ForwardOrder::chw) {
    for (i64 t = 0; t < T; ++t)
      for (i64 c = 0; c < s.C; ++c) k_of[static_cast<std::size_t>(t * s.C + c)] = c * T + t;
  }
  if (order == ForwardOrder::hwc) {
    st.C = 1, st.KW = s.KW * s.C;
    tile_kwoff.resize(static_cast<std::size_t>(st.KW));
    for (i64 kw = 0; kw < s.KW; ++kw)
      for (i64 c = 0; c < s.C; ++c)
        tile_kwoff[static_cast<std::size_t>(kw * s.C + c)] = c * pad.plane + kwoff[kw];
  }
  // chan: wp[panel][k][l] = w[panel*CW + l][k], bq[o] = bias[o], both zero past O.
  // One vector of channels where there are 16 (fwd_chan1), else kFwdChanVectors.
  const bool chan1 = chan && s.O <= 16;
  const i64 CW = (chan1 ? 1 : kFwdChanVectors) * 16, panels = (s.O + CW - 1) / CW;
  const i64 Rw = chan ? CW : R, nblk = chan ? panels : blocks;
  AlignedFloats wp_buf;
  float* wp = wp_buf.get(nblk * K * Rw);
  std::fill_n(wp, nblk * K * Rw, 0.0f);
  for (i64 o = 0; o < s.O; ++o)
    for (i64 k = 0; k < K; ++k)
      wp[((o / Rw) * K + k) * Rw + o % Rw] = w[o * K + k_of[static_cast<std::size_t>(k)]];
  std::vector<float> bq(static_cast<std::size_t>(chan && bias ? panels * CW : 0), 0.0f);
  if (chan && bias) std::copy(bias, bias + s.O, bq.begin());
  // chan: each output row in segments of at most kFwdChanRows positions, as even as they go.
  const i64 chan_rows_max = chan1 ? kFwdChan1Rows : kFwdChanRows;
  const i64 row_segs = (s.OW + chan_rows_max - 1) / chan_rows_max;
  const i64 seg_len = (s.OW + row_segs - 1) / row_segs;
  // chan: input channels per block, about 16 KiB of weights.
  const i64 chan_block = std::max<i64>(1, 4096 / (T * CW));
  // The kernel rows that read only the padding's zeros for every output row of a tile are
  // left out when every weight is finite: each of their terms is fmaf(0, w, p) = p exactly
  // (p is never -0.0f: conv_direct_tiles.h), while 0 x inf or 0 x NaN would make the output
  // NaN. At the 8 x 8 stage's 3 x 3 taps that is 2 of 24 kernel rows.
  const bool skip_pad_rows = all_finite(w, s.O * K);
  // [kh0, kh1): the kernel rows any of output rows [first, last] reads inside the input.
  const auto kernel_rows = [&](i64 first, i64 last, i64* kh0, i64* kh1) {
    *kh0 = skip_pad_rows ? std::clamp<i64>(s.pad_top - last * s.stride_h, 0, s.KH) : 0;
    *kh1 = skip_pad_rows ? std::clamp<i64>(s.H + s.pad_top - first * s.stride_h, *kh0, s.KH) : s.KH;
  };
  // Paired: one vector per two output rows (oh, oh + 1), the second half `second` floats on
  // in the padded input (0 for a lone last row).
  std::vector<Seg> segs;
  std::vector<i64> second;
  if (pairs) {
    for (i64 oh = 0; oh < s.OH; oh += 2) {
      segs.push_back({oh, 0, s.OW});
      second.push_back(oh + 1 < s.OH ? s.stride_h * pad.cols : 0);
    }
  } else {
    segs = segments(s.OH, s.OW, L);
  }
  const i64 nseg = static_cast<i64>(segs.size());
  // The vectors in groups of NV, one tile each, and the kernel rows each tile computes: its
  // output rows are its vectors' (consecutive segments, rows ascending; a paired vector's
  // second row one below its first). The same for every sample and channel block.
  struct TileRows {
    i64 first, vectors, kh0, kh1;
  };
  std::vector<TileRows> tile_rows;
  for (i64 i = 0; i < nseg && !chan;) {
    TileRows t{i, even_group(nseg - i, NV), 0, 0};
    const i64 last = i + t.vectors - 1;
    kernel_rows(segs[static_cast<std::size_t>(i)].row,
                segs[static_cast<std::size_t>(last)].row +
                    (pairs && second[static_cast<std::size_t>(last)] ? 1 : 0),
                &t.kh0, &t.kh1);
    tile_rows.push_back(t);
    i += t.vectors;
  }
  // chan: each row segment's taps' positions inside the input (FwdChanTile's cols): per
  // segment, per tap kw, [lo, hi) of its positions whose input column (ow0 + r) * S + kw -
  // pad_left lies in [0, W); every position unless every weight is finite.
  std::vector<i64> chan_cols;
  for (i64 ow0 = 0; chan && ow0 < s.OW; ow0 += seg_len) {
    const i64 len = std::min(seg_len, s.OW - ow0);
    for (i64 kw = 0; kw < s.KW; ++kw) {
      i64 lo = 0, hi = len;
      if (skip_pad_rows) {
        while (lo < hi && (ow0 + lo) * S + kw - s.pad_left < 0) ++lo;
        while (hi > lo && (ow0 + hi - 1) * S + kw - s.pad_left >= s.W) --hi;
      }
      chan_cols.push_back(lo), chan_cols.push_back(hi);
    }
  }
  // chan: each output row's kernel rows (kh0, kh1), the same for every sample and block.
  std::vector<i64> chan_rows(static_cast<std::size_t>(chan ? 2 * s.OH : 0));
  for (i64 oh = 0; chan && oh < s.OH; ++oh)
    kernel_rows(oh, oh, &chan_rows[static_cast<std::size_t>(2 * oh)],
                &chan_rows[static_cast<std::size_t>(2 * oh + 1)]);
  const int kwi = st.KW == 5 ? 0 : st.KW == 3 ? 1 : 2;
  const auto& tiles = pairs ? ts.fwd_pair : ts.fwd;
  const auto& tap_tiles = pairs ? ts.fwd_tap_pair : ts.fwd_tap;
  const RowWindow window(S * colsP, -s.pad_left, s.W);
  parallel_ranges(s.N, [&](i64 n0, i64 n1, int) {
    float* xpad = direct ? nullptr : scratch(s.C * pad.plane);
    thread_local std::vector<float> rowbuf;  // a padded row before its phases are split
    rowbuf.resize(static_cast<std::size_t>(S * colsP));
    float* prow = rowbuf.data();
    for (i64 n = n0; n < n1; ++n) {
      const float* xn = x + n * s.C * s.H * s.W;
      const float* xs = direct ? xn : xpad;  // what the tiles read
      if (S == 1 || plain) {
        if (!direct) fill_input_pad(s, pad, s.C, xn, xpad);
      } else {
        for (i64 c = 0; c < s.C; ++c)
          for (i64 r = 0; r < rows; ++r) {
            if (s.KH < s.stride_h && r % s.stride_h >= s.KH) continue;  // no tap reads it
            const i64 ih = r - s.pad_top;
            float* dst = xpad + c * pad.plane + r * pad.cols;
            if (ih < 0 || ih >= s.H) {
              std::fill(dst, dst + pad.cols, 0.0f);
              continue;
            }
            window(prow, xn + (c * s.H + ih) * s.W);  // prow[q] = padded column q
            split_phases(prow, S, colsP, dst, colsP);
          }
      }
      if (chan) {
        // Per panel: the channels in blocks whose weights stay in L1 (every position takes
        // a block before the next), the sample's outputs in acc (OHW, CW), then y.
        float* acc = scratch<1>(OHW * CW);
        for (i64 panel = 0; panel < panels; ++panel) {
          const i64 o0 = panel * CW, on = std::min(CW, s.O - o0);
          for (i64 c0 = 0; c0 < s.C; c0 += chan_block) {
            const i64 c1 = std::min(s.C, c0 + chan_block);
            const float* wq = wp + (panel * K + c0 * T) * CW;
            const float* bp = bias && c1 == s.C ? bq.data() + o0 : nullptr;
            for (i64 oh = 0; oh < s.OH; ++oh) {
              const i64 kh0 = chan_rows[static_cast<std::size_t>(2 * oh)];
              const i64 kh1 = chan_rows[static_cast<std::size_t>(2 * oh + 1)];
              for (i64 ow0 = 0; ow0 < s.OW; ow0 += seg_len) {
                const i64 len = std::min(seg_len, s.OW - ow0);
                const FwdChanTile tile =
                    chan1 ? ts.fwd_chan1[kwi][SW - 1][len - 1] : ts.fwd_chan[kwi][SW - 1][len - 1];
                const i64* cols = chan_cols.data() + ow0 / seg_len * 2 * s.KW;
                tile(st, pad, tile_kwoff.data(), cols, wq,
                     xs + oh * s.stride_h * pad.cols + ow0 * SW, c0, c1, kh0, kh1, bp,
                     acc + (oh * s.OW + ow0) * CW);
              }
            }
          }
          transpose_out(acc, CW, OHW, on, y + (n * s.O + o0) * OHW, OHW, 1);
        }
        if (after_sample) (*after_sample)(n);
        continue;
      }
      for (i64 blk = 0; blk < blocks; ++blk) {
        const i64 mr = std::min(R, s.O - blk * R);
        const float* bb = bias ? bias + blk * R : nullptr;
        float* yb = y + (n * s.O + blk * R) * OHW;
        const float* wb = wp + blk * K * R;
        for (const TileRows& t : tile_rows) {
          const i64 i = t.first, nv = t.vectors;
          const float* b[kFwdVectorsMax];
          float* out[kFwdVectorsMax];
          i64 lanes[kFwdVectorsMax];
          PairSteps ps{{0, 0, 0}, s.OW};
          for (i64 v = 0; v < nv; ++v) {
            const Seg& g = segs[static_cast<std::size_t>(i + v)];
            b[v] = xpad + g.row * s.stride_h * pad.cols + g.col;
            out[v] = yb + g.row * s.OW + g.col;
            lanes[v] = g.lanes;
            if (pairs) ps.in_step[v] = second[static_cast<std::size_t>(i + v)];
          }
          const FwdTile tile = taps ? tap_tiles[nv - 1][mr - 1] : tiles[kwi][nv - 1][mr - 1];
          tile(st, pad, tile_kwoff.data(), wb, b, t.kh0, t.kh1, bb, out, lanes, &ps);
        }
      }
      if (after_sample) (*after_sample)(n);
    }
  });
}

bool backward_data_applies(const Conv2dShape& s) { return enabled() && s.O <= kChunkProducts; }

// Pixels are taken by column phase f = j mod stride_w: pixel (i, j'*S + f) at tap (kh, kw)
// reads dy[oh][ow] with oh = (i + pad_top - kh) / stride_h and ow = j' + (f + pad_left - kw) / S
// (when both divide exactly), consecutive in j'. The padded dy of one sample covers every
// (oh, ow) any pixel's taps name: dypad[o][oh - oh0][ow - ow0], 0 outside dy. With S > 1 the
// tiles write phase rows (c, i, f, j') and the sample's dx is gathered from them.
void backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  backward_data_ordered(DataOrder{}, s, dy, w, dx);
}

bool backward_data_by_samples(const Conv2dShape& s) {
  return backward_data_applies(s) && data_by_samples(s, widest_tiles().lanes);
}

// The canonical order runs data_tile (pairs where they fit); another order runs
// data_ordered_tile, the same tile with the taps in the plan's order and the reduction over o
// in slices combined in registers (no pairs).
void backward_data_ordered(const DataOrder& d, const Conv2dShape& s, const float* dy,
                           const float* w, float* dx) {
  const bool canonical = d.slices <= 1 && d.taps == nullptr;
  if (canonical) {
    const TileSet& ts = widest_tiles();
    if (data_by_samples(s, ts.lanes)) return backward_data_sample_lanes(ts, s, dy, w, dx);
  }
  const i64 S = s.stride_w, J = (s.W + S - 1) / S;  // pixels of phase 0 per row (the most)
  // chan: lanes over input channels (data_chan_tile) on rows of at most 16 pixels per
  // column phase with two vectors' worth of channels (ResNet's 16 x 16 and 8 x 8 stages),
  // where the paired tiles run their inserts on an FMA port and a 16-channel chain per tap is
  // short for the position tiles (measured: bench/RESULTS.md, 2026-12-05). Phase rows in
  // segments of at most kDataChanRows pixels, as even as they go.
  // chan1: one vector of channels where there are exactly 16 (data_chan1), whole phase rows.
  const bool chan1 = canonical && avx512_enabled() && J <= 16 && s.C == 16;
  const bool chan = chan1 || (canonical && avx512_enabled() && J <= 16 && s.C >= 32);
  const i64 chan_rows_max = chan1 ? kDataChan1Rows : kDataChanRows;
  const i64 row_segs = (J + chan_rows_max - 1) / chan_rows_max;
  const i64 chan_seg = (J + row_segs - 1) / row_segs;
  const bool pairs = !chan && canonical && use_pairs(J, s.H);
  const TileSet& ts = pairs || chan ? tiles_avx512() : tiles_for(J);
  // mem: 8-channel tiles with the pixels' sums in memory (data_mem_tile) where the AVX-512
  // position tiles run on 8+ input channels: 16 channels as 8 + 8 where 6-channel blocks made
  // 6 + 6 + 4, up to 3 vectors. Channel blocks as even as they go.
  const bool mem = canonical && !chan && !pairs && ts.lanes == 16 && s.C >= 8;
  const i64 mem_blocks = (s.C + kDataMemRows - 1) / kDataMemRows;
  const i64 mem_rows = (s.C + mem_blocks - 1) / mem_blocks;
  const i64 L = pairs ? 8 : ts.lanes;  // the lanes of one row of a vector
  const i64 taps = s.KH * s.KW, blocks = (s.C + kMR - 1) / kMR, HW = s.H * s.W;
  // The position tiles' weights in 6-channel blocks (the other paths pack their own below).
  const bool six = !chan && !mem;
  std::vector<float> wt(static_cast<std::size_t>(six ? blocks * taps * s.O * kMR : 0));
  if (six) pack_data_weights(s, w, kMR, kMR, wt.data());
  const i64 oh0 = floor_div(s.pad_top - (s.KH - 1), s.stride_h);
  const i64 oh1 = floor_div(s.H - 1 + s.pad_top, s.stride_h);
  const i64 ow0 = floor_div(s.pad_left - (s.KW - 1), S);
  const i64 ow1 = round_up(J, L) - 1 + floor_div(S - 1 + s.pad_left, S);
  Pad pad{oh1 - oh0 + 1, ow1 - ow0 + 1, 0, oh0, ow0, 0};
  pad.plane = pad.rows * pad.cols;
  const i64 JL = round_up(J, L);  // a phase row of the S > 1 output buffer
  pad.out_plane = S == 1 ? HW : s.H * S * JL;
  // Vectors (row i, first j', lanes) with their phase f, grouped by (f, i mod stride_h): the
  // two vectors of a tile then take the same taps (strided rows and phases take different
  // ones), so neither computes a tap only for the other.
  // Paired: one vector per two such rows (i, i + stride_h), the second half reading dy one
  // padded row below (second = pad.cols; 0 for a lone last row).
  std::vector<Seg> segs;
  std::vector<i64> seg_phase, second;
  for (i64 f = 0; f < S; ++f)
    for (i64 ri = 0; ri < s.stride_h; ++ri)
      for (i64 i = ri; i < s.H; i += pairs ? 2 * s.stride_h : s.stride_h) {
        const i64 Jf = (s.W - f + S - 1) / S;
        for (i64 j = 0; j < Jf; j += L) {
          segs.push_back({i, j, std::min(L, Jf - j)});
          seg_phase.push_back(f);
          second.push_back(pairs && i + s.stride_h < s.H ? pad.cols : 0);
        }
      }
  const auto& tiles = pairs ? ts.data_pair : ts.data;
  const PairSteps ps0{{0, 0, 0}, S == 1 ? s.stride_h * s.W : s.stride_h * S * JL};
  const i64 nseg = static_cast<i64>(segs.size());
  const RowWindow window(pad.cols, ow0, s.OW);  // dypad column q = dy column q + ow0
  const bool neighbours_cover = s.O * s.OH * s.OW >= std::max<i64>(-ow0, ow1 - (s.OW - 1));
  // chan: the weights in panels of CW channels; mem: in blocks of mem_rows, kDataMemRows apart.
  const i64 CW = (chan1 ? 1 : kDataChanVectors) * 16, cpanels = chan ? (s.C + CW - 1) / CW : 0;
  AlignedFloats wq_buf, wm_buf;
  float* wq = wq_buf.get(chan ? cpanels * taps * s.O * CW : 1);
  if (chan) pack_data_weights(s, w, CW, CW, wq);
  float* wm = wm_buf.get(mem ? mem_blocks * taps * s.O * kDataMemRows : 1);
  if (mem) pack_data_weights(s, w, mem_rows, kDataMemRows, wm);
  const std::int64_t whole[2] = {0, s.O};
  const std::int32_t first = 0;
  const DataSlices slices = d.slices > 1
                                ? DataSlices{d.cuts, d.slices, d.tree, d.slice_order, d.taps}
                                : DataSlices{whole, 1, false, &first, d.taps};
  parallel_ranges(s.N, [&](i64 n0, i64 n1, int) {
    thread_local std::vector<float> phased;  // (C, H, S, JL) when S > 1
    if (S > 1 && static_cast<i64>(phased.size()) < s.C * pad.out_plane)
      phased.resize(static_cast<std::size_t>(s.C * pad.out_plane));
    float* dybuf = scratch(s.O * pad.plane);
    for (i64 n = n0; n < n1; ++n) {
      const float* dyn = dy + n * s.O * s.OH * s.OW;
      // The channel-lane and sums-in-memory tiles keep only the pixels whose (oh, ow) lies in
      // dy (their masks, not the padding's zeros, make col2im's adds), so inside the batch
      // they read dy in place: a lane past a row's end reads a neighbouring row or plane of
      // the same or the next sample and is dropped. The copy had been 12-15% of their time
      // (its reads waited on memory, where the tiles' reads overlap their FMAs). The first and
      // last samples are copied, and a sample's reads reach at most -ow0 floats before it
      // and ow1 - (OW - 1) after it (a padded row's columns), so that no read leaves dy.
      const bool in_place = (chan || mem) && n > 0 && n + 1 < s.N && neighbours_cover;
      Pad pad_n = pad;
      const float* dypad = dybuf;
      if (in_place) {
        pad_n.rows = s.OH, pad_n.cols = s.OW, pad_n.plane = s.OH * s.OW;
        pad_n.row0 = 0, pad_n.col0 = 0;
        dypad = dyn;
      } else {
        for (i64 o = 0; o < s.O; ++o)
          for (i64 r = 0; r < pad.rows; ++r) {  // every float written once
            const i64 oh = r + oh0;
            float* row = dybuf + o * pad.plane + r * pad.cols;
            if (oh >= 0 && oh < s.OH)
              window(row, dyn + (o * s.OH + oh) * s.OW);
            else
              std::fill(row, row + pad.cols, 0.0f);
          }
      }
      float* dxn = dx + n * s.C * HW;
      if (chan) {
        // A row's results (S, J, CW) go into its channels' rows of dx with the column
        // phases interleaved on the way (chan_out: transposed in 16 x 16 blocks). Before, 8 x 8
        // transposes into phase rows and then each channel's phases merged had been a sixth
        // of the stride-2 data gradient's time.
        float* tmp = scratch<1>(S * J * CW);
        for (i64 panel = 0; panel < cpanels; ++panel) {
          const i64 c0 = panel * CW, cn = std::min(CW, s.C - c0);
          for (i64 i = 0; i < s.H; ++i) {
            for (i64 f = 0; f < S; ++f) {
              const i64 Jf = (s.W - f + S - 1) / S;  // pixels of phase f in a row
              for (i64 j0 = 0; j0 < Jf; j0 += chan_seg) {
                const i64 len = std::min(chan_seg, Jf - j0);
                const DataChanTile tile = chan1 ? ts.data_chan1[len - 1] : ts.data_chan[len - 1];
                tile(s, pad_n, wq + panel * taps * s.O * CW, i, j0, f, dypad,
                     tmp + (f * J + j0) * CW);
              }
            }
            for (i64 g = 0; g < cn; g += 16)
              ts.chan_out(tmp + g, S, J * CW, CW, std::min<i64>(16, cn - g), s.W,
                          dxn + (c0 + g) * HW + i * s.W, HW);
          }
        }
        continue;
      }
      float* target = S == 1 ? dxn : phased.data();
      for (i64 blk = 0; blk < mem_blocks && mem; ++blk) {
        const i64 c0 = blk * mem_rows, mr = std::min(mem_rows, s.C - c0);
        const float* wb = wm + blk * taps * s.O * kDataMemRows;
        float* db = target + c0 * pad.out_plane;
        for (i64 i = 0; i < nseg;) {
          const i64 nv = even_group(nseg - i, 3);  // vectors in groups of up to 3
          float* out[3];
          i64 row[3], phase[3], col[3], lanes[3];
          for (i64 v = 0; v < nv; ++v) {
            const Seg& g = segs[static_cast<std::size_t>(i + v)];
            const i64 f = seg_phase[static_cast<std::size_t>(i + v)];
            out[v] = S == 1 ? db + g.row * s.W + g.col : db + (g.row * S + f) * JL + g.col;
            row[v] = g.row, phase[v] = f, col[v] = g.col, lanes[v] = g.lanes;
          }
          ts.data_mem[nv - 1][mr - 1](s, pad_n, wb, row, phase, col, lanes, dypad, out, nullptr);
          i += nv;
        }
      }
      for (i64 blk = 0; blk < blocks && !mem; ++blk) {
        const i64 mr = std::min<i64>(kMR, s.C - blk * kMR);
        const float* wb = wt.data() + blk * taps * s.O * kMR;
        float* db = target + blk * kMR * pad.out_plane;
        for (i64 i = 0; i < nseg; i += 2) {
          const i64 nv = i + 1 < nseg ? 2 : 1;
          float* out[2];
          i64 row[2], phase[2], col[2], lanes[2];
          PairSteps ps = ps0;
          for (i64 v = 0; v < nv; ++v) {
            const Seg& g = segs[static_cast<std::size_t>(i + v)];
            const i64 f = seg_phase[static_cast<std::size_t>(i + v)];
            out[v] = S == 1 ? db + g.row * s.W + g.col : db + (g.row * S + f) * JL + g.col;
            row[v] = g.row, phase[v] = f, col[v] = g.col, lanes[v] = g.lanes;
            ps.in_step[v] = second[static_cast<std::size_t>(i + v)];
          }
          if (canonical) {
            tiles[nv - 1][mr - 1](s, pad, wb, row, phase, col, lanes, dypad, out, &ps);
            continue;
          }
          ts.data_ordered[nv - 1][mr - 1](s, pad, wb, row, phase, col, lanes, dypad, out, slices);
        }
      }
      if (S > 1)  // dx[c][i][j'*S + f] = phased[c][i][f][j']
        for (i64 c = 0; c < s.C; ++c)
          for (i64 i = 0; i < s.H; ++i) {
            const float* src = phased.data() + c * pad.out_plane + i * S * JL;
            float* drow = dxn + c * HW + i * s.W;
            merge_phases(src, JL, S, s.W, drow);
          }
    }
  });
}

bool backward_weight_applies(const Conv2dShape& s) {
  if (!enabled()) return false;
  const i64 K = s.C * s.KH * s.KW;
  const i64 chunks = (s.N * s.OH * s.OW + kChunkProducts - 1) / kChunkProducts;
  const i64 sample = s.C * ((s.OH - 1) * s.stride_h + s.KH) * ((s.OW - 1) * s.stride_w + s.KW);
  // The chunk partials must fit in memory of the scratch budget's order; a task pads a
  // chunk's samples (the bound on the batch keeps that bounded too).
  return chunks * K * round_up(s.O, 64) <= (i64{8} << 20) && s.N * sample <= (i64{64} << 20);
}

namespace {

// The weight gradient's partials over ranges of the flat (n, oh, ow) position space, as
// tasks. The padded input: xpad[n][c][r][q] = x[n][c][r - pad_top][q - pad_left] inside the
// input, 0 elsewhere, covering every window. Task (range, channel panel, group of tap blocks)
// writes part[range] (K, Opad): one fmaf chain from +0.0f per element over the range's
// positions in order.
struct WeightRanges {
  i64 K = 0, width = 0, panels = 0, Opad = 0, groups = 0, group_taps = 0, n_tasks = 0;
  float* part = nullptr;  // (ranges, K, Opad)
  std::function<void(i64)> run_task;
};

WeightRanges weight_ranges(const Conv2dShape& s, const float* x, const float* dy, const i64* bounds,
                           i64 ranges) {
  const TileSet& ts = s.O > 8 ? tiles_for(s.O) : tiles_avx2();
  WeightRanges wr;
  const i64 K = s.C * s.KH * s.KW, OHW = s.OH * s.OW;
  WeightScratch& ws = weight_scratch();
  // 1x1 on at most 16 input channels (ResNet's projections, 16 -> 32): lanes over the input
  // channels (conv_pointwise_avx512.h), which transpose x where these tiles would transpose dy
  // (half as many floats there), one task per range. The same chains, so the same partials.
  if (conv_pointwise::weight_by_input_lanes(s) &&
      std::all_of(bounds, bounds + ranges + 1, [](i64 b) { return b % 16 == 0; })) {
    const i64 Opad = round_up(s.O, 8);  // the fold reads 8 channels at a time
    if (static_cast<i64>(ws.part.size()) < ranges * K * Opad)
      ws.part.resize(static_cast<std::size_t>(ranges * K * Opad));
    float* part = ws.part.data();
    wr.K = K, wr.width = Opad, wr.panels = 1, wr.Opad = Opad, wr.groups = 1, wr.group_taps = K;
    wr.n_tasks = ranges, wr.part = part;
    wr.run_task = [=, &s](i64 r) {
      conv_pointwise::weight_chunk_avx512(s, x, dy, bounds[r], bounds[r + 1], part + r * K * Opad,
                                          Opad);
    };
    return wr;
  }
  // The row tiles where KW is 1, 3 or 5 (up to 4 vectors of channels with AVX-512), else the
  // tap tiles (up to 2 vectors).
  const int kwi = s.KW == 1 ? 0 : s.KW == 3 ? 1 : s.KW == 5 ? 2 : -1;
  const i64 nv = kwi >= 0 ? std::min<i64>(ts.weight_vectors, (s.O + ts.lanes - 1) / ts.lanes)
                          : (s.O > ts.lanes ? 2 : 1);
  // At stride 1 with 3 or 5 taps per row and one or two vectors of channels, the sliding
  // row tiles (each input column broadcast once for its row's taps), where one fits.
  const i64 slide_fit = s.stride_w == 1 && (s.KW == 3 || s.KW == 5) && nv <= 2
                            ? std::min<i64>(kWeightRowsMax, (ts.regs - 1) / (s.KW * nv) - 1)
                            : 0;
  const bool slide = slide_fit >= 1;
  const i64 width = ts.lanes * nv;
  const i64 panels = (s.O + width - 1) / width, Opad = panels * width;
  const i64 rows = (s.OH - 1) * s.stride_h + s.KH, cols = (s.OW - 1) * s.stride_w + s.KW;
  // The tiles read the input itself where every window lies inside it (no padding: LeNet's
  // valid convolutions, the unpadded projections), rows W apart; otherwise each task pads the
  // samples and channels it reads into its thread's scratch (a chunk's worth, which stays in
  // L2, where one padded copy of the batch went out to memory and back).
  const bool inside = s.pad_top == 0 && s.pad_left == 0 && rows <= s.H && cols <= s.W;
  // The sliding tiles leave out the padding's columns (weight_slide_skip, 5 taps) where those hold
  // at least 1/20 of a row's products: each step then checks its dy for infinities and NaNs
  // (one FMA per 8 floats, against K of the tiles' per position), which would cost more than
  // it saves on ResNet's 3 x 3 layers (2% of the stem's products) and LeNet-5's first (4%).
  // LeNet-5's second, 'same' 5 x 5 on rows of 14: 8.6%.
  // A row's products on the padding's p columns at one end: p (p + 1) / 2.
  const i64 pad_right = std::max<i64>(0, cols - s.pad_left - s.W);
  const i64 pad_products = (s.pad_left * (s.pad_left + 1) + pad_right * (pad_right + 1)) / 2;
  const bool skip_cols = slide && s.KW == 5 && !inside && s.pad_left < s.KW && pad_right < s.KW &&
                         20 * pad_products >= s.KW * s.OW;
  const Pad pad = inside ? Pad{s.H, s.W, s.H * s.W} : Pad{rows, cols, rows * cols};
  const i64 sample = s.C * pad.plane, taps = s.KH * s.KW;
  std::vector<i64> off(static_cast<std::size_t>(K));  // tap k's offset in a (padded) sample
  for (i64 c = 0; c < s.C; ++c)
    for (i64 kh = 0; kh < s.KH; ++kh)
      for (i64 kw = 0; kw < s.KW; ++kw)
        off[static_cast<std::size_t>((c * s.KH + kh) * s.KW + kw)] =
            c * pad.plane + kh * pad.cols + kw;
  if (static_cast<i64>(ws.part.size()) < ranges * K * Opad)
    ws.part.resize(static_cast<std::size_t>(ranges * K * Opad));
  float* part = ws.part.data();
  // About four tasks per thread; fewer groups repack dy less often. Only speed depends on it.
  // Row tiles: the (c, kh) rows in blocks of at most the rows that fit, as even as they go
  // (ResNet's stem, 9 rows: 5 + 4, not 8 + 1, whose 3 chains would wait on the FMA latency).
  i64 tile_taps = nv == 2 ? kMR : 2 * kMR;  // tap tiles with one vector: the wide ones
  if (kwi >= 0) {
    const i64 fit = slide ? slide_fit : std::min<i64>(kWeightRowsMax, ts.weight_acc / (s.KW * nv));
    const i64 all_rows = s.C * s.KH, blocks = (all_rows + fit - 1) / fit;
    tile_taps = (all_rows + blocks - 1) / blocks * s.KW;
  }
  const i64 tap_blocks = (K + tile_taps - 1) / tile_taps;
  const i64 want =
      std::min(tap_blocks, (4 * num_threads() + ranges * panels - 1) / (ranges * panels));
  const i64 per_group = (tap_blocks + want - 1) / want;
  const i64 groups = (tap_blocks + per_group - 1) / per_group;
  const int swi = s.stride_w == 1 ? 0 : 1;
  wr.K = K, wr.width = width, wr.panels = panels, wr.Opad = Opad, wr.groups = groups;
  wr.group_taps = per_group * tile_taps, wr.n_tasks = ranges * panels * groups, wr.part = part;
  wr.run_task = [=, off = std::move(off), &s, &ts](i64 task) {
    const i64 range = task / (panels * groups), panel = task / groups % panels, g = task % groups;
    const i64 p0 = bounds[range], p1 = bounds[range + 1];
    const i64 o0 = panel * width, on = std::min(width, s.O - o0);
    const i64 b0 = g * per_group, b1 = std::min(tap_blocks, (g + 1) * per_group);
    const i64 k0 = b0 * tile_taps, k1 = std::min(K, b1 * tile_taps);
    for (i64 k = k0; k < k1; ++k) std::fill_n(part + (range * K + k) * Opad + o0, width, 0.0f);
    // The chains start at +0.0f in part and run over the range in blocks of positions whose
    // gradients stay in L1 (every tap block of the group takes a block before the next).
    const i64 step = std::max<i64>(64, 4096 / width);  // 16 KiB of gradients
    float* dyt = scratch(step * width);                // dyt[q - q0][l] = dy[n][o0 + l][j]
    // What the tiles read: the input, or samples [n0, n1) x channels [c0, c1) padded, with
    // positions and tap offsets shifted to match.
    const float* xs = x;
    i64 smp = sample, shift = 0, cut = 0;
    if (!inside) {
      const i64 n0 = p0 / OHW, n1 = (p1 - 1) / OHW + 1, c0 = k0 / taps, c1 = (k1 - 1) / taps + 1;
      smp = (c1 - c0) * pad.plane, shift = n0 * OHW, cut = c0 * pad.plane;
      float* buf = scratch<1>((n1 - n0) * smp);
      for (i64 n = n0; n < n1; ++n)
        fill_input_pad(s, pad, c1 - c0, x + (n * s.C + c0) * s.H * s.W, buf + (n - n0) * smp);
      xs = buf;
    }
    // The group's tap offsets in what the tiles read, once per task.
    thread_local std::vector<i64> goff;
    goff.resize(static_cast<std::size_t>(k1 - k0));
    for (i64 k = k0; k < k1; ++k) goff[static_cast<std::size_t>(k - k0)] = off[k] - cut;
    for (i64 q0 = p0; q0 < p1; q0 += step) {
      const i64 q1 = std::min(p1, q0 + step);
      for (i64 q = q0; q < q1;) {
        const i64 n = q / OHW, j = q % OHW, len = std::min(OHW - j, q1 - q);
        transpose_rows(dy + (n * s.O + o0) * OHW + j, OHW, on, len, dyt + (q - q0) * width, width);
        q += len;
      }
      // The next step's dy lines into L2 while this step's tiles run (dy's rows are a plane
      // apart: one stream per channel). Batch 128, means of 24 runs: 2-5% off the 16 x 16
      // layers' and s2_16to32's weight gradients, none off the stem's (bench/RESULTS.md).
      for (i64 q = q1, end = std::min(p1, q1 + step); q < end;) {
        const i64 n = q / OHW, j = q % OHW, len = std::min(OHW - j, end - q);
        for (i64 l = 0; l < on; ++l) {
          const float* row = dy + (n * s.O + o0 + l) * OHW + j;
          for (i64 i = 0; i < len; i += 16)
            _mm_prefetch(reinterpret_cast<const char*>(row + i), _MM_HINT_T1);
        }
        q += len;
      }
      // The padding's columns left out where every dy value of the step is finite.
      const bool skip = skip_cols && all_finite(dyt, (q1 - q0) * width);
      for (i64 blk = b0; blk < b1; ++blk) {
        const i64 mr = std::min(tile_taps, K - blk * tile_taps);
        const WeightTile tile = skip       ? ts.weight_slide_skip[nv - 1][mr / s.KW - 1]
                                : slide    ? ts.weight_slide[kwi - 1][nv - 1][mr / s.KW - 1]
                                : kwi >= 0 ? ts.weight_rows[kwi][nv - 1][mr / s.KW - 1]
                                : nv == 2  ? ts.weight[swi][mr - 1]
                                           : ts.weight_wide[swi][mr - 1];
        tile(s, pad, smp, xs, goff.data() + (blk * tile_taps - k0), q0 - shift, q1 - shift, dyt,
             part + (range * K + blk * tile_taps) * Opad + o0, Opad);
      }
    }
  };
  return wr;
}

}  // namespace

// Tasks (chunk, channel panel, group of tap blocks) write chunk partials (weight_ranges);
// each element's partials are then folded by the canonical tree.
void backward_weight(Level level, const Conv2dShape& s, const float* x, const float* dy,
                     float* dw) {
  const i64 total = s.N * s.OH * s.OW;
  const i64 chunks = (total + kChunkProducts - 1) / kChunkProducts;
  std::vector<i64> bounds(static_cast<std::size_t>(chunks + 1));
  for (i64 c = 0; c <= chunks; ++c) bounds[c] = std::min(total, c * kChunkProducts);
  const WeightRanges wr = weight_ranges(s, x, dy, bounds.data(), chunks);
  const i64 K = wr.K, Opad = wr.Opad;
  const float* part = wr.part;
  if (level == Level::fast && chunks > 1 && num_threads() > 1) {
    fast_fold(s, K, wr.panels, wr.groups, wr.width, wr.group_taps, Opad, wr.n_tasks, wr.run_task,
              part, dw);
    return;
  }
  parallel_for(wr.n_tasks, wr.run_task);
  // dw[o][k] = the chunk partials of (k, o) folded by the canonical tree, in chunk order: 8
  // channels o at a time (consecutive in part), each lane ChunkTree's adds in its order.
  const i64 oblocks = Opad / 8;
  parallel_ranges(K * oblocks, [&](i64 b, i64 e, int) {
    __m256 stack[64];
    int height[64];
    for (i64 i = b; i < e; ++i) {
      const i64 k = i / oblocks, o0 = i % oblocks * 8;
      if (o0 >= s.O) continue;
      int depth = 0;
      for (i64 c = 0; c < chunks; ++c) {  // ChunkTree::push
        __m256 v = _mm256_loadu_ps(part + (c * K + k) * Opad + o0);
        int h = 0;
        while (depth > 0 && height[depth - 1] == h) v = _mm256_add_ps(stack[--depth], v), ++h;
        stack[depth] = v, height[depth++] = h;
      }
      __m256 r = stack[depth - 1];  // ChunkTree::root
      for (int d = depth - 2; d >= 0; --d) r = _mm256_add_ps(stack[d], r);
      alignas(32) float lane[8];
      _mm256_store_ps(lane, r);
      for (i64 o = o0; o < std::min(s.O, o0 + 8); ++o) dw[o * K + k] = lane[o - o0];
    }
  });
}

void backward_weight_ranges(const Conv2dShape& s, const float* x, const float* dy,
                            const std::int64_t* bounds, std::int64_t ranges, float* const* parts) {
  const WeightRanges wr = weight_ranges(s, x, dy, bounds, ranges);
  parallel_for(wr.n_tasks, wr.run_task);
  const i64 K = wr.K, Opad = wr.Opad;
  parallel_ranges(ranges * s.O, [&](i64 b, i64 e, int) {
    for (i64 i = b; i < e; ++i) {
      const i64 r = i / s.O, o = i % s.O;
      const float* src = wr.part + r * K * Opad + o;
      float* dst = parts[r] + o * K;
      for (i64 k = 0; k < K; ++k) dst[k] = src[k * Opad];
    }
  });
}

}  // namespace detdl::cpu::conv_direct
