// 2-D convolution on the CPU: the pointwise kernels of conv_pointwise.h for unpadded 1x1
// convolutions, the direct kernels of conv_direct.h where the shape allows
// (one-chunk reductions, stride-1 rows; the weight gradient at any stride), otherwise
// im2col into a scratch buffer and one sgemm per tile. Both routes give the orders below.
// Activations are NCHW, weights (O, C, KH, KW). Padding may be asymmetric (Keras 'same'
// with stride 2 pads 0 before and 1 after), so a convolution is described by its output
// size and its top/left padding (Conv2dShape, kernels/common/shapes.h); output positions
// whose window reaches past the input see zeros there (that covers any bottom/right
// padding).
//
// Reduction orders (the determinism contract, docs/determinism.md). `portable` and
// `repeatable` give exactly these, bit for bit, on any thread count and any scratch
// budget; "canonical dot/sum" is kernels/common/reduction.h (chunks of 4096 products /
// 256 values, fmaf / + in index order from +0.0f inside a chunk, pairwise tree over chunks).
// Write xpad[n][c][i][j] = x[n][c][i][j] inside the input and 0.0f outside, and
// ih = oh*stride_h - pad_top + kh, iw = ow*stride_w - pad_left + kw.
//
//   forward:  y[n][o][oh][ow] = canonical dot over (c, kh, kw) in row-major order
//             (K = C*KH*KW) of xpad[n][c][ih][iw] * w[o][c][kh][kw]; positions outside the
//             input are included as 0.0f terms (that is what im2col writes), then + bias[o]
//             after the root (no add at all when bias is null).
//   backward_data:  dx[n][c][i][j] = +0.0f + t(kh0, kw0) + t(kh1, kw1) + ... with plain adds,
//             over the (kh, kw) in row-major order whose output position
//             (oh, ow) = ((i + pad_top - kh) / stride_h, (j + pad_left - kw) / stride_w) is
//             a whole number inside [0, OH) x [0, OW); t(kh, kw) = canonical dot over o of
//             w[o][c][kh][kw] * dy[n][o][oh][ow]. That is exactly the GEMM dcols = W^T * dY
//             (reduction over o) followed by col2im adding into a zeroed dx in (kh, kw) order.
//   backward_weight:  dw[o][c][kh][kw] = canonical dot over (n, oh, ow) flattened in that
//             order, ONE reduction of length N*OH*OW (chunk boundaries do not align with
//             sample boundaries), of dy[n][o][oh][ow] * xpad[n][c][ih][iw]: the GEMM
//             dY (O, N*OH*OW) times im2col(x) (C*KH*KW, N*OH*OW) transposed.
//   backward_bias:  db[o] = canonical sum of values over (n, oh, ow) flattened, of
//             dy[n][o][oh][ow] (chunk 256).
//
// `fast`: the level is passed to sgemm, which may split long reductions (the weight
// gradient's N*OH*OW) across threads and combine in completion order; a weight gradient
// tiled to fit the scratch budget hands its tiles to threads by timing and adds the
// threads' partials in completion order instead of the tree; backward_bias hands
// samples to threads by timing (parallel_dynamic), keeps a running sum per thread and adds
// the threads' sums, so its bits vary run to run on 2+ threads.
//
// Outputs are overwritten (=), never accumulated into; the caller adds gradients up.
#pragma once
#include <cstdint>
#include <functional>

#include "kernels/common/level.h"
#include "kernels/common/shapes.h"

namespace detdl::cpu {

// The shapes (Conv2dShape, Pool2dShape and their constructors) are in
// kernels/common/shapes.h, shared with the CUDA kernels.

void conv2d_forward(Level level, const Conv2dShape& s,
                    const float* x,     // (N, C, H, W)
                    const float* w,     // (O, C, KH, KW)
                    const float* bias,  // (O) or nullptr
                    float* y);          // (N, O, OH, OW)

// conv2d_forward that calls after_sample(n) once sample n's outputs are all in y, on the
// thread that computed them, while they are in its cache: a consumer of one sample's outputs
// reads them there (the engine's conv2d_relu_max_pool2d pools each sample in it). The same
// bits as conv2d_forward, where conv2d_forward_each_sample_applies (the direct kernels' path).
bool conv2d_forward_each_sample_applies(const Conv2dShape& s);
void conv2d_forward_each_sample(const Conv2dShape& s,
                                const float* x,     // (N, C, H, W)
                                const float* w,     // (O, C, KH, KW)
                                const float* bias,  // (O) or nullptr
                                float* y,           // (N, O, OH, OW)
                                const std::function<void(std::int64_t)>& after_sample);

void conv2d_backward_data(Level level, const Conv2dShape& s,
                          const float* dy,  // (N, O, OH, OW)
                          const float* w,   // (O, C, KH, KW)
                          float* dx);       // (N, C, H, W)

void conv2d_backward_weight(Level level, const Conv2dShape& s,
                            const float* x,   // (N, C, H, W)
                            const float* dy,  // (N, O, OH, OW)
                            float* dw);       // (O, C, KH, KW)

void conv2d_backward_bias(Level level, const Conv2dShape& s,
                          const float* dy,  // (N, O, OH, OW)
                          float* db);       // (O)

// Upper bound, in floats, on the per-call scratch (im2col columns and GEMM tiles); work is
// tiled to fit (a single sample's tile may exceed it). Results never depend on it; tests
// lower it to force tiling. Default 4 Mi floats (16 MiB).
void set_conv_scratch_budget(std::int64_t floats);
std::int64_t conv_scratch_budget();

// The canonical kernels' own helpers, for the `emulated` convolutions (emulated_conv.h).
namespace conv_detail {

// One im2col row, tap (c, kh, kw), for flat output positions [p, end) of the (n, oh, ow)
// space: dst[q - p] = xpad[n][c][oh*stride_h - pad_top + kh][ow*stride_w - pad_left + kw].
void im2col_row(const Conv2dShape& s,
                const float* x,  // (N, C, H, W)
                std::int64_t c, std::int64_t kh, std::int64_t kw, std::int64_t p, std::int64_t end,
                float* dst);  // (end - p)

// cols (C*KH*KW, p1 - p0), rows in (c, kh, kw) order: the patches of positions [p0, p1).
void im2col(const Conv2dShape& s,
            const float* x,  // (N, C, H, W)
            std::int64_t p0, std::int64_t p1,
            float* cols);  // (C*KH*KW, p1 - p0)

// dyt (O, p1 - p0) = dy[n][o][oh][ow] for flat positions [p0, p1) of the (n, oh, ow) space.
void gather_dy(const Conv2dShape& s,
               const float* dy,  // (N, O, OH, OW)
               std::int64_t p0, std::int64_t p1,
               float* dyt);  // (O, p1 - p0)

// Tiles of whole samples for the forward and the data gradient (col2im needs all taps of a
// pixel in one tile), `per_position` floats of scratch per output position: at least as
// many tiles as threads where N allows, so that threads take whole tiles. Only speed
// depends on them.
struct SampleTiles {
  std::int64_t size, count;  // samples per tile, tiles
};
SampleTiles sample_tiles(const Conv2dShape& s, std::int64_t per_position, int threads);

// Runs tile(t) for t in [0, count): with at least as many tiles as threads, each thread
// takes whole tiles (pool calls inside a tile then run serially on that thread, with its
// own thread_local scratch); otherwise the tiles run one after another and parallelise
// inside. Every output is computed by the same arithmetic either way.
void for_tiles(std::int64_t count, const std::function<void(std::int64_t)>& tile);

}  // namespace conv_detail
}  // namespace detdl::cpu
