// CUDA convolution: im2col / gathers around cuda::sgemm; the orders are in conv.h.
#include "kernels/cuda/conv.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/common/reduction.h"
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/reduce.h"

namespace detdl::cuda {
namespace {

using i64 = std::int64_t;

std::atomic<i64> g_budget{i64{64} << 20};

// cols[r][q] = xpad[n][c][ih][iw] for tap r = (c, kh, kw) and flat output position p0 + q of
// the (n, oh, ow) space; 0.0f where the tap falls outside the input (as the CPU's im2col).
__global__ void im2col_kernel(Conv2dShape s, const float* x, i64 p0, i64 P, float* cols) {
  const i64 K = s.C * s.KH * s.KW, OHW = s.OH * s.OW;
  DETDL_GRID_STRIDE(t, K * P) {
    const i64 r = t / P, p = p0 + t % P;
    const i64 c = r / (s.KH * s.KW), kh = (r / s.KW) % s.KH, kw = r % s.KW;
    const i64 n = p / OHW, oh = (p % OHW) / s.OW, ow = p % s.OW;
    const i64 ih = oh * s.stride_h - s.pad_top + kh, iw = ow * s.stride_w - s.pad_left + kw;
    cols[t] = (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W)
                  ? x[((n * s.C + c) * s.H + ih) * s.W + iw]
                  : 0.0f;
  }
}

// dyt[o][q] = dy[n][o][oh][ow] for flat position p0 + q.
__global__ void gather_dy_kernel(Conv2dShape s, const float* dy, i64 p0, i64 P, float* dyt) {
  const i64 OHW = s.OH * s.OW;
  DETDL_GRID_STRIDE(t, s.O * P) {
    const i64 o = t / P, p = p0 + t % P;
    dyt[t] = dy[((p / OHW) * s.O + o) * OHW + p % OHW];
  }
}

// y[n0 + nl][o][j] = out[o][nl * OHW + j] (+ bias[o]) for the samples of a tile.
__global__ void scatter_out_kernel(Conv2dShape s, const float* out, i64 n0, i64 nt,
                                   const float* bias, float* y) {
  const i64 OHW = s.OH * s.OW, P = nt * OHW;
  DETDL_GRID_STRIDE(t, nt * s.O * OHW) {
    const i64 nl = t / (s.O * OHW), o = (t / OHW) % s.O, j = t % OHW;
    const float v = out[o * P + nl * OHW + j];
    y[(n0 * s.O) * OHW + t] = bias ? v + bias[o] : v;
  }
}

// dx pixel (n0 + nl, c, i, j) = +0.0f + dcols[tap][position] over the taps (kh, kw) in
// row-major order whose output position is whole and inside the output.
__global__ void col2im_gather_kernel(Conv2dShape s, const float* dcols, i64 n0, i64 nt, float* dx) {
  const i64 OHW = s.OH * s.OW, P = nt * OHW, HW = s.H * s.W;
  DETDL_GRID_STRIDE(t, nt * s.C * HW) {
    const i64 nl = t / (s.C * HW), c = (t / HW) % s.C, i = (t % HW) / s.W, j = t % s.W;
    float acc = 0.0f;
    for (i64 kh = 0; kh < s.KH; ++kh) {
      const i64 a = i + s.pad_top - kh;
      if (a < 0 || a % s.stride_h != 0 || a / s.stride_h >= s.OH) continue;
      const i64 oh = a / s.stride_h;
      for (i64 kw = 0; kw < s.KW; ++kw) {
        const i64 b = j + s.pad_left - kw;
        if (b < 0 || b % s.stride_w != 0 || b / s.stride_w >= s.OW) continue;
        const i64 ow = b / s.stride_w;
        acc = acc + dcols[((c * s.KH + kh) * s.KW + kw) * P + nl * OHW + oh * s.OW + ow];
      }
    }
    dx[n0 * s.C * HW + t] = acc;
  }
}

// dst = a + b element-wise (a is the left operand: the earlier part of the reduction).
__global__ void add_kernel(const float* a, const float* b, float* dst, i64 n) {
  DETDL_GRID_STRIDE(t, n) dst[t] = a[t] + b[t];
}

void add(const float* a, const float* b, float* dst, i64 n, cudaStream_t stream) {
  DETDL_LAUNCH(grid_for(n), kBlock, 0, stream, add_kernel)(a, b, dst, n);
  DETDL_CUDA_CHECK_LAUNCH("add_kernel");
}

// Samples per forward / data-gradient tile: fits the budget with `per_position` floats per
// output position; at least one sample.
i64 samples_per_tile(const Conv2dShape& s, i64 per_position) {
  return std::max<i64>(1, std::min<i64>(s.N, g_budget.load() / (per_position * s.OH * s.OW)));
}

struct BiasTerm {  // term(o, k) = dy[n][o][hw] with k = n * OHW + hw
  const float* dy;
  i64 O, OHW;
  __device__ float operator()(i64 o, i64 k) const {
    return dy[((k / OHW) * O + o) * OHW + k % OHW];
  }
  struct Walk {  // the same terms without a division per term (reduce.h PlaneWalk)
    const float* dy;
    detail::PlaneWalk w;
    __device__ float next() { return dy[w.next()]; }
  };
  __device__ Walk chunk(i64 o, i64 k0) const {
    return Walk{dy, detail::PlaneWalk(o, k0, OHW, OHW, O * OHW)};
  }
};

}  // namespace

void set_conv_scratch_budget(i64 floats) {
  if (floats < 1)
    throw std::invalid_argument("cuda::set_conv_scratch_budget: floats must be >= 1, got " +
                                std::to_string(floats));
  g_budget.store(floats);
}
i64 conv_scratch_budget() { return g_budget.load(); }

void conv2d_forward(Level level, const Conv2dShape& s, const float* x, const float* w,
                    const float* bias, float* y, cudaStream_t stream) {
  check_conv2d_shape(s);
  const i64 K = s.C * s.KH * s.KW, OHW = s.OH * s.OW;
  const i64 tile = samples_per_tile(s, K + s.O);
  DeviceBuffer<float> cols(static_cast<std::size_t>(K * tile * OHW), stream);
  DeviceBuffer<float> out(static_cast<std::size_t>(s.O * tile * OHW), stream);
  for (i64 n0 = 0; n0 < s.N; n0 += tile) {
    const i64 nt = std::min(tile, s.N - n0), P = nt * OHW;
    DETDL_LAUNCH(grid_for(K * P), kBlock, 0, stream, im2col_kernel)(s, x, n0 * OHW, P, cols.get());
    DETDL_CUDA_CHECK_LAUNCH("im2col_kernel");
    sgemm(level, false, false, s.O, P, K, w, K, cols.get(), P, out.get(), P, stream);
    DETDL_LAUNCH(grid_for(nt * s.O * OHW), kBlock, 0, stream, scatter_out_kernel)
    (s, out.get(), n0, nt, bias, y);
    DETDL_CUDA_CHECK_LAUNCH("scatter_out_kernel");
  }
}

void conv2d_backward_data(Level level, const Conv2dShape& s, const float* dy, const float* w,
                          float* dx, cudaStream_t stream) {
  check_conv2d_shape(s);
  const i64 K = s.C * s.KH * s.KW, OHW = s.OH * s.OW;
  const i64 tile = samples_per_tile(s, K + s.O);
  DeviceBuffer<float> dyt(static_cast<std::size_t>(s.O * tile * OHW), stream);
  DeviceBuffer<float> dcols(static_cast<std::size_t>(K * tile * OHW), stream);
  for (i64 n0 = 0; n0 < s.N; n0 += tile) {
    const i64 nt = std::min(tile, s.N - n0), P = nt * OHW;
    DETDL_LAUNCH(grid_for(s.O * P), kBlock, 0, stream, gather_dy_kernel)
    (s, dy, n0 * OHW, P, dyt.get());
    DETDL_CUDA_CHECK_LAUNCH("gather_dy_kernel");
    sgemm(level, true, false, K, P, s.O, w, K, dyt.get(), P, dcols.get(), P, stream);
    DETDL_LAUNCH(grid_for(nt * s.C * s.H * s.W), kBlock, 0, stream, col2im_gather_kernel)
    (s, dcols.get(), n0, nt, dx);
    DETDL_CUDA_CHECK_LAUNCH("col2im_gather_kernel");
  }
}

void conv2d_backward_weight(Level level, const Conv2dShape& s, const float* x, const float* dy,
                            float* dw, cudaStream_t stream) {
  check_conv2d_shape(s);
  const i64 K = s.C * s.KH * s.KW, total = s.N * s.OH * s.OW, per_position = K + s.O,
            size = s.O * K;
  // One tile when the whole reduction fits; else tiles of 2^g whole chunks (subtrees).
  i64 tile = total;
  if (per_position * total > g_budget.load()) {
    tile = kChunkProducts;
    while (tile * 2 < total && tile * 2 * per_position <= g_budget.load()) tile *= 2;
  }
  const i64 ntiles = (total + tile - 1) / tile;
  DeviceBuffer<float> cols(static_cast<std::size_t>(K * tile), stream);
  DeviceBuffer<float> dyt(static_cast<std::size_t>(s.O * tile), stream);
  auto tile_gemm = [&](i64 t, float* out) {  // out (O, K) = dY (O, P) * cols (K, P)^T
    const i64 p0 = t * tile, P = std::min(total, p0 + tile) - p0;
    DETDL_LAUNCH(grid_for(K * P), kBlock, 0, stream, im2col_kernel)(s, x, p0, P, cols.get());
    DETDL_CUDA_CHECK_LAUNCH("im2col_kernel");
    DETDL_LAUNCH(grid_for(s.O * P), kBlock, 0, stream, gather_dy_kernel)(s, dy, p0, P, dyt.get());
    DETDL_CUDA_CHECK_LAUNCH("gather_dy_kernel");
    sgemm(level, false, true, s.O, K, P, dyt.get(), P, cols.get(), P, out, K, stream);
  };
  if (ntiles == 1) {
    tile_gemm(0, dw);
    return;
  }
  if (level == Level::fast) {  // tiles added in tile order, no tree
    DeviceBuffer<float> part(static_cast<std::size_t>(size), stream);
    tile_gemm(0, dw);
    for (i64 t = 1; t < ntiles; ++t) {
      tile_gemm(t, part.get());
      add(dw, part.get(), dw, size, stream);
    }
    return;
  }
  // Binary-counter stack of tile results (ChunkTree::push per element), then the fold.
  std::vector<std::unique_ptr<DeviceBuffer<float>>> slots;
  std::vector<int> height;
  int depth = 0;
  for (i64 t = 0; t < ntiles; ++t) {
    if (static_cast<int>(slots.size()) <= depth) {
      slots.push_back(
          std::make_unique<DeviceBuffer<float>>(static_cast<std::size_t>(size), stream));
      height.push_back(0);
    }
    tile_gemm(t, slots[depth]->get());
    int h = 0;
    while (depth > 0 && height[depth - 1] == h) {
      add(slots[depth - 1]->get(), slots[depth]->get(), slots[depth - 1]->get(), size, stream);
      --depth;
      ++h;
    }
    height[depth++] = h;
  }
  DETDL_CUDA_CHECK(cudaMemcpyAsync(dw, slots[depth - 1]->get(), size * sizeof(float),
                                   cudaMemcpyDeviceToDevice, stream));
  for (int d = depth - 2; d >= 0; --d) add(slots[d]->get(), dw, dw, size, stream);
}

void conv2d_backward_bias(Level level, const Conv2dShape& s, const float* dy, float* db,
                          cudaStream_t stream) {
  check_conv2d_shape(s);
  const i64 OHW = s.OH * s.OW;
  detail::value_reduce(level, s.O, s.N * OHW, BiasTerm{dy, s.O, OHW}, detail::StoreSum{db}, stream);
}

}  // namespace detdl::cuda
