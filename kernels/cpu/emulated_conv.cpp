// The `emulated` convolutions: im2col (conv.cpp's row filler, rows in the algorithm's order)
// around emulated_sgemm / chain_sgemm, and a col2im that takes the taps in a given order.
// Work is tiled by whole samples (forward, data gradient: conv.cpp's sample_tiles, threads
// taking whole tiles) or by positions inside a batch group (weight gradient, where a tile
// continues the group's chain exactly; groups run in parallel, each on one thread). No
// element's arithmetic depends on the tile it falls in, so the bits never depend on
// threads or tiling.
#include "kernels/cpu/emulated_conv.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <stdexcept>

#include "kernels/common/level.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/conv_direct.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"

namespace detdl::cpu {
namespace {

using i64 = std::int64_t;
using conv_detail::for_tiles;
using conv_detail::gather_dy;
using conv_detail::im2col;
using conv_detail::im2col_row;
using conv_detail::sample_tiles;
using conv_detail::SampleTiles;

float* grow(std::vector<float>& v, i64 n) {
  if (static_cast<i64>(v.size()) < n) v.resize(static_cast<std::size_t>(n));
  return v.data();
}

// cols (K, p1 - p0) with rows in (kh, kw, c) order: row (kh*KW + kw)*C + c.
void im2col_hwc(const Conv2dShape& s, const float* x, i64 p0, i64 p1, float* cols) {
  const i64 P = p1 - p0, T = s.KH * s.KW, K = s.C * T;
  constexpr i64 kSeg = 4096;  // positions per task, as conv.cpp's im2col
  const i64 nseg = (P + kSeg - 1) / kSeg;
  parallel_ranges(K * nseg, [&](i64 b, i64 e, int) {
    for (i64 t = b; t < e; ++t) {
      const i64 r = t / nseg, a = p0 + (t % nseg) * kSeg, z = std::min(a + kSeg, p1);
      const i64 tap = r / s.C, c = r % s.C;
      im2col_row(s, x, c, tap / s.KW, tap % s.KW, a, z, cols + r * P + (a - p0));
    }
  });
}

// Output indices [lo, hi) whose window tap `k` lands inside [0, size): as conv.cpp's.
struct Range {
  i64 lo, hi;
};
Range inside(i64 k, i64 stride, i64 pad, i64 size, i64 out) {
  const i64 lo = std::max<i64>(0, ceil_div(pad - k, stride));
  const i64 hi = std::min<i64>(out, floor_div(size - 1 + pad - k, stride) + 1);
  return {lo, std::max(lo, hi)};
}

// conv.cpp's col2im with the taps taken in `order` (KH*KW tap indices, nullptr: row-major):
// each (n, c) plane of dx is zeroed, then tap after tap adds its values; one tap reaches a
// pixel at most once, so every pixel sees its terms in exactly that order.
void col2im_ordered(const Conv2dShape& s, const float* dcols, i64 n0, i64 n1,
                    const std::int32_t* order, float* dx) {
  const i64 OHW = s.OH * s.OW, P = (n1 - n0) * OHW, HW = s.H * s.W, T = s.KH * s.KW;
  parallel_ranges((n1 - n0) * s.C, [&](i64 b, i64 e, int) {
    for (i64 t = b; t < e; ++t) {
      const i64 nl = t / s.C, c = t % s.C;
      float* plane = dx + ((n0 + nl) * s.C + c) * HW;
      std::fill(plane, plane + HW, 0.0f);
      for (i64 ti = 0; ti < T; ++ti) {
        const i64 tap = order ? order[ti] : ti, kh = tap / s.KW, kw = tap % s.KW;
        const Range rows = inside(kh, s.stride_h, s.pad_top, s.H, s.OH);
        const Range cols = inside(kw, s.stride_w, s.pad_left, s.W, s.OW);
        const float* src = dcols + (c * T + tap) * P + nl * OHW;
        const i64 off = kw - s.pad_left;
        for (i64 oh = rows.lo; oh < rows.hi; ++oh) {
          float* drow = plane + (oh * s.stride_h - s.pad_top + kh) * s.W;
          const float* srow = src + oh * s.OW;
          if (s.stride_w == 1) {  // contiguous: vectorises across pixels
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
  });
}

struct Scratch {
  std::vector<float> cols, out, dyt, w;
  std::vector<std::vector<float>> parts;
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

}  // namespace

void emulated_conv2d_forward(ConvAlgo algo, const Conv2dShape& s, const float* x, const float* w,
                             const float* bias, float* y) {
  if (algo == ConvAlgo::im2col_chw) {  // the canonical kernel is this algorithm
    conv2d_forward(Level::portable, s, x, w, bias, y);
    return;
  }
  check_conv2d_shape(s);
  if (conv_direct::forward_applies(s)) {  // the direct tiles, no im2col (conv_direct.h)
    conv_direct::forward_ordered(algo == ConvAlgo::im2col_hwc ? conv_direct::ForwardOrder::hwc
                                                              : conv_direct::ForwardOrder::per_tap,
                                 s, x, w, bias, y);
    return;
  }
  const i64 T = s.KH * s.KW, K = s.C * T, OHW = s.OH * s.OW;
  Scratch& sc = scratch();
  // Weight columns in the same (kh, kw, c) order as the im2col rows: wt (O, KH, KW, C).
  float* wt = grow(sc.w, s.O * K);
  for (i64 o = 0; o < s.O; ++o)
    for (i64 c = 0; c < s.C; ++c)
      for (i64 t = 0; t < T; ++t) wt[o * K + t * s.C + c] = w[(o * s.C + c) * T + t];
  EmulatedGemmPlan plan;
  if (algo == ConvAlgo::im2col_hwc) {
    plan = split_k_plan(K, 1, SplitCombine::tree);
  } else {  // per tap: slice t is rows [t*C, (t+1)*C), added in tap order into zeros
    plan.cuts.resize(static_cast<std::size_t>(T + 1));
    for (i64 t = 0; t <= T; ++t) plan.cuts[t] = t * s.C;
    plan.combine = SplitCombine::arrival;
    plan.order.resize(static_cast<std::size_t>(T));
    std::iota(plan.order.begin(), plan.order.end(), 0);
  }
  const SampleTiles tiles = sample_tiles(s, K + s.O, num_threads());
  for_tiles(tiles.count, [&](i64 t) {
    Scratch& ts = scratch();  // this thread's (the caller's when the tiles run in turn)
    const i64 n0 = t * tiles.size, n1 = std::min(s.N, n0 + tiles.size), P = (n1 - n0) * OHW;
    float* cols = grow(ts.cols, K * P);  // (K, P)
    float* out = grow(ts.out, s.O * P);  // (O, P)
    im2col_hwc(s, x, n0 * OHW, n1 * OHW, cols);
    emulated_sgemm(plan, false, false, s.O, P, K, wt, K, cols, P, out, P);
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

void emulated_conv2d_backward_data(const Conv2dShape& s, const EmulatedGemmPlan* plan,
                                   const std::int32_t* tap_order, const float* dy, const float* w,
                                   float* dx) {
  check_conv2d_shape(s);
  if (conv_direct::backward_data_applies(s)) {  // the direct tiles, no col2im (conv_direct.h)
    conv_direct::DataOrder order;
    if (plan) {
      order.cuts = plan->cuts.data(), order.slices = plan->slices();
      order.tree = plan->combine == SplitCombine::tree, order.slice_order = plan->order.data();
    }
    order.taps = tap_order;
    conv_direct::backward_data_ordered(order, s, dy, w, dx);
    return;
  }
  const i64 K = s.C * s.KH * s.KW, OHW = s.OH * s.OW;
  const SampleTiles tiles = sample_tiles(s, K + s.O, num_threads());
  for_tiles(tiles.count, [&](i64 t) {
    Scratch& sc = scratch();  // this thread's
    const i64 n0 = t * tiles.size, n1 = std::min(s.N, n0 + tiles.size), P = (n1 - n0) * OHW;
    const float* dyt = dy + n0 * s.O * OHW;  // one sample: (O, OH*OW) as it lies
    if (n1 - n0 > 1) {
      float* buf = grow(sc.dyt, s.O * P);
      gather_dy(s, dy, n0 * OHW, n1 * OHW, buf);
      dyt = buf;
    }
    float* dcols = grow(sc.cols, K * P);  // (K, P) = W^T (K, O) * dY (O, P)
    if (plan) {
      emulated_sgemm(*plan, true, false, K, P, s.O, w, K, dyt, P, dcols, P);
    } else {
      sgemm(Level::portable, true, false, K, P, s.O, w, K, dyt, P, dcols, P);
    }
    col2im_ordered(s, dcols, n0, n1, tap_order, dx);
  });
}

void emulated_conv2d_backward_weight(const WeightGradPlan& plan, const Conv2dShape& s,
                                     const float* x, const float* dy, float* dw) {
  check_conv2d_shape(s);
  const i64 K = s.C * s.KH * s.KW, OHW = s.OH * s.OW, size = s.O * K, G = plan.groups;
  if (G < 1 || G > s.N || static_cast<i64>(plan.order.size()) != G)
    throw std::invalid_argument("emulated_conv2d_backward_weight: bad plan for N = " +
                                std::to_string(s.N));
  Scratch& sc = scratch();
  if (static_cast<i64>(sc.parts.size()) < G) sc.parts.resize(static_cast<std::size_t>(G));
  std::vector<float*> parts(static_cast<std::size_t>(G));
  for (i64 g = 0; g < G; ++g) parts[g] = G == 1 ? dw : grow(sc.parts[g], size);  // (O, K) each
  if (conv_direct::backward_weight_applies(s)) {  // the direct tiles, no im2col (conv_direct.h)
    std::vector<i64> bounds(static_cast<std::size_t>(G + 1));
    for (i64 g = 0; g <= G; ++g) bounds[g] = s.N * g / G * OHW;
    conv_direct::backward_weight_ranges(s, x, dy, bounds.data(), G, parts.data());
    if (G > 1) combine_partials(plan.combine, plan.order.data(), G, parts.data(), size, dw);
    return;
  }
  const int threads = static_cast<int>(std::min<i64>(num_threads(), G));
  // Positions per tile: the budget's worth (split among the threads that run groups at once);
  // a tile continues its group's chain exactly.
  const i64 tile = std::max<i64>(1, conv_scratch_budget() / threads / (K + s.O));
  // Groups in parallel when there are 2+ (each group is one task: its chain runs in order on
  // one thread, with that thread's scratch); one group parallelises inside its GEMMs.
  for_tiles(G, [&](i64 g) {
    Scratch& ts = scratch();
    const i64 pa = s.N * g / G * OHW, pb = s.N * (g + 1) / G * OHW;
    for (i64 p0 = pa; p0 < pb; p0 += tile) {
      const i64 p1 = std::min(pb, p0 + tile), P = p1 - p0;
      float* cols = grow(ts.cols, K * P);  // (K, P)
      float* dyt = grow(ts.dyt, s.O * P);  // (O, P)
      im2col(s, x, p0, p1, cols);
      gather_dy(s, dy, p0, p1, dyt);
      // part (O, K) (+)= dY (O, P) * cols (K, P)^T, one chain over the group's positions.
      chain_sgemm(false, true, s.O, K, P, dyt, P, cols, P, p0 > pa, parts[g], K);
    }
  });
  if (G > 1) combine_partials(plan.combine, plan.order.data(), G, parts.data(), size, dw);
}

}  // namespace detdl::cpu
