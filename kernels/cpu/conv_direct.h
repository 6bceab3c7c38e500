// Direct convolutions: the three passes without im2col, col2im or GEMM packing. Each sample's
// input (forward) or output gradient (data gradient), or the whole batch's input (weight
// gradient), is copied once into a zero-padded buffer, and register tiles read it in place
// (the AVX-512 data-gradient tiles below, whose masks alone decide what a pixel takes, read
// dy itself for every sample but the batch's first and last).
// Forward tiles are up to 8 output channels (6 with AVX2) x up to 3 vectors (2) of
// consecutive output positions of one row; data-gradient tiles 6 input channels x 2 vectors
// of pixels of one row and column phase (8 x 3, the sums in memory, with AVX-512); a row
// shorter than a vector shares a tile with the next rows, and where rows are at most 8 wide
// and the CPU has AVX-512 each 16-lane vector holds two of them (the paired tiles).
// Weight-gradient tiles are taps x vectors of output channels (up to 4 vectors with AVX-512),
// input values broadcast; where KW is 1, 3 or 5 the taps are whole (c, kh) rows read through
// one pointer per row, and at stride 1 with one or two vectors each input column is broadcast
// once for its row's taps (the sliding tiles). With AVX-512, narrow rows run tiles whose
// lanes are channels instead of positions (oneDNN's blocked layout, without its reorders):
// the forward with 32+ output channels on rows of at most 8, or 16 at stride 2 (reading the
// input at its stride, without the phase split; unpadded, x itself), the data gradient on
// rows of at most 16 pixels per column phase with 32+ input channels. At stride 1 with fewer
// than 8 input channels (LeNet's second layers) the data gradient's lanes are samples
// instead (data_sample_tile): blocks of a vector's worth of samples, dy and dx transposed to
// and from them, each pixel's taps outside dy left out one by one; so are the forward's with
// AVX-512 on at most 8 output channels (fwd_sample_tile: LeNet's first layers). The sliding weight
// gradient's 5-tap tiles leave out the padding's columns where they are a twentieth of a
// row's products and the step's dy is finite (weight_slide_skip). The tiles are
// conv_direct_tiles.h's, for AVX2 and AVX-512F.
//
// Why the bits are conv.h's canonical ones, exactly:
//   forward: every output lane is one fmaf chain from +0.0f over k = (c, kh, kw) in
//     row-major order, with the padding's zeros as terms (what im2col writes), then
//     + bias[o] — the canonical dot when K = C*KH*KW <= kChunkProducts (one chunk).
//   data gradient: for each tap (kh, kw) in row-major order, t = one fmaf chain from +0.0f
//     over o (the canonical dot when O <= kChunkProducts), then acc = acc + t from acc =
//     +0.0f. Lanes whose output position for that tap lies outside dy take t = +0.0f
//     exactly (the product chain is masked, so a non-finite weight does not leak into
//     them); acc + (+0.0f) == acc for every acc this sum can hold (round-to-nearest never
//     makes -0.0f from a +0.0f start), so those lanes see exactly col2im's adds.
// Only the partition of work changes with the thread count (whole samples per task).
#pragma once
#include <cstdint>
#include <functional>

#include "kernels/common/level.h"
#include "kernels/common/shapes.h"

namespace detdl::cpu::conv_direct {

// conv2d_forward can run here: C*KH*KW <= kChunkProducts (any stride: the padded input's
// columns are split by phase, so a tap's lanes read consecutive floats).
bool forward_applies(const Conv2dShape& s);
// forward runs its lanes-over-output-channels tiles on this shape (AVX-512, 32+ output
// channels, narrow rows): conv2d_forward then takes it before conv_pointwise's 8-lane tiles.
bool forward_by_channels(const Conv2dShape& s);
// after_sample (or null): called with n once sample n's outputs are all in y, on the thread
// that computed them, while they are still in its cache (conv2d_forward_each_sample).
void forward(const Conv2dShape& s,
             const float* x,     // (N, C, H, W)
             const float* w,     // (O, C, KH, KW)
             const float* bias,  // (O) or nullptr
             float* y,           // (N, O, OH, OW)
             const std::function<void(std::int64_t)>* after_sample = nullptr);

// forward takes lanes over samples here (blocks of 16 samples, x and y transposed to and
// from them): AVX-512, stride 1, at most 8 output channels (LeNet's first layers), at least
// 16 samples, a block's buffers within the scratch bound.
bool forward_by_samples(const Conv2dShape& s);

// The forward in another order of the same sums, where forward_applies (the `emulated`
// level's algorithms, emulated_conv.h): hwc is one fmaf chain from +0.0f over k = (kh, kw,
// c), then + bias; per_tap is, per tap (kh, kw), one chain from +0.0f over c, added into
// y = +0.0f in (kh, kw) order, then + bias. chw is forward's order.
enum class ForwardOrder { chw, hwc, per_tap };
void forward_ordered(ForwardOrder order, const Conv2dShape& s,
                     const float* x,     // (N, C, H, W)
                     const float* w,     // (O, C, KH, KW)
                     const float* bias,  // (O) or nullptr
                     float* y,           // (N, O, OH, OW)
                     const std::function<void(std::int64_t)>* after_sample = nullptr);

// conv2d_backward_data can run here: O <= kChunkProducts (any stride: pixels are taken by
// column phase, so one tap reaches a vector's pixels all or none, from consecutive dy).
bool backward_data_applies(const Conv2dShape& s);
void backward_data(const Conv2dShape& s,
                   const float* dy,  // (N, O, OH, OW)
                   const float* w,   // (O, C, KH, KW)
                   float* dx);       // (N, C, H, W)

// backward_data's canonical order takes lanes over samples here (blocks of a vector's worth
// of samples, dy and dx transposed to and from them): stride 1, fewer than 8 input channels
// (LeNet's second layers), at least a vector's worth of samples, a block's buffers within L2.
bool backward_data_by_samples(const Conv2dShape& s);

// The data gradient in another order of the same sums, where backward_data_applies (the
// `emulated` level's plans, emulated_conv.h): per tap, the reduction over o is cut into
// `slices` slices [cuts[j], cuts[j + 1]), each one fmaf chain from +0.0f, combined by
// arrival (+0.0f + slice_order[0] + slice_order[1] + ...) or as the pairwise tree; the taps'
// values are added into dx = +0.0f in the order `taps` (KH*KW indices; nullptr: row-major).
// slices <= 1 with taps == nullptr is backward_data's canonical order.
struct DataOrder {
  const std::int64_t* cuts = nullptr;  // (slices + 1), cuts[0] = 0, cuts[slices] = O
  std::int64_t slices = 1;
  bool tree = false;
  const std::int32_t* slice_order = nullptr;  // (slices), arrival only
  const std::int32_t* taps = nullptr;         // (KH*KW) or nullptr
};
void backward_data_ordered(const DataOrder& order, const Conv2dShape& s,
                           const float* dy,  // (N, O, OH, OW)
                           const float* w,   // (O, C, KH, KW)
                           float* dx);       // (N, C, H, W)

// conv2d_backward_weight can run here when the chunk partials and a padded sample fit in
// memory of the order of the scratch budget (each task pads the samples it reads). Any
// stride: the tiles broadcast input values, their vectors run over channels. `portable` /
// `repeatable` fold the chunk partials by the canonical tree; `fast` hands tasks to threads
// by timing and adds each thread's chunks in the order it ran them, then the threads' sums in
// the order they finished (bits that vary run to run on 2+ threads, like the GEMM path's
// `fast`).
//   backward weight: dw[o][k] = the canonical tree over chunks of kChunkProducts positions
//     of the flat (n, oh, ow) space, each chunk one fmaf chain from +0.0f in position order
//     of dy[n][o][oh][ow] * xpad[n][c][oh*sh - pt + kh][ow*sw - pl + kw], k = (c, kh, kw).
bool backward_weight_applies(const Conv2dShape& s);
void backward_weight(Level level, const Conv2dShape& s,
                     const float* x,   // (N, C, H, W)
                     const float* dy,  // (N, O, OH, OW)
                     float* dw);       // (O, C, KH, KW)

// The weight gradient's partials over ranges of the flat (n, oh, ow) position space, where
// backward_weight_applies: parts[r] (O, C*KH*KW) = one fmaf chain from +0.0f per element
// over positions [bounds[r], bounds[r + 1]) in order, of the same products as
// backward_weight's. The `emulated` level's batch groups (emulated_conv.h) run on it.
void backward_weight_ranges(const Conv2dShape& s,
                            const float* x,              // (N, C, H, W)
                            const float* dy,             // (N, O, OH, OW)
                            const std::int64_t* bounds,  // (ranges + 1), increasing
                            std::int64_t ranges,
                            float* const* parts);  // ranges pointers to (O, C*KH*KW)

// Test and benchmark hook: false sends every convolution through im2col + sgemm, so the
// two paths can be compared bit for bit. Default true.
void set_enabled(bool on);
bool enabled();
// Test hook: false keeps the AVX-512 tiles off on a CPU that has them (the AVX2 tiles must
// give the same bits). Default true.
void set_avx512_allowed(bool on);
bool avx512_available();
// The CPU has AVX-512F and the hook above allows it (conv_pointwise's tiles ask too).
bool avx512_enabled();

}  // namespace detdl::cpu::conv_direct
