// Direct convolutions (conv_direct.h): the drivers. They pad, pack the weights, cut the
// work into tiles and tasks, and call the register tiles of one ISA (conv_direct_tiles.h).
#include "kernels/cpu/conv_direct.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "kernels/common/reduction.h"
#include "kernels/cpu/avx2.h"
#include "kernels/cpu/conv_direct_tiles.h"
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
  static const bool has512 = __builtin_cpu_supports("avx512f");
  if (has512 && g_avx512_allowed.load() && round_up(extent, 16) == round_up(extent, 8))
    return tiles_avx512();
  return tiles_avx2();
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

// Per-thread grow-only scratch, kept between calls.
float* scratch(i64 n) {
  thread_local std::vector<float> buf;
  if (static_cast<i64>(buf.size()) < n) buf.resize(static_cast<std::size_t>(n));
  return buf.data();
}
// The weight gradient's shared scratch (the padded batch, the chunk partials), owned by the
// calling thread.
struct WeightScratch {
  std::vector<float> xall, part;
};
WeightScratch& weight_scratch() {
  thread_local WeightScratch w;
  return w;
}

// Copies n floats: the rows copied here are short (tens of floats) and many, where a
// memcpy call costs more than the copy.
inline void copy_row(float* dst, const float* src, i64 n) {
  i64 i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_loadu_ps(src + i));
  for (; i < n; ++i) dst[i] = src[i];
}

// Copies one (C, H, W) input into (C, p.rows, p.cols) planes at offset (pad_top, pad_left),
// zeros elsewhere.
void fill_input_pad(const Conv2dShape& s, const Pad& p, i64 channels, const float* src,
                    float* dst) {
  std::fill(dst, dst + channels * p.plane, 0.0f);
  const i64 q0 = s.pad_left, q1 = std::min(p.cols, s.pad_left + s.W);
  if (q1 <= q0) return;
  for (i64 c = 0; c < channels; ++c)
    for (i64 r = 0; r < p.rows; ++r) {
      const i64 ih = r - s.pad_top;
      if (ih >= 0 && ih < s.H)
        copy_row(dst + c * p.plane + r * p.cols + q0, src + (c * s.H + ih) * s.W, q1 - q0);
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

// A strided 1x1 convolution (a ResNet projection) reads every stride-th input: its padded
// copy costs more than im2col's gather, so it stays on the im2col + sgemm path.
bool strided_1x1(const Conv2dShape& s) {
  return s.KH * s.KW == 1 && (s.stride_h > 1 || s.stride_w > 1);
}

bool forward_applies(const Conv2dShape& s) {
  return enabled() && s.C * s.KH * s.KW <= kChunkProducts && !strided_1x1(s);
}

// The padded input of one sample, its columns split by phase so that every tap reads
// consecutive output positions from consecutive floats at any horizontal stride S: row r of
// plane c holds, for each phase f in [0, S), the padded columns q = q'*S + f at q' in
// [0, colsP), i.e. xpad[c][r][f][q'] = x[c][r - pad_top][q'*S + f - pad_left] inside the
// input, 0 elsewhere. Output column ow at tap kw reads q = ow*S + kw: phase kw % S, q' = ow +
// kw / S. Rows cover every output row's window; columns every lane of a row's last vector
// (lanes past OW compute on zeros or real inputs and are never stored).
void forward(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  const TileSet& ts = tiles_for(s.OW);
  const i64 L = ts.lanes, R = ts.fwd_rows, K = s.C * s.KH * s.KW, blocks = (s.O + R - 1) / R;
  const i64 OHW = s.OH * s.OW, S = s.stride_w;
  // wp[blk][k][r] = w[blk*R + r][k], zero past O: each tile's weights as it reads them.
  std::vector<float> wp(static_cast<std::size_t>(blocks * K * R), 0.0f);
  for (i64 o = 0; o < s.O; ++o)
    for (i64 k = 0; k < K; ++k) wp[((o / R) * K + k) * R + o % R] = w[o * K + k];
  const i64 rows = (s.OH - 1) * s.stride_h + s.KH, colsP = round_up(s.OW, L) + (s.KW - 1) / S;
  const Pad pad{rows, S * colsP, rows * S * colsP};
  std::vector<i64> kwoff(static_cast<std::size_t>(s.KW));
  for (i64 kw = 0; kw < s.KW; ++kw) kwoff[static_cast<std::size_t>(kw)] = kw % S * colsP + kw / S;
  const std::vector<Seg> segs = segments(s.OH, s.OW, L);
  const i64 nseg = static_cast<i64>(segs.size());
  const int kwi = s.KW == 5 ? 0 : s.KW == 3 ? 1 : 2;
  parallel_ranges(s.N, [&](i64 n0, i64 n1, int) {
    float* xpad = scratch(s.C * pad.plane);
    for (i64 n = n0; n < n1; ++n) {
      const float* xn = x + n * s.C * s.H * s.W;
      if (S == 1) {
        fill_input_pad(s, pad, s.C, xn, xpad);
      } else {
        for (i64 c = 0; c < s.C; ++c)
          for (i64 r = 0; r < rows; ++r) {
            const i64 ih = r - s.pad_top;
            float* dst = xpad + c * pad.plane + r * pad.cols;
            if (ih < 0 || ih >= s.H) {
              std::fill(dst, dst + pad.cols, 0.0f);
              continue;
            }
            const float* src = xn + (c * s.H + ih) * s.W;
            for (i64 f = 0; f < S; ++f) {  // q in [lo, hi) reads inside the row
              float* d = dst + f * colsP;
              const i64 lo = std::min(colsP, std::max<i64>(0, (s.pad_left - f + S - 1) / S));
              const i64 hi = std::max(lo, std::min(colsP, (s.W + s.pad_left - f + S - 1) / S));
              std::fill(d, d + lo, 0.0f);
              const float* from = src + (lo * S + f - s.pad_left);
              for (i64 q = lo; q < hi; ++q, from += S) d[q] = *from;
              std::fill(d + hi, d + colsP, 0.0f);
            }
          }
      }
      for (i64 blk = 0; blk < blocks; ++blk) {
        const i64 mr = std::min(R, s.O - blk * R);
        const float* wb = wp.data() + blk * K * R;
        const float* bb = bias ? bias + blk * R : nullptr;
        float* yb = y + (n * s.O + blk * R) * OHW;
        for (i64 i = 0; i < nseg; i += 2) {
          const i64 nv = i + 1 < nseg ? 2 : 1;
          const float* b[2];
          float* out[2];
          i64 lanes[2];
          for (i64 v = 0; v < nv; ++v) {
            const Seg& g = segs[static_cast<std::size_t>(i + v)];
            b[v] = xpad + g.row * s.stride_h * pad.cols + g.col;
            out[v] = yb + g.row * s.OW + g.col;
            lanes[v] = g.lanes;
          }
          ts.fwd[kwi][nv - 1][mr - 1](s, pad, kwoff.data(), wb, b, bb, out, lanes);
        }
      }
    }
  });
}

bool backward_data_applies(const Conv2dShape& s) {
  return enabled() && s.O <= kChunkProducts && !strided_1x1(s);
}

// Pixels are taken by column phase f = j mod stride_w: pixel (i, j'*S + f) at tap (kh, kw)
// reads dy[oh][ow] with oh = (i + pad_top - kh) / stride_h and ow = j' + (f + pad_left - kw) / S
// (when both divide exactly), consecutive in j'. The padded dy of one sample covers every
// (oh, ow) any pixel's taps name: dypad[o][oh - oh0][ow - ow0], 0 outside dy. With S > 1 the
// tiles write phase rows (c, i, f, j') and the sample's dx is gathered from them.
void backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const i64 S = s.stride_w, J = (s.W + S - 1) / S;  // pixels of phase 0 per row (the most)
  const TileSet& ts = tiles_for(J);
  const i64 L = ts.lanes, taps = s.KH * s.KW, blocks = (s.C + kMR - 1) / kMR, HW = s.H * s.W;
  // wt[blk][tap][o][r] = w[o][blk*6 + r][tap], zero past C.
  std::vector<float> wt(static_cast<std::size_t>(blocks * taps * s.O * kMR), 0.0f);
  for (i64 o = 0; o < s.O; ++o)
    for (i64 c = 0; c < s.C; ++c)
      for (i64 t = 0; t < taps; ++t)
        wt[(((c / kMR) * taps + t) * s.O + o) * kMR + c % kMR] = w[(o * s.C + c) * taps + t];
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
  std::vector<Seg> segs;
  std::vector<i64> seg_phase;
  for (i64 f = 0; f < S; ++f)
    for (i64 ri = 0; ri < s.stride_h; ++ri)
      for (i64 i = ri; i < s.H; i += s.stride_h) {
        const i64 Jf = (s.W - f + S - 1) / S;
        for (i64 j = 0; j < Jf; j += L) {
          segs.push_back({i, j, std::min(L, Jf - j)});
          seg_phase.push_back(f);
        }
      }
  const i64 nseg = static_cast<i64>(segs.size());
  const i64 rlo = std::max<i64>(0, oh0), rhi = std::min(s.OH, oh1 + 1);
  const i64 clo = std::max<i64>(0, ow0), chi = std::min(s.OW, ow1 + 1);
  parallel_ranges(s.N, [&](i64 n0, i64 n1, int) {
    thread_local std::vector<float> phased;  // (C, H, S, JL) when S > 1
    if (S > 1 && static_cast<i64>(phased.size()) < s.C * pad.out_plane)
      phased.resize(static_cast<std::size_t>(s.C * pad.out_plane));
    float* dypad = scratch(s.O * pad.plane);
    for (i64 n = n0; n < n1; ++n) {
      std::fill(dypad, dypad + s.O * pad.plane, 0.0f);
      const float* dyn = dy + n * s.O * s.OH * s.OW;
      for (i64 o = 0; o < s.O && chi > clo; ++o)
        for (i64 oh = rlo; oh < rhi; ++oh)
          copy_row(dypad + o * pad.plane + (oh - oh0) * pad.cols + (clo - ow0),
                   dyn + (o * s.OH + oh) * s.OW + clo, chi - clo);
      float* dxn = dx + n * s.C * HW;
      float* target = S == 1 ? dxn : phased.data();
      for (i64 blk = 0; blk < blocks; ++blk) {
        const i64 mr = std::min<i64>(kMR, s.C - blk * kMR);
        const float* wb = wt.data() + blk * taps * s.O * kMR;
        float* db = target + blk * kMR * pad.out_plane;
        for (i64 i = 0; i < nseg; i += 2) {
          const i64 nv = i + 1 < nseg ? 2 : 1;
          float* out[2];
          i64 row[2], phase[2], col[2], lanes[2];
          for (i64 v = 0; v < nv; ++v) {
            const Seg& g = segs[static_cast<std::size_t>(i + v)];
            const i64 f = seg_phase[static_cast<std::size_t>(i + v)];
            out[v] = S == 1 ? db + g.row * s.W + g.col : db + (g.row * S + f) * JL + g.col;
            row[v] = g.row, phase[v] = f, col[v] = g.col, lanes[v] = g.lanes;
          }
          ts.data[nv - 1][mr - 1](s, pad, wb, row, phase, col, lanes, dypad, out);
        }
      }
      if (S > 1)  // dx[c][i][j'*S + f] = phased[c][i][f][j']
        for (i64 c = 0; c < s.C; ++c)
          for (i64 i = 0; i < s.H; ++i) {
            const float* src = phased.data() + c * pad.out_plane + i * S * JL;
            float* drow = dxn + c * HW + i * s.W;
            for (i64 f = 0; f < S; ++f)
              for (i64 j = f, q = 0; j < s.W; j += S, ++q) drow[j] = src[f * JL + q];
          }
    }
  });
}

bool backward_weight_applies(const Conv2dShape& s) {
  if (!enabled()) return false;
  const i64 K = s.C * s.KH * s.KW;
  const i64 chunks = (s.N * s.OH * s.OW + kChunkProducts - 1) / kChunkProducts;
  const i64 sample = s.C * ((s.OH - 1) * s.stride_h + s.KH) * ((s.OW - 1) * s.stride_w + s.KW);
  // The chunk partials and the padded batch must fit in memory of the scratch budget's order.
  return chunks * K * round_up(s.O, 32) <= (i64{8} << 20) && s.N * sample <= (i64{64} << 20);
}

// The padded batch: xall[n][c][r][q] = x[n][c][r - pad_top][q - pad_left] inside the input,
// 0 elsewhere, covering every window. Tasks (chunk, channel panel, group of tap blocks)
// write chunk partials; each element's partials are then folded by the canonical tree.
void backward_weight(Level level, const Conv2dShape& s, const float* x, const float* dy,
                     float* dw) {
  const TileSet& ts = s.O > 8 ? tiles_for(s.O) : tiles_avx2();
  const i64 K = s.C * s.KH * s.KW, OHW = s.OH * s.OW, total = s.N * OHW;
  const i64 chunks = (total + kChunkProducts - 1) / kChunkProducts;
  const i64 nv = s.O > ts.lanes ? 2 : 1, width = ts.lanes * nv;
  const i64 panels = (s.O + width - 1) / width, Opad = panels * width;
  const i64 rows = (s.OH - 1) * s.stride_h + s.KH, cols = (s.OW - 1) * s.stride_w + s.KW;
  const Pad pad{rows, cols, rows * cols};
  const i64 sample = s.C * pad.plane;
  WeightScratch& ws = weight_scratch();
  if (static_cast<i64>(ws.xall.size()) < s.N * sample)
    ws.xall.resize(static_cast<std::size_t>(s.N * sample));
  float* xall = ws.xall.data();
  parallel_ranges(s.N, [&](i64 b, i64 e, int) {
    for (i64 n = b; n < e; ++n)
      fill_input_pad(s, pad, s.C, x + n * s.C * s.H * s.W, xall + n * sample);
  });
  std::vector<i64> off(static_cast<std::size_t>(K));
  for (i64 c = 0; c < s.C; ++c)
    for (i64 kh = 0; kh < s.KH; ++kh)
      for (i64 kw = 0; kw < s.KW; ++kw)
        off[static_cast<std::size_t>((c * s.KH + kh) * s.KW + kw)] =
            c * pad.plane + kh * pad.cols + kw;
  // part[chunk] (K, Opad): one chain per element over the chunk's positions.
  if (static_cast<i64>(ws.part.size()) < chunks * K * Opad)
    ws.part.resize(static_cast<std::size_t>(chunks * K * Opad));
  float* part = ws.part.data();
  // About four tasks per thread; fewer groups repack dy less often. Only speed depends on it.
  const i64 tile_taps = nv == 2 ? kMR : 2 * kMR;  // one vector: the wide tiles
  const i64 tap_blocks = (K + tile_taps - 1) / tile_taps;
  const i64 want =
      std::min(tap_blocks, (4 * num_threads() + chunks * panels - 1) / (chunks * panels));
  const i64 per_group = (tap_blocks + want - 1) / want;
  const i64 groups = (tap_blocks + per_group - 1) / per_group;
  const int swi = s.stride_w == 1 ? 0 : 1;
  const i64 n_tasks = chunks * panels * groups;
  auto run_task = [&](i64 task) {
    const i64 chunk = task / (panels * groups), panel = task / groups % panels, g = task % groups;
    const i64 p0 = chunk * kChunkProducts, p1 = std::min(total, p0 + kChunkProducts);
    const i64 o0 = panel * width, on = std::min(width, s.O - o0);
    float* dyt = scratch((p1 - p0) * width);  // dyt[q - p0][l] = dy[n][o0 + l][j]
    for (i64 q = p0; q < p1;) {
      const i64 n = q / OHW, j = q % OHW, len = std::min(OHW - j, p1 - q);
      transpose_rows(dy + (n * s.O + o0) * OHW + j, OHW, on, len, dyt + (q - p0) * width, width);
      q += len;
    }
    for (i64 blk = g * per_group; blk < std::min(tap_blocks, (g + 1) * per_group); ++blk) {
      const i64 mr = std::min(tile_taps, K - blk * tile_taps);
      const WeightTile tile = nv == 2 ? ts.weight[swi][mr - 1] : ts.weight_wide[swi][mr - 1];
      tile(s, pad, sample, xall, off.data() + blk * tile_taps, p0, p1, dyt,
           part + (chunk * K + blk * tile_taps) * Opad + o0, Opad);
    }
  };
  if (level == Level::fast && chunks > 1 && num_threads() > 1) {
    fast_fold(s, K, panels, groups, width, per_group * tile_taps, Opad, n_tasks, run_task, part,
              dw);
    return;
  }
  parallel_for(n_tasks, run_task);
  // dw[o][k] = the chunk partials of (k, o) folded by the canonical tree, in chunk order.
  parallel_ranges(s.O * K, [&](i64 b, i64 e, int) {
    for (i64 i = b; i < e; ++i) {
      const i64 o = i / K, k = i % K;
      ChunkTree tree;
      for (i64 c = 0; c < chunks; ++c) tree.push(part[(c * K + k) * Opad + o]);
      dw[i] = tree.root();
    }
  });
}

}  // namespace detdl::cpu::conv_direct
