// CPU convolution: im2col / col2im around sgemm. The reduction orders are in conv.h; this
// file keeps them by construction: every sum of products is one sgemm reduction, and
// everything else (im2col, col2im, gathers, scatters, the tile tree) is done per output
// element in a fixed order, so thread count and tiling never change a bit.
#include "kernels/cpu/conv.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/common/reduction.h"
#include "kernels/cpu/avx2.h"
#include "kernels/cpu/conv_direct.h"
#include "kernels/cpu/conv_pointwise.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"

namespace detdl::cpu {
using conv_detail::for_tiles;
using conv_detail::sample_tiles;
using conv_detail::SampleTiles;
namespace {

using i64 = std::int64_t;

std::atomic<i64> g_scratch_budget{i64{4} << 20};
// Forward / data-gradient tiles aim at this many floats (split among the threads) even
// when the budget allows more: measured on a 2-core EPYC, tiles that stay near the caches
// beat bigger GEMMs there, while the weight gradient gains from one long GEMM.
constexpr i64 kSampleTileTarget = i64{1} << 20;

// Scratch grown on demand and kept between calls, one per thread that runs a tile (the
// caller, or a pool worker taking whole tiles), so a training loop does not reallocate
// every step.
struct Scratch {
  std::vector<float> cols;               // (C*KH*KW, positions of a tile)
  std::vector<float> gemm_out;           // (O, positions of a tile)
  std::vector<float> dy_tile;            // (O, positions of a tile)
  std::vector<std::vector<float>> tree;  // weight-gradient partials of tile groups
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}
float* grow(std::vector<float>& v, i64 n) {
  if (static_cast<i64>(v.size()) < n) v.resize(static_cast<std::size_t>(n));
  return v.data();
}

// The bias gradient's tasks: groups of this many chunks of one channel.
constexpr i64 kBiasGroup = 16;

// sums[l] = buf[l*kChunkValues] + ... in index order from +0.0f, one chain per chunk l of
// the 16 in buf (kChunkValues floats each). Two vectors of 8 chains: 8x8 blocks are
// transposed so that lane l of an add takes chunk l's next value, and the two vectors' add
// chains overlap. Each lane does exactly the scalar loop's adds.
void chunk_sums16(const float* buf, float* sums) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (i64 k = 0; k < kChunkValues; k += 8) {
    __m256 r0[8], r1[8];
    for (int l = 0; l < 8; ++l) {
      r0[l] = _mm256_loadu_ps(buf + l * kChunkValues + k);
      r1[l] = _mm256_loadu_ps(buf + (8 + l) * kChunkValues + k);
    }
    avx2::transpose8(r0);  // r0[i] lane l = chunk l's value k + i
    avx2::transpose8(r1);
    for (int i = 0; i < 8; ++i) {
      acc0 = _mm256_add_ps(acc0, r0[i]);
      acc1 = _mm256_add_ps(acc1, r1[i]);
    }
  }
  _mm256_storeu_ps(sums, acc0);
  _mm256_storeu_ps(sums + 8, acc1);
}

// Output indices [lo, hi) whose window tap `k` lands inside [0, size) of the input:
// i = o*stride - pad + k in [0, size).
struct Range {
  i64 lo, hi;
};
Range inside(i64 k, i64 stride, i64 pad, i64 size, i64 out) {
  const i64 lo = std::max<i64>(0, ceil_div(pad - k, stride));
  const i64 hi = std::min<i64>(out, floor_div(size - 1 + pad - k, stride) + 1);
  return {lo, std::max(lo, hi)};
}

// Fills one im2col row, tap (c, kh, kw), for flat output positions [p, end) of the (n, oh, ow)
// space: dst[q - p] = xpad[n][c][oh*sh - pt + kh][ow*sw - pl + kw].
void fill_row(const Conv2dShape& s, const float* x, i64 c, i64 kh, i64 kw, i64 p, i64 end,
              float* dst) {
  const i64 OHW = s.OH * s.OW;
  const Range cols = inside(kw, s.stride_w, s.pad_left, s.W, s.OW);
  i64 n = p / OHW, oh = (p % OHW) / s.OW, ow = p % s.OW;
  while (p < end) {
    const i64 len = std::min(s.OW - ow, end - p);
    const i64 ih = oh * s.stride_h - s.pad_top + kh;
    if (ih < 0 || ih >= s.H) {
      std::fill(dst, dst + len, 0.0f);
    } else {
      const float* xrow = x + ((n * s.C + c) * s.H + ih) * s.W;
      const i64 lo = std::min(std::max(cols.lo, ow), ow + len);
      const i64 hi = std::min(std::max(cols.hi, lo), ow + len);
      std::fill(dst, dst + (lo - ow), 0.0f);
      if (s.stride_w == 1) {
        std::memcpy(dst + (lo - ow), xrow + (lo - s.pad_left + kw),
                    static_cast<std::size_t>(hi - lo) * sizeof(float));
      } else {
        for (i64 j = lo; j < hi; ++j) dst[j - ow] = xrow[j * s.stride_w - s.pad_left + kw];
      }
      std::fill(dst + (hi - ow), dst + len, 0.0f);
    }
    p += len;
    dst += len;
    ow = 0;
    if (++oh == s.OH) {
      oh = 0;
      ++n;
    }
  }
}

// cols (C*KH*KW, p1 - p0): the patches of flat output positions [p0, p1).
void im2col(const Conv2dShape& s, const float* x, i64 p0, i64 p1, float* cols) {
  const i64 P = p1 - p0, K = s.C * s.KH * s.KW;
  constexpr i64 kSeg = 4096;  // positions per task, so a few rows still spread over threads
  const i64 nseg = (P + kSeg - 1) / kSeg;
  parallel_ranges(K * nseg, [&](i64 b, i64 e, int) {
    for (i64 t = b; t < e; ++t) {
      const i64 r = t / nseg, a = p0 + (t % nseg) * kSeg, z = std::min(a + kSeg, p1);
      const i64 c = r / (s.KH * s.KW), kh = (r / s.KW) % s.KH, kw = r % s.KW;
      fill_row(s, x, c, kh, kw, a, z, cols + r * P + (a - p0));
    }
  });
}

// dx for samples [n0, n1) from dcols (C*KH*KW, (n1-n0)*OH*OW): each (n, c) plane is zeroed,
// then taps are added in (kh, kw) row-major order; one tap reaches a pixel at most once,
// so every pixel sees its terms in exactly that order.
void col2im(const Conv2dShape& s, const float* dcols, i64 n0, i64 n1, float* dx) {
  const i64 OHW = s.OH * s.OW, P = (n1 - n0) * OHW, HW = s.H * s.W;
  parallel_ranges((n1 - n0) * s.C, [&](i64 b, i64 e, int) {
    for (i64 t = b; t < e; ++t) {
      const i64 nl = t / s.C, c = t % s.C;
      float* plane = dx + ((n0 + nl) * s.C + c) * HW;
      std::fill(plane, plane + HW, 0.0f);
      for (i64 kh = 0; kh < s.KH; ++kh) {
        const Range rows = inside(kh, s.stride_h, s.pad_top, s.H, s.OH);
        for (i64 kw = 0; kw < s.KW; ++kw) {
          const Range cols = inside(kw, s.stride_w, s.pad_left, s.W, s.OW);
          const float* src = dcols + ((c * s.KH + kh) * s.KW + kw) * P + nl * OHW;
          for (i64 oh = rows.lo; oh < rows.hi; ++oh) {
            float* drow = plane + (oh * s.stride_h - s.pad_top + kh) * s.W;
            const float* srow = src + oh * s.OW;
            const i64 off = kw - s.pad_left;
            if (s.stride_w == 1) {  // contiguous: lets the compiler vectorise across pixels
              float* d = drow + (cols.lo + off);
              const float* v = srow + cols.lo;
              for (i64 j = 0; j < cols.hi - cols.lo; ++j) d[j] = d[j] + v[j];
            } else {
              for (i64 ow = cols.lo; ow < cols.hi; ++ow)
                drow[ow * s.stride_w + off] = drow[ow * s.stride_w + off] + srow[ow];
            }
          }
        }
      }
    }
  });
}

// dyt (O, p1 - p0) = dy[n][o][oh][ow] for flat positions [p0, p1) of the (n, oh, ow) space.
void gather_dy(const Conv2dShape& s, const float* dy, i64 p0, i64 p1, float* dyt) {
  const i64 OHW = s.OH * s.OW, P = p1 - p0;
  parallel_ranges(s.O, [&](i64 b, i64 e, int) {
    for (i64 o = b; o < e; ++o) {
      for (i64 p = p0; p < p1;) {
        const i64 n = p / OHW, j = p % OHW, len = std::min(OHW - j, p1 - p);
        std::memcpy(dyt + o * P + (p - p0), dy + (n * s.O + o) * OHW + j,
                    static_cast<std::size_t>(len) * sizeof(float));
        p += len;
      }
    }
  });
}

// `fast` weight gradient over several tiles: tiles are handed to threads by timing
// (parallel_dynamic); each thread adds the GEMMs of the tiles it gets into its own (O, K)
// partial, and the partials are added in the order the threads finished. When the whole
// reduction is one tile, sgemm's own `fast` split-K plays this part instead.
void fast_weight_tiles(const Conv2dShape& s, const float* x, const float* dy, i64 tile, i64 ntiles,
                       float* dw) {
  const i64 K = s.C * s.KH * s.KW, total = s.N * s.OH * s.OW, size = s.O * K;
  const int T = static_cast<int>(std::min<i64>(num_threads(), ntiles));
  std::vector<std::vector<float>> partial(T);
  std::vector<i64> finished(T, -1);  // completion stamp of each thread's last tile
  std::atomic<i64> stamp{0};
  parallel_dynamic(ntiles, [&](i64 t, int worker) {
    Scratch& sc = scratch();  // this thread's own buffers; nested pool calls run serially
    const i64 p0 = t * tile, p1 = std::min(total, p0 + tile), P = p1 - p0;
    float* cols = grow(sc.cols, K * P);
    float* dyt = grow(sc.dy_tile, s.O * P);
    float* out = grow(sc.gemm_out, size);
    im2col(s, x, p0, p1, cols);
    gather_dy(s, dy, p0, p1, dyt);
    sgemm(Level::fast, false, true, s.O, K, P, dyt, P, cols, P, out, K);
    std::vector<float>& acc = partial[worker];
    if (acc.empty()) {
      acc.assign(out, out + size);
    } else {
      for (i64 i = 0; i < size; ++i) acc[i] = acc[i] + out[i];
    }
    finished[worker] = stamp.fetch_add(1);
  });
  std::vector<int> order;
  for (int w = 0; w < T; ++w)
    if (finished[w] >= 0) order.push_back(w);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return finished[a] < finished[b]; });
  std::copy(partial[order[0]].begin(), partial[order[0]].end(), dw);
  for (std::size_t j = 1; j < order.size(); ++j)
    for (i64 i = 0; i < size; ++i) dw[i] = dw[i] + partial[order[j]][i];
}

}  // namespace

namespace conv_detail {

// Tiles of whole samples for forward / data gradient (col2im needs all taps of a pixel in
// one tile). Each tile fits min(budget, kSampleTileTarget) / threads with `per_position`
// floats per position, and where N allows there are at least as many tiles as threads (a
// multiple of them where the budget allows), so each thread works through whole tiles.
SampleTiles sample_tiles(const Conv2dShape& s, i64 per_position, int threads) {
  const i64 per_sample = per_position * s.OH * s.OW;
  const i64 target = std::min(g_scratch_budget.load(), kSampleTileTarget);
  const i64 most = std::max<i64>(1, target / threads / per_sample);
  i64 count = (s.N + most - 1) / most;
  count = std::min(s.N, (count + threads - 1) / threads * threads);
  const i64 size = (s.N + count - 1) / count;
  return {size, (s.N + size - 1) / size};
}

// Runs tile(t) for t in [0, count). With at least as many tiles as threads, threads take
// whole tiles (the pool calls inside a tile then run serially on that thread, which uses
// its own scratch); otherwise tiles run one after another and parallelise inside. Either
// way every output is computed by the same arithmetic.
void for_tiles(i64 count, const std::function<void(i64)>& tile) {
  if (num_threads() > 1 && count >= num_threads()) {
    parallel_for(count, tile);
  } else {
    for (i64 t = 0; t < count; ++t) tile(t);
  }
}

void im2col_row(const Conv2dShape& s, const float* x, i64 c, i64 kh, i64 kw, i64 p, i64 end,
                float* dst) {
  fill_row(s, x, c, kh, kw, p, end, dst);
}
void im2col(const Conv2dShape& s, const float* x, i64 p0, i64 p1, float* cols) {
  cpu::im2col(s, x, p0, p1, cols);
}
void gather_dy(const Conv2dShape& s, const float* dy, i64 p0, i64 p1, float* dyt) {
  cpu::gather_dy(s, dy, p0, p1, dyt);
}
}  // namespace conv_detail

void set_conv_scratch_budget(i64 floats) {
  if (floats < 1)
    throw std::invalid_argument("set_conv_scratch_budget: floats must be >= 1, got " +
                                std::to_string(floats));
  g_scratch_budget.store(floats);
}
i64 conv_scratch_budget() { return g_scratch_budget.load(); }

namespace {
// 1x1, unpadded: weights x positions (conv_pointwise.h), unless conv_direct's lanes over
// channels run it (the same sums; they read the strided input in place, as conv_pointwise
// does at stride 2 on rows of 16k, where it writes y without their transposes).
bool forward_pointwise(const Conv2dShape& s) {
  return conv_pointwise::forward_applies(s) &&
         (conv_pointwise::forward_in_place(s) || !conv_direct::forward_by_channels(s));
}
}  // namespace

bool conv2d_forward_each_sample_applies(const Conv2dShape& s) {
  return !forward_pointwise(s) && conv_direct::forward_applies(s);
}

void conv2d_forward_each_sample(const Conv2dShape& s, const float* x, const float* w,
                                const float* bias, float* y,
                                const std::function<void(i64)>& after_sample) {
  check_conv2d_shape(s);
  if (!conv2d_forward_each_sample_applies(s))
    throw std::invalid_argument("conv2d_forward_each_sample: not the direct kernels' shape");
  conv_direct::forward(s, x, w, bias, y, &after_sample);
}

void conv2d_forward(Level level, const Conv2dShape& s, const float* x, const float* w,
                    const float* bias, float* y) {
  check_conv2d_shape(s);
  if (forward_pointwise(s)) {
    conv_pointwise::forward(s, x, w, bias, y);
    return;
  }
  if (conv_direct::forward_applies(s)) {  // one chunk, stride-1 rows: no im2col (conv_direct.h)
    conv_direct::forward(s, x, w, bias, y);
    return;
  }
  const i64 K = s.C * s.KH * s.KW, OHW = s.OH * s.OW;
  const SampleTiles tiles = sample_tiles(s, K + s.O, num_threads());
  for_tiles(tiles.count, [&](i64 t) {
    Scratch& sc = scratch();
    const i64 n0 = t * tiles.size, n1 = std::min(s.N, n0 + tiles.size), P = (n1 - n0) * OHW;
    float* cols = grow(sc.cols, K * P);
    im2col(s, x, n0 * OHW, n1 * OHW, cols);
    if (n1 - n0 == 1) {  // a single sample's (O, OH*OW) block is already y's layout
      float* yn = y + n0 * s.O * OHW;
      sgemm(level, false, false, s.O, P, K, w, K, cols, P, yn, P);
      if (bias) {
        parallel_ranges(s.O, [&](i64 b, i64 e, int) {
          for (i64 o = b; o < e; ++o)
            for (i64 j = 0; j < OHW; ++j) yn[o * OHW + j] = yn[o * OHW + j] + bias[o];
        });
      }
      return;
    }
    float* out = grow(sc.gemm_out, s.O * P);  // (O, (n1-n0)*OH*OW)
    sgemm(level, false, false, s.O, P, K, w, K, cols, P, out, P);
    parallel_ranges((n1 - n0) * s.O, [&](i64 b, i64 e, int) {
      for (i64 i = b; i < e; ++i) {
        const i64 nl = i / s.O, o = i % s.O;
        const float* src = out + o * P + nl * OHW;
        float* dst = y + ((n0 + nl) * s.O + o) * OHW;
        if (bias) {
          for (i64 j = 0; j < OHW; ++j) dst[j] = src[j] + bias[o];
        } else {
          std::memcpy(dst, src, static_cast<std::size_t>(OHW) * sizeof(float));
        }
      }
    });
  });
}

void conv2d_backward_data(Level level, const Conv2dShape& s, const float* dy, const float* w,
                          float* dx) {
  check_conv2d_shape(s);
  if (conv_pointwise::backward_data_applies(s)) {  // 1x1, unpadded (conv_pointwise.h)
    conv_pointwise::backward_data(s, dy, w, dx);
    return;
  }
  if (conv_direct::backward_data_applies(s)) {  // stride 1, one chunk over O: no col2im
    conv_direct::backward_data(s, dy, w, dx);
    return;
  }
  const i64 K = s.C * s.KH * s.KW, OHW = s.OH * s.OW;
  const SampleTiles tiles = sample_tiles(s, K + s.O, num_threads());
  for_tiles(tiles.count, [&](i64 t) {
    Scratch& sc = scratch();
    const i64 n0 = t * tiles.size, n1 = std::min(s.N, n0 + tiles.size), P = (n1 - n0) * OHW;
    const float* dyt = dy + n0 * s.O * OHW;  // one sample: (O, OH*OW) as it lies
    if (n1 - n0 > 1) {
      float* buf = grow(sc.dy_tile, s.O * P);
      gather_dy(s, dy, n0 * OHW, n1 * OHW, buf);
      dyt = buf;
    }
    float* dcols = grow(sc.cols, K * P);  // (C*KH*KW, P) = W^T (K, O) * dY (O, P)
    sgemm(level, true, false, K, P, s.O, w, K, dyt, P, dcols, P);
    col2im(s, dcols, n0, n1, dx);
  });
}

void conv2d_backward_weight(Level level, const Conv2dShape& s, const float* x, const float* dy,
                            float* dw) {
  check_conv2d_shape(s);
  if (conv_direct::backward_weight_applies(s)) {  // no im2col, no packing of x
    conv_direct::backward_weight(level, s, x, dy, dw);
    return;
  }
  const i64 K = s.C * s.KH * s.KW, total = s.N * s.OH * s.OW, per_position = K + s.O;
  const int threads = num_threads();

  // One tile if the whole reduction fits the budget; otherwise tiles of 2^k whole chunks of
  // kChunkProducts positions, each fitting budget / threads. sgemm over a tile gives the
  // root of that tile's subtree of the canonical chunk tree (an aligned group of 2^k chunks
  // is a subtree, and the last, shorter group is its own tree with the same pairing), so
  // combining the tile roots with the same pairwise tree gives the canonical root.
  i64 tile = total;
  if (per_position * total > g_scratch_budget.load()) {
    tile = kChunkProducts;
    while (tile * 2 < total && tile * 2 * per_position <= g_scratch_budget.load() / threads)
      tile *= 2;
  }
  const i64 ntiles = (total + tile - 1) / tile;
  auto tile_gemm = [&](i64 t, float* out) {  // out (O, K) = dY (O, P) * cols (K, P)^T
    Scratch& sc = scratch();
    const i64 p0 = t * tile, p1 = std::min(total, p0 + tile), P = p1 - p0;
    float* cols = grow(sc.cols, K * P);
    float* dyt = grow(sc.dy_tile, s.O * P);
    im2col(s, x, p0, p1, cols);
    gather_dy(s, dy, p0, p1, dyt);
    sgemm(level, false, true, s.O, K, P, dyt, P, cols, P, out, K);
  };
  if (ntiles == 1) {
    tile_gemm(0, dw);
    return;
  }
  if (level == Level::fast) {
    fast_weight_tiles(s, x, dy, tile, ntiles, dw);
    return;
  }

  // Rounds of `threads` tiles computed side by side, then pushed in tile order onto a stack
  // of partials that merges equal-height neighbours (left + right), as ChunkTree::push does
  // per element.
  std::vector<std::vector<float>>& slots = scratch().tree;
  std::vector<int> height;
  int depth = 0;
  for (i64 r0 = 0; r0 < ntiles; r0 += threads) {
    const i64 round = std::min<i64>(threads, ntiles - r0);
    const int base = depth;
    if (static_cast<i64>(slots.size()) < base + round) slots.resize(base + round);
    if (static_cast<i64>(height.size()) < base + round) height.resize(base + round);
    for (i64 i = 0; i < round; ++i) grow(slots[base + i], s.O * K);
    for_tiles(round, [&](i64 i) { tile_gemm(r0 + i, slots[base + i].data()); });
    for (i64 i = 0; i < round; ++i) {
      std::swap(slots[depth], slots[base + i]);  // slots in [depth, base + i) are free
      int h = 0;
      while (depth > 0 && height[depth - 1] == h) {
        float* left = slots[depth - 1].data();
        const float* right = slots[depth].data();
        parallel_ranges(s.O * K, [&](i64 b, i64 e, int) {
          for (i64 j = b; j < e; ++j) left[j] = left[j] + right[j];
        });
        --depth;
        ++h;
      }
      height[depth++] = h;
    }
  }
  // Fold what is left from right to left, as ChunkTree::root does per element.
  parallel_ranges(s.O * K, [&](i64 b, i64 e, int) {
    for (i64 i = b; i < e; ++i) {
      float r = slots[depth - 1][i];
      for (int d = depth - 2; d >= 0; --d) r = slots[d][i] + r;
      dw[i] = r;
    }
  });
}

void conv2d_backward_bias(Level level, const Conv2dShape& s, const float* dy, float* db) {
  check_conv2d_shape(s);
  const i64 OHW = s.OH * s.OW;
  if (level == Level::fast && num_threads() > 1 && s.N > 1) {
    // Samples are handed to workers by timing; each worker keeps running sums over the
    // samples it got, and the workers' partials are added up. Which samples meet in which
    // partial changes run to run, and so do the bits.
    const int T = static_cast<int>(std::min<i64>(num_threads(), s.N));
    std::vector<float> part(static_cast<std::size_t>(T * s.O), 0.0f);
    parallel_dynamic(s.N, [&](i64 n, int worker) {
      float* pw = part.data() + worker * s.O;
      for (i64 o = 0; o < s.O; ++o) {
        const float* row = dy + (n * s.O + o) * OHW;
        for (i64 j = 0; j < OHW; ++j) pw[o] = pw[o] + row[j];
      }
    });
    for (i64 o = 0; o < s.O; ++o) {
      float r = 0.0f;
      for (int t = 0; t < T; ++t) r = r + part[t * s.O + o];
      db[o] = r;
    }
    return;
  }
  // Canonical sum over (n, oh, ow): chunks of kChunkValues run across sample boundaries.
  // Every (channel, chunk) partial is the chunk's adds in index order from +0.0f; each
  // channel then folds its partials in chunk order through the tree (ChunkTree). Tasks are
  // (channel, group of 16 chunks), so few channels (LeNet's 6) still fill every thread, and
  // the partition never touches the bits.
  const i64 L = s.N * OHW, n_chunks = (L + kChunkValues - 1) / kChunkValues;
  const i64 groups = (n_chunks + kBiasGroup - 1) / kBiasGroup;
  std::vector<float> partial(static_cast<std::size_t>(s.O * n_chunks));
  parallel_ranges(s.O * groups, [&](i64 b, i64 e, int) {
    thread_local std::vector<float> buf;
    buf.resize(static_cast<std::size_t>(kBiasGroup * kChunkValues));
    for (i64 t = b; t < e; ++t) {
      const i64 o = t / groups, c0 = t % groups * kBiasGroup,
                c1 = std::min(n_chunks, c0 + kBiasGroup);
      const i64 i0 = c0 * kChunkValues, i1 = std::min(L, c1 * kChunkValues);
      for (i64 i = i0; i < i1;) {  // values [i0, i1) of channel o's (n, oh, ow) sequence
        const i64 n = i / OHW, j = i % OHW, len = std::min(OHW - j, i1 - i);
        std::memcpy(buf.data() + (i - i0), dy + (n * s.O + o) * OHW + j,
                    static_cast<std::size_t>(len) * sizeof(float));
        i += len;
      }
      // Past the last value: zeros. A chain from +0.0f never holds -0.0f, so p + 0.0f == p
      // (NaN and infinities stay): a short last chunk keeps its sum exactly.
      std::fill(buf.data() + (i1 - i0), buf.data() + kBiasGroup * kChunkValues, 0.0f);
      float sums[kBiasGroup];
      chunk_sums16(buf.data(), sums);
      std::copy(sums, sums + (c1 - c0), partial.begin() + o * n_chunks + c0);
    }
  });
  for (i64 o = 0; o < s.O; ++o) {
    ChunkTree tree;
    for (i64 c = 0; c < n_chunks; ++c)
      tree.push(partial[static_cast<std::size_t>(o * n_chunks + c)]);
    db[o] = tree.root();
  }
}

}  // namespace detdl::cpu
