// The convolution's implicit-GEMM operands for the tile kernel of gemm_tiles.h (the im2col
// matrix and dy read from the tensors as the tiles need them, never written out) and its
// output adapters; shared by conv.cu (the levels' orders) and conv_emulated.cu (the
// emulated conv family's orders). Device code: include from .cu files only.
#pragma once
#include <cstdint>

#include "kernels/common/shapes.h"
#include "kernels/cuda/launch.h"

namespace detdl::cuda::conv_ops {

using i64 = std::int64_t;

// The im2col matrix of x, never written out: value(tap, p) = x[n][c][ih][iw] for
// tap = (c, kh, kw) and flat output position p = (n, oh, ow); 0.0f where the tap falls
// outside the input (the CPU's im2col). run() gives E consecutive positions of one tap with
// one set of divisions for the first.
struct Im2col {
  Conv2dShape s;
  const float* x;
  i64 taps, positions;
  template <int E>
  __device__ __forceinline__ void run(i64 tap, i64 p, i64 p_end, float (&v)[E]) const {
    if (tap >= taps) {
      for (int e = 0; e < E; ++e) v[e] = 0.0f;
      return;
    }
    const i64 KHW = s.KH * s.KW, OHW = s.OH * s.OW;
    const i64 c = tap / KHW, kh = tap / s.KW % s.KH, kw = tap % s.KW;
    i64 n = p / OHW, oh = p % OHW / s.OW, ow = p % s.OW;
    for (int e = 0; e < E; ++e) {
      float value = 0.0f;
      if (p + e < p_end) {
        const i64 ih = oh * s.stride_h - s.pad_top + kh, iw = ow * s.stride_w - s.pad_left + kw;
        if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W)
          value = x[((n * s.C + c) * s.H + ih) * s.W + iw];
      }
      v[e] = value;
      if (++ow == s.OW) {
        ow = 0;
        if (++oh == s.OH) oh = 0, ++n;
      }
    }
  }
};

// Forward's B: op(B)[tap][p] = im2col, rows p (from p0), loads along p.
struct ForwardCols {
  Im2col im;
  i64 p0;
  static constexpr bool along_k = false;
  template <int E>
  __device__ __forceinline__ void load(i64 r, i64 k, i64 ke, float (&v)[E]) const {
    if (k >= ke) {
      for (int e = 0; e < E; ++e) v[e] = 0.0f;
      return;
    }
    im.run<E>(k, p0 + r, im.positions, v);
  }
};

// The weight gradient's B: op(B)[p][tap] = im2col, rows taps, loads along p (= k).
struct WeightGradCols {
  Im2col im;
  static constexpr bool along_k = true;
  template <int E>
  __device__ __forceinline__ void load(i64 r, i64 k, i64 ke, float (&v)[E]) const {
    im.run<E>(r, k, ke, v);
  }
};

// dy as an (O, N*OH*OW) matrix, read in place: dy[n][o][oh][ow] for p = (n, oh, ow).
// Weight gradient's A (rows o, k = p, loads along p) or the data gradient's B (rows p from
// p0, k = o, loads along p).
struct DyPlanes {
  const float* dy;
  i64 O, OHW, positions, p0;
  bool along_k;
  template <int E>
  __device__ __forceinline__ void load(i64 r, i64 k, i64 ke, float (&v)[E]) const {
    const i64 o = along_k ? r : k;
    const i64 p = along_k ? k : p0 + r, p_end = along_k ? ke : positions;
    if (o >= (along_k ? O : ke)) {
      for (int e = 0; e < E; ++e) v[e] = 0.0f;
      return;
    }
    i64 n = p / OHW, j = p % OHW;
    for (int e = 0; e < E; ++e) {
      v[e] = p + e < p_end ? dy[(n * O + o) * OHW + j] : 0.0f;
      if (++j == OHW) j = 0, ++n;
    }
  }
};

// An operand whose k index starts at k0 (a group of chunks of the weight gradient).
template <class Op>
struct OffsetK {
  Op op;
  i64 k0;
  bool along_k;
  template <int E>
  __device__ __forceinline__ void load(i64 r, i64 k, i64 ke, float (&v)[E]) const {
    op.template load<E>(r, k0 + k, k0 + ke, v);
  }
};

// Forward's output (O, positions) into y (N, O, OH, OW), + bias[o] after the root.
struct ForwardOut {
  float* y;
  const float* bias;
  i64 O, OHW, p0;
  __device__ void finish(i64 o, i64 p, float root) const {
    y[((p / OHW) * O + o) * OHW + p % OHW] = bias ? root + bias[o] : root;
  }
  __device__ void put(i64, i64 o, i64 q, const float (&v)[4], int count) const {
    for (int j = 0; j < count; ++j) finish(o, p0 + q + j, v[j]);
  }
  __device__ void operator()(i64 o, i64 q, float root) const { finish(o, p0 + q, root); }
};

}  // namespace detdl::cuda::conv_ops
