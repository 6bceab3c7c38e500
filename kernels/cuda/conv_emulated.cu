// The `emulated` level's conv and scatter families on CUDA (conv.h, "emulated"): the CPU's
// emulated_conv.h orders on the implicit-GEMM tiles of conv.cu, bit for bit.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/common/reduction.h"
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/conv.h"
#include "kernels/cuda/conv_operands.h"
#include "kernels/cuda/gemm_tiles.h"
#include "kernels/cuda/launch.h"

namespace detdl::cuda {
namespace {

using namespace conv_ops;

// An operand over the taps (c, kh, kw) read in (kh, kw, c) order from k0 on: k' maps to
// tap ((k0 + k') % C) * T + (k0 + k') / C. Slice [t C, (t+1) C) of that order is tap t's
// chain over c (the per-tap algorithm). Loads along k fetch each value alone (the map
// breaks contiguity); loads across rows keep the wrapped operand's vector loads.
template <class Op>
struct HwcK {
  Op op;
  i64 C, T, k0;
  bool along_k;
  __device__ __forceinline__ i64 tap(i64 k) const {
    const i64 q = k0 + k;
    return (q % C) * T + q / C;
  }
  template <int E>
  __device__ __forceinline__ void load(i64 r, i64 k, i64 ke, float (&v)[E]) const {
    if (along_k) {
      for (int e = 0; e < E; ++e) {
        float one[1] = {0.0f};
        if (k + e < ke) {
          const i64 m = tap(k + e);
          op.template load<1>(r, m, m + 1, one);
        }
        v[e] = one[0];
      }
    } else if (k < ke) {
      const i64 m = tap(k);
      op.template load<E>(r, m, m + 1, v);
    } else {
      for (int e = 0; e < E; ++e) v[e] = 0.0f;
    }
  }
};

// dx pixel (n0 + nl, c, i, j) = +0.0f + dcols[tap][position] over the taps in `order`
// (T device tap indices kh * KW + kw) whose output position is whole and inside the
// output: the CPU's col2im into a zeroed dx, one tap after another.
__global__ void col2im_gather_ordered(Conv2dShape s, const float* dcols, i64 n0, i64 nt,
                                      const std::int32_t* order, float* dx) {
  const i64 OHW = s.OH * s.OW, P = nt * OHW, HW = s.H * s.W, T = s.KH * s.KW;
  DETDL_GRID_STRIDE(t, nt * s.C * HW) {
    const i64 nl = t / (s.C * HW), c = (t / HW) % s.C, i = (t % HW) / s.W, j = t % s.W;
    float acc = 0.0f;
    for (i64 q = 0; q < T; ++q) {
      const i64 kh = order[q] / s.KW, kw = order[q] % s.KW;
      const i64 a = i + s.pad_top - kh, b = j + s.pad_left - kw;
      if (a < 0 || a % s.stride_h != 0 || a / s.stride_h >= s.OH) continue;
      if (b < 0 || b % s.stride_w != 0 || b / s.stride_w >= s.OW) continue;
      const i64 oh = a / s.stride_h, ow = b / s.stride_w;
      acc = acc + dcols[((c * s.KH + kh) * s.KW + kw) * P + nl * OHW + oh * s.OW + ow];
    }
    dx[n0 * s.C * HW + t] = acc;
  }
}

// The canonical reduction of length K as a plan: chunks of kChunkProducts, the pairwise
// tree over them (one chunk: one chain).
EmulatedGemmPlan canonical_plan(i64 K) {
  EmulatedGemmPlan p;
  p.cuts.clear();
  for (i64 k = 0; k < K; k += kChunkProducts) p.cuts.push_back(k);
  p.cuts.push_back(K);
  if (p.cuts.size() < 2) p.cuts.insert(p.cuts.begin(), 0);
  p.combine = SplitCombine::tree;
  return p;
}

void check_plan(const EmulatedGemmPlan& p, i64 K, const char* where) {
  if (p.slices() < 1 || p.cuts.front() != 0 || p.cuts.back() != K)
    throw std::invalid_argument(std::string(where) + ": the plan's slices do not cover " +
                                std::to_string(K));
}

}  // namespace

void conv2d_forward(ConvAlgo algo, const Conv2dShape& s, const float* x, const float* w,
                    const float* bias, float* y, cudaStream_t stream) {
  const i64 T = s.KH * s.KW;
  // The canonical kernel is im2col_chw; with one tap every order is one chain over c.
  if (algo == ConvAlgo::im2col_chw) {
    conv2d_forward(Level::portable, s, x, w, bias, y, stream);
    return;
  }
  check_conv2d_shape(s);
  const i64 taps = s.C * T, OHW = s.OH * s.OW, positions = s.N * OHW;
  const tiles::Dense a{w, taps, s.O, true, tiles::aligned16(w, taps)};
  const Im2col im{s, x, taps, positions};
  auto op_a = [&](i64 k0) { return HwcK<tiles::Dense>{a, s.C, T, k0, true}; };
  auto op_b = [&](i64 k0, i64 p0) {
    return HwcK<ForwardCols>{ForwardCols{im, p0}, s.C, T, k0, false};
  };
  if (algo == ConvAlgo::im2col_hwc || T == 1) {  // one chain over (kh, kw, c), + bias
    tiles::launch(s.O, positions, taps, op_a(0), op_b(0, 0), 1, std::max<i64>(taps, 1),
                  ForwardOut{y, bias, s.O, OHW, 0}, stream);
    return;
  }
  // per_tap: each tap's chain over c into scratch (panels of positions under the budget),
  // the taps added in (kh, kw) order from +0.0f, + bias.
  const i64 panel = tiles::panel_rows(conv_scratch_budget(), T, s.O, positions);
  DeviceBuffer<float> parts(static_cast<std::size_t>(T * s.O * panel), stream);
  for (i64 p0 = 0; p0 < positions; p0 += panel) {
    const i64 P = std::min(panel, positions - p0);
    for (i64 t = 0; t < T; ++t)
      tiles::launch(s.O, P, s.C, op_a(t * s.C), op_b(t * s.C, p0), 1, std::max<i64>(s.C, 1),
                    tiles::dense_out<false>(parts.get() + t * s.O * P, P, 0), stream);
    tiles::combine(s.O, P, T, SplitCombine::arrival, tiles::PartsOrder{{}, false}, parts.get(),
                   ForwardOut{y, bias, s.O, OHW, p0}, stream);
  }
}

void conv2d_backward_data(const EmulatedGemmPlan* plan, const std::int32_t* tap_order,
                          const Conv2dShape& s, const float* dy, const float* w, float* dx,
                          cudaStream_t stream) {
  if (!plan && !tap_order) {
    conv2d_backward_data(Level::portable, s, dy, w, dx, stream);
    return;
  }
  check_conv2d_shape(s);
  const i64 T = s.KH * s.KW, taps = s.C * T, OHW = s.OH * s.OW, positions = s.N * OHW;
  const EmulatedGemmPlan p = plan ? *plan : canonical_plan(s.O);
  check_plan(p, s.O, "cuda::conv2d_backward_data");
  const i64 S = p.slices();
  // The tap order on the device (row-major when none is given).
  std::vector<std::int32_t> host(static_cast<std::size_t>(T));
  if (tap_order)
    std::copy(tap_order, tap_order + T, host.begin());
  else
    std::iota(host.begin(), host.end(), 0);
  const DeviceBuffer<std::int32_t> order = upload(host, stream);
  // dcols (taps, P) = W^T (taps, O) * dY (O, P) per tile of samples, dY read in place.
  const tiles::Dense a{w, taps, taps, false, tiles::aligned16(w, taps)};
  const i64 per_position = taps * (S > 1 ? S + 1 : 1);
  const i64 tile = std::max<i64>(
      1, std::min<i64>(s.N, conv_scratch_budget() / std::max<i64>(1, per_position * OHW)));
  DeviceBuffer<float> dcols(static_cast<std::size_t>(std::max<i64>(1, taps * tile * OHW)), stream);
  DeviceBuffer<float> parts(static_cast<std::size_t>(S > 1 ? S * taps * tile * OHW : 1), stream);
  for (i64 n0 = 0; n0 < s.N; n0 += tile) {
    const i64 nt = std::min(tile, s.N - n0), P = nt * OHW;
    const DyPlanes b{dy, s.O, OHW, positions, n0 * OHW, false};
    if (S == 1) {
      tiles::launch(taps, P, s.O, a, b, 1, std::max<i64>(s.O, 1),
                    tiles::dense_out<false>(dcols.get(), P, 0), stream);
    } else {
      for (i64 j = 0; j < S; ++j) {
        const i64 k0 = p.cuts[j], len = p.cuts[j + 1] - k0;
        tiles::launch(taps, P, len, OffsetK<tiles::Dense>{a, k0, false},
                      OffsetK<DyPlanes>{b, k0, false}, 1, std::max<i64>(len, 1),
                      tiles::dense_out<false>(parts.get() + j * taps * P, P, 0), stream);
      }
      tiles::combine(taps, P, S, p.combine,
                     tiles::parts_order(plan ? p.order : std::vector<std::int32_t>{}, S),
                     parts.get(), tiles::DenseFinish{dcols.get(), P}, stream);
    }
    DETDL_LAUNCH(grid_for(nt * s.C * s.H * s.W), kBlock, 0, stream, col2im_gather_ordered)
    (s, dcols.get(), n0, nt, order.get(), dx);
    DETDL_CUDA_CHECK_LAUNCH("col2im_gather_ordered");
  }
}

void conv2d_backward_weight(const WeightGradPlan& plan, const Conv2dShape& s, const float* x,
                            const float* dy, float* dw, cudaStream_t stream) {
  check_conv2d_shape(s);
  const i64 taps = s.C * s.KH * s.KW, OHW = s.OH * s.OW, positions = s.N * OHW;
  const i64 G = plan.groups, size = s.O * taps;
  if (G < 1 || G > s.N || static_cast<i64>(plan.order.size()) != G)
    throw std::invalid_argument("cuda::conv2d_backward_weight: bad plan for N = " +
                                std::to_string(s.N));
  // dW (O, taps) = dY (O, positions) * cols^T: group g is one chain over its positions.
  const DyPlanes a{dy, s.O, OHW, positions, 0, true};
  const WeightGradCols b{Im2col{s, x, taps, positions}};
  if (G == 1) {
    tiles::launch(s.O, taps, positions, a, b, 1, std::max<i64>(positions, 1),
                  tiles::dense_out<false>(dw, taps, 0), stream);
    return;
  }
  DeviceBuffer<float> parts(static_cast<std::size_t>(G * size), stream);
  for (i64 g = 0; g < G; ++g) {
    const i64 k0 = s.N * g / G * OHW, len = s.N * (g + 1) / G * OHW - k0;
    tiles::launch(s.O, taps, len, OffsetK<DyPlanes>{a, k0, true},
                  OffsetK<WeightGradCols>{b, k0, true}, 1, std::max<i64>(len, 1),
                  tiles::dense_out<false>(parts.get() + g * size, taps, 0), stream);
  }
  tiles::combine(s.O, taps, G, plan.combine, tiles::parts_order(plan.order, G), parts.get(),
                 tiles::DenseFinish{dw, taps}, stream);
}

}  // namespace detdl::cuda
