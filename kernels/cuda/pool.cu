// CUDA pooling; the orders are in pool.h (and kernels/cpu/pool.h).
#include "kernels/cuda/pool.h"

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/common/detmath.h"
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.h"

namespace detdl::cuda {
namespace {

using i64 = std::int64_t;

// Window taps [lo, hi) of output index o that land inside [0, size) (the CPU's taps()).
struct Taps {
  i64 lo, hi;
};
__device__ Taps taps(i64 o, i64 stride, i64 pad, i64 k_size, i64 size) {
  const i64 start = o * stride - pad;
  const i64 lo = start < 0 ? -start : 0;
  i64 hi = size - start < k_size ? size - start : k_size;
  return {lo, hi > lo ? hi : lo};
}

__device__ i64 window_count(const Pool2dShape& s, bool include_pad, const Taps& r, const Taps& c) {
  return include_pad ? s.KH * s.KW : (r.hi - r.lo) * (c.hi - c.lo);
}

// Outputs [lo, hi) along one axis whose window (o*stride - pad + [0, k_size)) holds input i.
__device__ Taps outputs_holding(i64 i, i64 stride, i64 pad, i64 k_size, i64 out) {
  // o*stride - pad <= i  and  i <= o*stride - pad + k_size - 1
  const i64 a = i + pad - k_size + 1;  // o >= ceil(a / stride)
  i64 lo = a <= 0 ? 0 : (a + stride - 1) / stride;
  i64 hi = (i + pad) / stride + 1;  // o <= floor((i + pad) / stride); i + pad >= 0
  if (hi > out) hi = out;
  return {lo, hi > lo ? hi : lo};
}

__global__ void maxpool_fwd_kernel(Pool2dShape s, const float* x, float* y, std::int32_t* argmax) {
  const i64 OHW = s.OH * s.OW;
  DETDL_GRID_STRIDE(t, s.N * s.C * OHW) {
    const i64 p = t / OHW, oh = (t % OHW) / s.OW, ow = t % s.OW;
    const float* xp = x + p * s.H * s.W;
    const Taps r = taps(oh, s.stride_h, s.pad_top, s.KH, s.H),
               c = taps(ow, s.stride_w, s.pad_left, s.KW, s.W);
    float best = -det_inf();
    i64 at = -1;
    for (i64 kh = r.lo; kh < r.hi; ++kh) {
      const i64 row = (oh * s.stride_h - s.pad_top + kh) * s.W;
      for (i64 kw = c.lo; kw < c.hi; ++kw) {
        const i64 i = row + ow * s.stride_w - s.pad_left + kw;
        const float v = xp[i];
        if (at < 0 || v > best || (det_isnan(v) && !det_isnan(best))) {
          best = v;
          at = i;
        }
      }
    }
    y[t] = best;
    argmax[t] = static_cast<std::int32_t>(at);
  }
}

// add(oh, ow) for the outputs in [rows) x [cols), in (oh, ow) row-major order (rank null)
// or in increasing rank[oh * OW + ow] (the scatter family's drawn arrival order; each step
// takes the smallest rank above the last one: no per-thread list).
template <class Add>
__device__ void for_outputs(const Taps& rows, const Taps& cols, i64 OW, const std::int32_t* rank,
                            const Add& add) {
  if (!rank) {
    for (i64 oh = rows.lo; oh < rows.hi; ++oh)
      for (i64 ow = cols.lo; ow < cols.hi; ++ow) add(oh, ow);
    return;
  }
  std::int32_t last = -1;
  for (;;) {
    std::int32_t best = 0x7fffffff;
    i64 at = -1;
    for (i64 oh = rows.lo; oh < rows.hi; ++oh)
      for (i64 ow = cols.lo; ow < cols.hi; ++ow) {
        const std::int32_t r = rank[oh * OW + ow];
        if (r > last && r < best) best = r, at = oh * OW + ow;
      }
    if (at < 0) return;
    add(at / OW, at % OW);
    last = best;
  }
}

__global__ void maxpool_bwd_kernel(Pool2dShape s, const float* dy, const std::int32_t* argmax,
                                   const std::int32_t* rank, float* dx) {
  const i64 HW = s.H * s.W, OHW = s.OH * s.OW;
  DETDL_GRID_STRIDE(t, s.N * s.C * HW) {
    const i64 p = t / HW, ih = (t % HW) / s.W, iw = t % s.W;
    const std::int32_t me = static_cast<std::int32_t>(t % HW);
    const Taps rows = outputs_holding(ih, s.stride_h, s.pad_top, s.KH, s.OH);
    const Taps cols = outputs_holding(iw, s.stride_w, s.pad_left, s.KW, s.OW);
    float acc = 0.0f;
    for_outputs(rows, cols, s.OW, rank, [&](i64 oh, i64 ow) {
      const i64 j = p * OHW + oh * s.OW + ow;
      if (argmax[j] == me) acc = acc + dy[j];
    });
    dx[t] = acc;
  }
}

__global__ void avgpool_fwd_kernel(Pool2dShape s, bool include_pad, const float* x, float* y) {
  const i64 OHW = s.OH * s.OW;
  DETDL_GRID_STRIDE(t, s.N * s.C * OHW) {
    const i64 p = t / OHW, oh = (t % OHW) / s.OW, ow = t % s.OW;
    const float* xp = x + p * s.H * s.W;
    const Taps r = taps(oh, s.stride_h, s.pad_top, s.KH, s.H),
               c = taps(ow, s.stride_w, s.pad_left, s.KW, s.W);
    float sum = 0.0f;
    for (i64 kh = r.lo; kh < r.hi; ++kh) {
      const i64 base = (oh * s.stride_h - s.pad_top + kh) * s.W + ow * s.stride_w - s.pad_left;
      for (i64 kw = c.lo; kw < c.hi; ++kw) sum = sum + xp[base + kw];
    }
    const i64 count = window_count(s, include_pad, r, c);
    y[t] = count > 0 ? sum / static_cast<float>(count) : 0.0f;
  }
}

__global__ void avgpool_bwd_kernel(Pool2dShape s, bool include_pad, const float* dy,
                                   const std::int32_t* rank, float* dx) {
  const i64 HW = s.H * s.W, OHW = s.OH * s.OW;
  DETDL_GRID_STRIDE(t, s.N * s.C * HW) {
    const i64 p = t / HW, ih = (t % HW) / s.W, iw = t % s.W;
    const Taps rows = outputs_holding(ih, s.stride_h, s.pad_top, s.KH, s.OH);
    const Taps cols = outputs_holding(iw, s.stride_w, s.pad_left, s.KW, s.OW);
    float acc = 0.0f;
    for_outputs(rows, cols, s.OW, rank, [&](i64 oh, i64 ow) {
      const Taps r = taps(oh, s.stride_h, s.pad_top, s.KH, s.H);
      const Taps c = taps(ow, s.stride_w, s.pad_left, s.KW, s.W);
      const i64 count = window_count(s, include_pad, r, c);
      if (count == 0) return;  // cannot happen for a window that holds a pixel
      acc = acc + dy[p * OHW + oh * s.OW + ow] / static_cast<float>(count);
    });
    dx[t] = acc;
  }
}

struct PlaneTerm {  // term(p, k) = x[p * HW + k]
  const float* x;
  i64 HW;
  __device__ float operator()(i64 p, i64 k) const { return x[p * HW + k]; }
};
struct StoreMean {
  float* y;
  float count;
  __device__ void operator()(i64 p, float sum) const { y[p] = sum / count; }
};

__global__ void global_avg_bwd_kernel(i64 planes, i64 HW, float count, const float* dy, float* dx) {
  DETDL_GRID_STRIDE(t, planes * HW) dx[t] = dy[t / HW] / count;
}

void require_positive(const char* field, i64 v) {
  if (v < 1)
    throw std::invalid_argument(std::string("cuda::global_avgpool: ") + field +
                                " must be >= 1, got " + std::to_string(v));
}

}  // namespace

void maxpool2d_forward(const Pool2dShape& s, const float* x, float* y, std::int32_t* argmax,
                       cudaStream_t stream) {
  check_pool2d_shape(s);
  const i64 n = s.N * s.C * s.OH * s.OW;
  DETDL_LAUNCH(grid_for(n), kBlock, 0, stream, maxpool_fwd_kernel)(s, x, y, argmax);
  DETDL_CUDA_CHECK_LAUNCH("maxpool_fwd_kernel");
}

void maxpool2d_backward(const Pool2dShape& s, const float* dy, const std::int32_t* argmax,
                        float* dx, cudaStream_t stream) {
  check_pool2d_shape(s);
  const i64 n = s.N * s.C * s.H * s.W;
  DETDL_LAUNCH(grid_for(n), kBlock, 0, stream, maxpool_bwd_kernel)(s, dy, argmax, nullptr, dx);
  DETDL_CUDA_CHECK_LAUNCH("maxpool_bwd_kernel");
}

namespace {

// The ranks of the outputs in the scatter draw's arrival order (rank[j] = the place of
// output j), on the device; empty (null) where the canonical order runs: canonical drawn,
// or no overlapping windows (every input then has at most one contribution).
struct ArrivalRanks {
  std::optional<DeviceBuffer<std::int32_t>> rank;  // only where the order is drawn
  ArrivalRanks(ScatterOrder order, const ImplDraw& d, const Pool2dShape& s, cudaStream_t stream) {
    if (order != ScatterOrder::arrival || !pool_windows_overlap(s)) return;
    const std::vector<i64> perm = pool_arrival_order(d, s);
    std::vector<std::int32_t> host(perm.size());
    for (std::size_t q = 0; q < perm.size(); ++q)
      host[static_cast<std::size_t>(perm[q])] = static_cast<std::int32_t>(q);
    rank.emplace(upload(host, stream));
  }
  const std::int32_t* get() const { return rank ? rank->get() : nullptr; }
};

}  // namespace

void maxpool2d_backward(ScatterOrder order, const ImplDraw& d, const Pool2dShape& s,
                        const float* dy, const std::int32_t* argmax, float* dx,
                        cudaStream_t stream) {
  check_pool2d_shape(s);
  const ArrivalRanks ranks(order, d, s, stream);
  DETDL_LAUNCH(grid_for(s.N * s.C * s.H * s.W), kBlock, 0, stream, maxpool_bwd_kernel)
  (s, dy, argmax, ranks.get(), dx);
  DETDL_CUDA_CHECK_LAUNCH("maxpool_bwd_kernel");
}

void avgpool2d_backward(ScatterOrder order, const ImplDraw& d, const Pool2dShape& s,
                        bool count_include_pad, const float* dy, float* dx, cudaStream_t stream) {
  check_pool2d_shape(s);
  const ArrivalRanks ranks(order, d, s, stream);
  DETDL_LAUNCH(grid_for(s.N * s.C * s.H * s.W), kBlock, 0, stream, avgpool_bwd_kernel)
  (s, count_include_pad, dy, ranks.get(), dx);
  DETDL_CUDA_CHECK_LAUNCH("avgpool_bwd_kernel");
}

void avgpool2d_forward(const Pool2dShape& s, bool count_include_pad, const float* x, float* y,
                       cudaStream_t stream) {
  check_pool2d_shape(s);
  const i64 n = s.N * s.C * s.OH * s.OW;
  DETDL_LAUNCH(grid_for(n), kBlock, 0, stream, avgpool_fwd_kernel)(s, count_include_pad, x, y);
  DETDL_CUDA_CHECK_LAUNCH("avgpool_fwd_kernel");
}

void avgpool2d_backward(const Pool2dShape& s, bool count_include_pad, const float* dy, float* dx,
                        cudaStream_t stream) {
  check_pool2d_shape(s);
  const i64 n = s.N * s.C * s.H * s.W;
  DETDL_LAUNCH(grid_for(n), kBlock, 0, stream, avgpool_bwd_kernel)
  (s, count_include_pad, dy, nullptr, dx);
  DETDL_CUDA_CHECK_LAUNCH("avgpool_bwd_kernel");
}

void global_avgpool_forward(i64 N, i64 C, i64 HW, const float* x, float* y, cudaStream_t stream) {
  // No level changes the plane sums: canonical unless emulated (the CPU kernel's too).
  global_avgpool_forward(Level::portable, N, C, HW, x, y, stream);
}

void global_avgpool_forward(const SumOrder& order, i64 N, i64 C, i64 HW, const float* x, float* y,
                            cudaStream_t stream) {
  require_positive("N", N);
  require_positive("C", C);
  require_positive("HW", HW);
  detail::value_reduce(order, N * C, HW, PlaneTerm{x, HW}, StoreMean{y, static_cast<float>(HW)},
                       stream);
}

void global_avgpool_backward(i64 N, i64 C, i64 HW, const float* dy, float* dx,
                             cudaStream_t stream) {
  require_positive("N", N);
  require_positive("C", C);
  require_positive("HW", HW);
  DETDL_LAUNCH(grid_for(N * C * HW), kBlock, 0, stream, global_avg_bwd_kernel)
  (N * C, HW, static_cast<float>(HW), dy, dx);
  DETDL_CUDA_CHECK_LAUNCH("global_avg_bwd_kernel");
}

}  // namespace detdl::cuda
