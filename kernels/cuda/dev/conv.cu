// kernels/cuda/dev/conv.cu: the convolution's versions side by side (llm.c's dev/cuda
// habit). Each variant is validated against the CPU's convolution (kernels/cpu/conv.h)
// bit for bit before it is timed; a variant that differs is reported and not timed.
//   1: the first draft (2026-11): per tile of samples, im2col (or the gathered dy) written
//      to scratch, then cuda::sgemm, then a scatter (forward) or the col2im gather; the
//      weight gradient's tiles on a binary-counter stack of device buffers.
//   2: kernels/cuda/conv.cu (2026-12-02): implicit GEMM on gemm_tiles.h, x and dy read in
//      place; the data gradient fused per tap (conv_data_grad.cu), no scratch.
//   cuDNN (vendor_cudnn.h) with its deterministic algorithms is timed as the peer where
//   cuDNN exists.
//
//   dev_conv --validate        every variant on small shapes against the CPU (host mode:
//                              in CI, tests/gpu/CMakeLists.txt)
//   dev_conv [--reps N]        validate on the ResNet-56 / WRN layers, then time them
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/common/level.h"
#include "kernels/common/random.h"
#include "kernels/common/reduction.h"
#include "kernels/common/shapes.h"
#include "kernels/cpu/conv.h"
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/dev/harness.h"
#include "kernels/cuda/conv.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/vendor_cudnn.h"

namespace detdl::cuda::dev::v1 {
namespace {

using i64 = std::int64_t;

std::atomic<i64> g_budget{i64{64} << 20};  // the default budget of conv.h

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

}  // namespace

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

}  // namespace detdl::cuda::dev::v1
namespace {

using detdl::Conv2dShape;
using detdl::Level;
using i64 = std::int64_t;

std::vector<float> random_vec(i64 n, std::uint32_t sub) {
  return detdl::cuda::dev::random_vec(n, sub, 23);
}

using detdl::cuda::dev::DevBuf;

using Variant = std::function<void(int pass, const Conv2dShape&, const float* x, const float* w,
                                   const float* dy, float* out)>;

int run(bool validate_only, int reps) {
  namespace cu = detdl::cuda;
  const std::vector<std::pair<std::string, Variant>> variants = {
      {"1 im2col+sgemm",
       [](int pass, const Conv2dShape& s, const float* x, const float* w, const float* dy,
          float* out) {
         if (pass == 0)
           cu::dev::v1::conv2d_forward(Level::portable, s, x, w, nullptr, out, nullptr);
         if (pass == 1) cu::dev::v1::conv2d_backward_data(Level::portable, s, dy, w, out, nullptr);
         if (pass == 2)
           cu::dev::v1::conv2d_backward_weight(Level::portable, s, x, dy, out, nullptr);
       }},
      {"2 implicit",
       [](int pass, const Conv2dShape& s, const float* x, const float* w, const float* dy,
          float* out) {
         if (pass == 0) cu::conv2d_forward(Level::portable, s, x, w, nullptr, out, nullptr);
         if (pass == 1) cu::conv2d_backward_data(Level::portable, s, dy, w, out, nullptr);
         if (pass == 2) cu::conv2d_backward_weight(Level::portable, s, x, dy, out, nullptr);
       }},
  };
  struct Case {
    Conv2dShape s;
    const char* what;
  };
  const std::vector<Case> small = {
      {detdl::conv2d_shape_same(3, 5, 9, 9, 6, 3, 3, 1), "3x3 same"},
      {detdl::conv2d_shape_same(2, 3, 10, 10, 4, 5, 5, 2), "5x5 same stride 2"},
      {detdl::conv2d_shape_same(8, 2, 36, 36, 3, 3, 3, 1), "weight gradient over 10368 positions"},
  };
  const std::vector<Case> timed = {
      {detdl::conv2d_shape_same(128, 16, 32, 32, 16, 3, 3, 1), "ResNet-56 stage 1"},
      {detdl::conv2d_shape_same(128, 64, 8, 8, 64, 3, 3, 1), "ResNet-56 stage 3"},
      {detdl::conv2d_shape_same(128, 320, 16, 16, 320, 3, 3, 1), "WRN-28-10 group 2"},
  };
  static const char* const kPass[] = {"forward", "data grad", "weight grad"};
  int status = 0;
  for (const Case& c : validate_only ? small : timed) {
    const Conv2dShape& s = c.s;
    const std::vector<float> x = random_vec(s.N * s.C * s.H * s.W, 1),
                             w = random_vec(s.O * s.C * s.KH * s.KW, 2),
                             dy = random_vec(s.N * s.O * s.OH * s.OW, 3);
    DevBuf dx(x), dw(w), ddy(dy);
    std::printf("N %lld C %lld %lldx%lld O %lld %lldx%lld stride %lld (%s)\n",
                static_cast<long long>(s.N), static_cast<long long>(s.C),
                static_cast<long long>(s.H), static_cast<long long>(s.W),
                static_cast<long long>(s.O), static_cast<long long>(s.KH),
                static_cast<long long>(s.KW), static_cast<long long>(s.stride_h), c.what);
    const double flops = 2.0 * s.N * s.O * s.OH * s.OW * s.C * s.KH * s.KW;
    for (int pass = 0; pass < 3; ++pass) {
      std::vector<float> ref(pass == 0   ? static_cast<std::size_t>(s.N * s.O * s.OH * s.OW)
                             : pass == 1 ? x.size()
                                         : w.size());
      if (pass == 0)
        detdl::cpu::conv2d_forward(Level::portable, s, x.data(), w.data(), nullptr, ref.data());
      if (pass == 1)
        detdl::cpu::conv2d_backward_data(Level::portable, s, dy.data(), w.data(), ref.data());
      if (pass == 2)
        detdl::cpu::conv2d_backward_weight(Level::portable, s, x.data(), dy.data(), ref.data());
      DevBuf out(std::vector<float>(ref.size()));
      for (const auto& variant : variants) {
        const std::string& name = variant.first;
        const Variant& call = variant.second;  // (a structured binding cannot be captured in C++17)
        call(pass, s, dx.p, dw.p, ddy.p, out.p);
        const std::vector<float> got = out.host();
        const bool same = std::memcmp(got.data(), ref.data(), got.size() * sizeof(float)) == 0;
        if (!same) status = 1;
        if (validate_only || !same) {
          std::printf("  %-12s %-16s %s\n", kPass[pass], name.c_str(),
                      same ? "== CPU" : "DIFFERS from the CPU");
          continue;
        }
        const double sec = detdl::cuda::dev::seconds_per_call(
            reps, [&] { call(pass, s, dx.p, dw.p, ddy.p, out.p); });
        std::printf("  %-12s %-16s == CPU  %9.3f ms  %8.0f GFLOP/s\n", kPass[pass], name.c_str(),
                    sec * 1e3, flops / sec * 1e-9);
      }
      if (validate_only) continue;
      if (!cu::cudnn_available()) {
        std::printf("  %-12s %-16s n/a (built without cuDNN)\n", kPass[pass], "cuDNN det");
        continue;
      }
      const double sec = detdl::cuda::dev::seconds_per_call(reps, [&] {
        if (pass == 0)
          cu::cudnn_conv2d_forward(Level::repeatable, s, dx.p, dw.p, nullptr, out.p, nullptr);
        if (pass == 1)
          cu::cudnn_conv2d_backward_data(Level::repeatable, s, ddy.p, dw.p, out.p, nullptr);
        if (pass == 2)
          cu::cudnn_conv2d_backward_weight(Level::repeatable, s, dx.p, ddy.p, out.p, nullptr);
      });
      std::printf("  %-12s %-16s        %9.3f ms  %8.0f GFLOP/s\n", kPass[pass], "cuDNN det",
                  sec * 1e3, flops / sec * 1e-9);
    }
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  return detdl::cuda::dev::harness_main(argc, argv, "dev_conv", run);
}
