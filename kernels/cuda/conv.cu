// CUDA convolution as implicit GEMM on the tile kernel of gemm_tiles.h: the im2col
// matrix and the gathered dy are read from the tensors as the tiles need them; the orders
// are in conv.h.
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
#include "kernels/cuda/conv_data_grad.h"
#include "kernels/cuda/conv_operands.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemm_tiles.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.h"

namespace detdl::cuda {
namespace {

using i64 = std::int64_t;
using namespace conv_ops;

std::atomic<i64> g_budget{i64{64} << 20};

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

// Samples per forward / data-gradient tile: fits the budget with `per_position` floats per
// output position; at least one sample.
i64 samples_per_tile(const Conv2dShape& s, i64 per_position) {
  return std::max<i64>(1, std::min<i64>(s.N, g_budget.load() / (per_position * s.OH * s.OW)));
}

struct BiasTerm {  // term(o, k) = dy[n][o][hw] with k = n * OHW + hw
  const float* dy;
  i64 O, OHW;
  struct Walk {  // walked without a division per term (reduce.h PlaneWalk)
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
  const i64 taps = s.C * s.KH * s.KW, OHW = s.OH * s.OW, positions = s.N * OHW;
  // y (O, positions) = W (O, taps) * cols (taps, positions), cols gathered from x.
  const tiles::Dense a{w, taps, s.O, true, tiles::aligned16(w, taps)};
  const Im2col im{s, x, taps, positions};
  const i64 chunks = level == Level::fast ? 1 : tiles::ceil_div(taps, kChunkProducts);
  if (chunks <= 1) {  // one chain per output (`fast`: always), + bias, straight into y
    tiles::launch(s.O, positions, taps, a, ForwardCols{im, 0}, 1, std::max<i64>(taps, 1),
                  ForwardOut{y, bias, s.O, OHW, 0}, stream);
    return;
  }
  // Chunk partials per panel of positions (under the scratch budget), folded into y.
  const i64 panel = tiles::panel_rows(g_budget.load(), chunks, s.O, positions);
  DeviceBuffer<float> partials(static_cast<std::size_t>(chunks * s.O * panel), stream);
  for (i64 p0 = 0; p0 < positions; p0 += panel) {
    const i64 P = std::min(panel, positions - p0);
    tiles::launch(s.O, P, taps, a, ForwardCols{im, p0}, chunks, kChunkProducts,
                  tiles::dense_out<false>(partials.get(), P, s.O * P), stream);
    tiles::fold(s.O, P, chunks, partials.get(), ForwardOut{y, bias, s.O, OHW, p0}, stream);
  }
}

void conv2d_backward_data(Level level, const Conv2dShape& s, const float* dy, const float* w,
                          float* dx, cudaStream_t stream) {
  check_conv2d_shape(s);
  // One fused implicit GEMM (conv_data_grad.h) whenever each tap's dot is one chunk.
  if (detail::conv2d_backward_data_fused(s, dy, w, dx, stream)) return;
  const i64 taps = s.C * s.KH * s.KW, OHW = s.OH * s.OW, positions = s.N * OHW;
  // O > 4096: per tile of samples, dcols (taps, P) = W^T (taps, O) * dY (O, P) with the
  // chunk tree over o, dY read in place; then the col2im gather into dx.
  const tiles::Dense a{w, taps, taps, false, tiles::aligned16(w, taps)};
  const i64 chunks = level == Level::fast ? 1 : tiles::ceil_div(s.O, kChunkProducts);
  const i64 tile = samples_per_tile(s, taps * std::max<i64>(chunks, 1) + taps);
  DeviceBuffer<float> dcols(static_cast<std::size_t>(taps * tile * OHW), stream);
  DeviceBuffer<float> partials(
      static_cast<std::size_t>(chunks > 1 ? chunks * taps * tile * OHW : 1), stream);
  for (i64 n0 = 0; n0 < s.N; n0 += tile) {
    const i64 nt = std::min(tile, s.N - n0), P = nt * OHW;
    const DyPlanes b{dy, s.O, OHW, positions, n0 * OHW, false};
    if (chunks <= 1) {
      tiles::launch(taps, P, s.O, a, b, 1, std::max<i64>(s.O, 1),
                    tiles::dense_out<false>(dcols.get(), P, 0), stream);
    } else {
      tiles::launch(taps, P, s.O, a, b, chunks, kChunkProducts,
                    tiles::dense_out<false>(partials.get(), P, taps * P), stream);
      tiles::fold(taps, P, chunks, partials.get(), tiles::DenseFinish{dcols.get(), P}, stream);
    }
    DETDL_LAUNCH(grid_for(nt * s.C * s.H * s.W), kBlock, 0, stream, col2im_gather_kernel)
    (s, dcols.get(), n0, nt, dx);
    DETDL_CUDA_CHECK_LAUNCH("col2im_gather_kernel");
  }
}

void conv2d_backward_weight(Level level, const Conv2dShape& s, const float* x, const float* dy,
                            float* dw, cudaStream_t stream) {
  check_conv2d_shape(s);
  const i64 taps = s.C * s.KH * s.KW, OHW = s.OH * s.OW, positions = s.N * OHW;
  // dW (O, taps) = dY (O, positions) * cols^T (positions, taps): one reduction over the
  // flattened (n, oh, ow), both operands read in place.
  const DyPlanes a{dy, s.O, OHW, positions, 0, true};
  const WeightGradCols b{Im2col{s, x, taps, positions}};
  const auto direct = tiles::dense_out<false>(dw, taps, 0);
  if (level == Level::fast) {
    const i64 pieces = tiles::fast_pieces(s.O, taps, positions);
    if (pieces == 1) {
      tiles::launch(s.O, taps, positions, a, b, 1, std::max<i64>(positions, 1), direct, stream);
      return;
    }
    // Split-K: pieces of positions chained per block, added by atomics in arrival order.
    const i64 piece = tiles::ceil_div(tiles::ceil_div(positions, pieces), tiles::kBK) * tiles::kBK;
    DETDL_CUDA_CHECK(
        cudaMemsetAsync(dw, 0, static_cast<std::size_t>(s.O * taps) * sizeof(float), stream));
    tiles::launch(s.O, taps, positions, a, b, tiles::ceil_div(positions, piece), piece,
                  tiles::dense_out<true>(dw, taps, 0), stream);
    return;
  }
  const i64 chunks = std::max<i64>(1, tiles::ceil_div(positions, kChunkProducts));
  if (chunks == 1) {
    tiles::launch(s.O, taps, positions, a, b, 1, kChunkProducts, direct, stream);
    return;
  }
  // Chunk partials in groups of 2^g chunks that start at multiples of 2^g (subtrees of the
  // canonical tree, the last one shorter): each group is folded to its root, then the
  // roots are folded in group order, which is the canonical root bit for bit.
  const i64 size = s.O * taps;
  i64 group = 1;
  while (group < chunks && 2 * group * size <= g_budget.load()) group *= 2;
  if (group >= chunks) group = chunks;
  const i64 groups = tiles::ceil_div(chunks, group);
  DeviceBuffer<float> partials(static_cast<std::size_t>(group * size), stream);
  if (groups == 1) {
    tiles::launch(s.O, taps, positions, a, b, chunks, kChunkProducts,
                  tiles::dense_out<false>(partials.get(), taps, size), stream);
    tiles::fold(s.O, taps, chunks, partials.get(), tiles::DenseFinish{dw, taps}, stream);
    return;
  }
  DeviceBuffer<float> roots(static_cast<std::size_t>(groups * size), stream);
  for (i64 g = 0; g < groups; ++g) {
    const i64 k0 = g * group * kChunkProducts;
    const i64 in_group = std::min(group, chunks - g * group);
    // The group's positions [k0, k0 + in_group * 4096), as k from 0.
    const i64 length = std::min(positions - k0, in_group * kChunkProducts);
    tiles::launch(s.O, taps, length, OffsetK<DyPlanes>{a, k0, a.along_k},
                  OffsetK<WeightGradCols>{b, k0, b.along_k}, in_group, kChunkProducts,
                  tiles::dense_out<false>(partials.get(), taps, size), stream);
    tiles::fold(s.O, taps, in_group, partials.get(),
                tiles::DenseFinish{roots.get() + g * size, taps}, stream);
  }
  tiles::fold(s.O, taps, groups, roots.get(), tiles::DenseFinish{dw, taps}, stream);
}

void conv2d_backward_bias(const SumOrder& order, const Conv2dShape& s, const float* dy, float* db,
                          cudaStream_t stream) {
  check_conv2d_shape(s);
  const i64 OHW = s.OH * s.OW;
  detail::value_reduce(order, s.O, s.N * OHW, BiasTerm{dy, s.O, OHW}, detail::StoreSum{db}, stream);
}

}  // namespace detdl::cuda
