// The convolution's data gradient as one fused implicit GEMM (conv_data_grad.h): no dcols
// scratch. Block tiles of (channels c) x (input positions q = (n, ih, iw)); for each tap
// (kh, kw) in row-major order the block runs the product over o (W's tap column against
// the dy values that tap reads back from) into a register tile, and adds it to the
// accumulator only where the tap reaches the pixel: exactly the CPU's col2im, which adds
// each tap's canonical dot over o (one chain, O <= 4096) to a zeroed dx in (kh, kw) order.
#include "kernels/cuda/conv_data_grad.h"

#include <algorithm>

#include "kernels/cuda/check.h"
#include "kernels/cuda/gemm_tiles.h"
#include "kernels/cuda/launch.h"

namespace detdl::cuda::detail {
namespace {

using i64 = std::int64_t;
using tiles::kBK;
using tiles::kPad;
using tiles::kThreads;

// The output position that tap (kh, kw) of input pixel (ih, iw) comes from, if any.
__device__ __forceinline__ bool tap_source(const Conv2dShape& s, i64 ih, i64 iw, i64 kh, i64 kw,
                                           i64& oh, i64& ow) {
  const i64 a = ih + s.pad_top - kh, b = iw + s.pad_left - kw;
  if (a < 0 || b < 0 || a % s.stride_h != 0 || b % s.stride_w != 0) return false;
  oh = a / s.stride_h;
  ow = b / s.stride_w;
  return oh < s.OH && ow < s.OW;
}

// op(A)[c][o] = w[o][c][tap]: rows c, k = o; loads along c.
struct TapWeights {
  const float* w;
  i64 C, KHW, tap;
  static constexpr bool along_k = false;
  template <int E>
  __device__ __forceinline__ void load(i64 r, i64 k, i64 ke, float (&v)[E]) const {
    for (int e = 0; e < E; ++e)
      v[e] = (k < ke && r + e < C) ? w[(k * C + r + e) * KHW + tap] : 0.0f;
  }
};

// op(B)[o][q] = dy[n][o][oh][ow] for input position q = (n, ih, iw) and the output (oh, ow)
// that tap (kh, kw) reads back from; 0.0f where there is none. Rows q, k = o; loads along q.
struct TapDy {
  Conv2dShape s;
  const float* dy;
  i64 kh, kw, positions;
  static constexpr bool along_k = false;
  template <int E>
  __device__ __forceinline__ void load(i64 r, i64 k, i64 ke, float (&v)[E]) const {
    const i64 HW = s.H * s.W;
    i64 n = r / HW, ih = r % HW / s.W, iw = r % s.W;
    for (int e = 0; e < E; ++e) {
      i64 oh = 0, ow = 0;
      v[e] = (k < ke && r + e < positions && tap_source(s, ih, iw, kh, kw, oh, ow))
                 ? dy[((n * s.O + k) * s.OH + oh) * s.OW + ow]
                 : 0.0f;
      if (++iw == s.W) {
        iw = 0;
        if (++ih == s.H) ih = 0, ++n;
      }
    }
  }
};

template <int BM, int BN, int TM, int TN>
__global__ void __launch_bounds__(kThreads)
    data_grad_tiles(Conv2dShape s, const float* dy, const float* w, float* dx, i64 positions) {
  DETDL_SHARED(float, As, [2][kBK][BM + kPad]);  // As[b][kk][r] = w[o0 + kk][c0 + r][tap]
  DETDL_SHARED(float, Bs, [2][kBK][BN + kPad]);  // Bs[b][kk][q] = dy the tap reads back
  const i64 c0 = static_cast<i64>(blockIdx.y) * BM, q0 = static_cast<i64>(blockIdx.x) * BN;
  const i64 KHW = s.KH * s.KW, HW = s.H * s.W;

  float acc[TM][TN];
  for (int i = 0; i < TM; ++i)
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;
  for (i64 tap = 0; tap < KHW; ++tap) {
    const i64 kh = tap / s.KW, kw = tap % s.KW;
    float t[TM][TN];  // this tap's dot over o, one fmaf chain in o order from +0.0f
    for (int i = 0; i < TM; ++i)
      for (int j = 0; j < TN; ++j) t[i][j] = 0.0f;
    tiles::chain_range<BM, BN, TM, TN>(TapWeights{w, s.C, KHW, tap},
                                       TapDy{s, dy, kh, kw, positions}, c0, q0, 0, s.O, As, Bs, t);
    // Only taps that reach the pixel are added (adding a +0.0f would turn -0.0f into +0.0f).
    for (int j = 0; j < TN; ++j) {
      const i64 q = q0 + tiles::tile_col<BN, TN>(j);
      i64 oh = 0, ow = 0;
      if (q >= positions || !tap_source(s, q % HW / s.W, q % s.W, kh, kw, oh, ow)) continue;
      for (int i = 0; i < TM; ++i) acc[i][j] = acc[i][j] + t[i][j];
    }
  }
  for (int i = 0; i < TM; ++i) {
    const i64 c = c0 + tiles::tile_row<BM, TM>(i);
    if (c >= s.C) continue;
    for (int j = 0; j < TN; ++j) {
      const i64 q = q0 + tiles::tile_col<BN, TN>(j);
      if (q < positions) dx[((q / HW) * s.C + c) * HW + q % HW] = acc[i][j];
    }
  }
}

}  // namespace

bool conv2d_backward_data_fused(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                                cudaStream_t stream) {
  if (s.O > kChunkProducts) return false;  // the per-tap dot would need its chunk tree
  const i64 positions = s.N * s.H * s.W;
  const bool big = s.C >= 96 && positions >= 96;
  const i64 tile = big ? 128 : 64;
  const i64 tiles_c = tiles::ceil_div(s.C, tile), tiles_q = tiles::ceil_div(positions, tile);
  if (tiles_c > 65535 || tiles_q > 0x7fffffff) return false;
  const dim3 grid(static_cast<unsigned>(tiles_q), static_cast<unsigned>(tiles_c));
  if (big) {
    DETDL_LAUNCH(grid, kThreads, 0, stream, data_grad_tiles<128, 128, 8, 8>)
    (s, dy, w, dx, positions);
  } else {
    DETDL_LAUNCH(grid, kThreads, 0, stream, data_grad_tiles<64, 64, 4, 4>)
    (s, dy, w, dx, positions);
  }
  DETDL_CUDA_CHECK_LAUNCH("data_grad_tiles");
  return true;
}

}  // namespace detdl::cuda::detail
