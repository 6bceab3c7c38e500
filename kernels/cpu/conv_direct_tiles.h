// The register tiles of the direct convolutions (conv_direct.h), one set per vector ISA:
// AVX2 (8 lanes, always) and AVX-512 (16 lanes, where the CPU has it). Both sets run the
// same per-lane fmaf chains in the same order, so they give the same bits; conv_direct.cpp
// picks one per call, by the CPU and by which one wastes fewer lanes on the shape.
//
// The tiles are compiled per ISA from conv_direct_tiles.inc in files of their own
// (conv_direct_avx2.cpp, conv_direct_avx512.cpp) and reached only through TileSet's
// pointers: the AVX-512 file holds nothing but these functions, so no inline function
// compiled for AVX-512 can be picked by the linker for code that runs on any CPU.
#pragma once
#include <cstdint>

#include "kernels/common/shapes.h"

namespace detdl::cpu::conv_direct {

inline constexpr int kMR = 6;  // channels (forward, data) or taps (weight) per tile

// Geometry of a zero-padded buffer of planes: rows x cols per plane. The data gradient's
// buffer holds dy row oh at buffer row oh - row0, column ow at ow - col0, and its tile writes
// channel rows out_plane apart.
struct Pad {
  std::int64_t rows, cols, plane;
  std::int64_t row0 = 0, col0 = 0, out_plane = 0;
};

// The paired tiles (AVX-512, rows of at most 8 lanes): each 16-lane vector is two half
// vectors, two rows. Vector v's second half reads in_step[v] floats after its first (0: a
// lone last row, whose second half is not stored) and is stored out_step floats after it.
struct PairSteps {
  std::int64_t in_step[3];
  std::int64_t out_step;
};

// Forward tile: MR output channels x NV vectors. kwoff[kw]: tap kw's offset in a padded row
// from a vector's start; wp: the channels' packed weights (K, fwd_rows); b[v]: xpad at row
// oh*stride_h and vector v's first output column; bias: MR values or null;
// y[v]: the output at (first channel, segment), channel rows OH*OW apart; lanes[v]: lanes
// of vector v that are stored; kh0, kh1: the kernel rows [kh0, kh1) whose terms it computes
// (as fwd_chan_tile's below: rows of the padding's zeros alone left out, finite weights only).
using FwdTile = void (*)(const Conv2dShape& s, const Pad& p, const std::int64_t* kwoff,
                         const float* wp, const float* const* b, std::int64_t kh0, std::int64_t kh1,
                         const float* bias, float* const* y, const std::int64_t* lanes,
                         const PairSteps* ps);

// Data-gradient tile: MR input channels x NV vectors of pixels. wt: the channels' packed
// weights (KH*KW, O, kMR); vector v's pixels are row row[v], columns (col[v] + lane) *
// stride_w + phase[v], lanes[v] of them stored; dypad: the padded dy of the sample (Pad's
// row0 / col0); dx[v]: where vector v's first channel's values go, channel rows
// p.out_plane apart.
using DataTile = void (*)(const Conv2dShape& s, const Pad& p, const float* wt,
                          const std::int64_t* row, const std::int64_t* phase,
                          const std::int64_t* col, const std::int64_t* lanes, const float* dypad,
                          float* const* dx, const PairSteps* ps);

// The ordered data gradient's plan (conv_direct.h DataOrder, with slices >= 1 and cuts set):
// slice j is o in [cuts[j], cuts[j + 1]); taps: (KH*KW) tap indices or null (row-major).
struct DataSlices {
  const std::int64_t* cuts;
  std::int64_t slices;
  bool tree;
  const std::int32_t* slice_order;
  const std::int32_t* taps;
};
// Data-gradient tile in another order (MR input channels x NV vectors, no pairs): as
// DataTile, with the plan.
using DataOrderedTile = void (*)(const Conv2dShape& s, const Pad& p, const float* wt,
                                 const std::int64_t* row, const std::int64_t* phase,
                                 const std::int64_t* col, const std::int64_t* lanes,
                                 const float* dypad, float* const* dx, const DataSlices& o);

// Weight-gradient tile: MR taps x NV vectors of output channels, one chain per lane over
// positions [p0, p1) of the (n, oh, ow) space. xall: the (padded) input, `sample` floats per
// sample, sample 0 at position 0 (the driver shifts positions to its copy's first sample);
// off[r]: tap r's offset in a sample; dyt: (p1 - p0, lanes * NV) gradients, zero past O;
// out: (MR, ldo).
using WeightTile = void (*)(const Conv2dShape& s, const Pad& p, std::int64_t sample,
                            const float* xall, const std::int64_t* off, std::int64_t p0,
                            std::int64_t p1, const float* dyt, float* out, std::int64_t ldo);

// Weight-gradient tiles by rows (weight_rows_tile): R rows (c, kh) of KW taps x NV vectors;
// off[r * KW] is row r's first tap. R <= kWeightRowsMax and R * KW * NV <= TileSet's
// weight_acc; KW 1, 3 or 5 (the shapes of LeNet's and ResNet's layers), others take the
// weight / weight_wide tiles.
inline constexpr int kWeightRowsMax = 12;

// Forward tile with lanes over output channels (fwd_chan_tile, AVX-512): R <= kFwdChanRows
// positions of one output row x kFwdChanVectors vectors of channels, whose windows start SW
// floats apart (SW 1 or 2). kwoff[kw]: tap kw's offset in an input row; wq: the panel's
// packed weights (K, lanes * kFwdChanVectors); xb: the input at the row's first position
// (its first window's top-left), rows p.cols and channels p.plane floats apart; c0, c1: the
// input channels this call runs (from +0.0f at c0 = 0, else continuing from tmp); bias:
// lanes * kFwdChanVectors values, or null (always null before the last channels); tmp:
// (R, lanes * kFwdChanVectors) outputs. kh0, kh1: the kernel rows [kh0, kh1) whose terms
// it computes; the driver leaves out only rows that read the padding's zeros and only when
// every weight is finite, where such a term is fmaf(0, w, p) = p exactly (p starts at +0.0f
// and an fmaf chain from +0.0f is never -0.0f), so the chain's value is the same. cols[2 * kw],
// cols[2 * kw + 1]: the positions [lo, hi) whose terms tap kw computes, the others reading
// the padding's zeros at that tap (the same rule: all of [0, R) unless every weight is
// finite; at 'same' 3 x 3 taps a row's first and last position leave out one tap in three).
inline constexpr int kFwdChanRows = 12;
inline constexpr int kFwdChanVectors = 2;
// The same tile with one vector of channels (fwd_chan1: 16 output channels, LeNet-5's second
// layer, whose 10-wide rows fill 10 of a position tile's 16 lanes): up to kFwdChan1Rows
// positions, so a row of up to 16 is one tile (16 accumulators).
inline constexpr int kFwdChan1Rows = 16;
using FwdChanTile = void (*)(const Conv2dShape& s, const Pad& p, const std::int64_t* kwoff,
                             const std::int64_t* cols, const float* wq, const float* xb,
                             std::int64_t c0, std::int64_t c1, std::int64_t kh0, std::int64_t kh1,
                             const float* bias, float* tmp);

// Data-gradient tile with lanes over input channels (data_chan_tile, AVX-512), pixels of one
// row and column phase f (j = (j0 + r) * stride_w + f):
// R <= kDataChanRows pixels (i, j0 + r) of one row x kDataChanVectors vectors of channels.
// wq: the panel's packed weights (KH*KW, O, lanes * kDataChanVectors); dypad: as DataTile's;
// tmp: (R, lanes * kDataChanVectors) results.
inline constexpr int kDataChanRows = 8;
inline constexpr int kDataChanVectors = 2;
// The same tile with one vector of channels (data_chan1: exactly 16 input channels, ResNet's
// first stage under its stride-2 layer): up to kDataChan1Rows pixels, a phase row of 16 whole.
inline constexpr int kDataChan1Rows = 16;
using DataChanTile = void (*)(const Conv2dShape& s, const Pad& p, const float* wq, std::int64_t i,
                              std::int64_t j0, std::int64_t f, const float* dypad, float* tmp);

// Data-gradient tiles with the sums in memory (data_mem_tile, AVX-512): up to kDataMemRows
// input channels x up to 3 vectors, as DataTile (no pairs: ps unused); wt: the block's
// weights packed (KH*KW, O, kDataMemRows).
inline constexpr int kDataMemRows = 8;

// Forward tile with lanes over samples (fwd_sample_tile, stride 1): a block of `lanes`
// samples, MO <= kFwdSampleWidth output channels x R <= kFwdSampleRows positions
// (oh, ow0 + r) of one row. p: the block's padded input xs (C, p.rows, p.cols, lanes), input
// (ih, iw) at (ih + pad_top, iw + pad_left), zeros around; wq: the channels' weights
// (C*KH*KW, kFwdSampleWidth), zero past MO; bias: MO values or null; skip: every weight
// finite; ys: the block's output (O, OH, OW, lanes) at the first channel.
inline constexpr int kFwdSampleWidth = 8;
inline constexpr int kFwdSampleRows = 8;
using FwdSampleTile = void (*)(const Conv2dShape& s, const Pad& p, const float* wq,
                               const float* bias, std::int64_t oh, std::int64_t ow0, bool skip,
                               const float* xs, float* ys);

// Data-gradient tile with lanes over samples (data_sample_tile, stride 1): a block of `lanes`
// samples, MC <= kMR input channels x R <= kDataSampleRows pixels (i, j0 + r) of one row.
// wt: the channels' packed weights (KH*KW, O, kMR) as DataTile's; dys: the block's dy
// (O, OH, OW, lanes), with max(KW, W + pad_left - OW) * lanes readable floats before it and
// after it (a pixel whose tap lies outside dy still reads there); dxs: the block's dx at the first channel,
// (C, H, W, lanes).
inline constexpr int kDataSampleRows = 4;
using DataSampleTile = void (*)(const Conv2dShape& s, const float* wt, std::int64_t i,
                                std::int64_t j0, const float* dys, float* dxs);

inline constexpr int kFwdRowsMax = 8;     // the forward's tiles: up to 8 output channels
inline constexpr int kFwdVectorsMax = 3;  // ... by up to 3 vectors

// The lanes-over-channels data gradient's results into planes (AVX-512): dst[c * ldd + q] =
// src[(q % S) * phase_ld + (q / S) * ld + c] for c < cn <= 16, q < n, i.e. the tiles'
// (phase, pixel, channel) results of one row into that row of cn channel planes, the
// column phases interleaved on the way (16 x 16 blocks through registers).
using ChanOut = void (*)(const float* src, std::int64_t S, std::int64_t phase_ld, std::int64_t ld,
                         std::int64_t cn, std::int64_t n, float* dst, std::int64_t ldd);

struct TileSet {
  int lanes;        // floats per vector
  int fwd_rows;     // output channels per forward tile and panel (6 or 8)
  int fwd_vectors;  // vectors per forward tile (2 or 3)
  FwdTile fwd[3][kFwdVectorsMax][kFwdRowsMax];  // [KW 5, 3, any][NV - 1][MR - 1], MR <= fwd_rows
  DataTile data[2][kMR];                        // [NV - 1][MR - 1]
  bool pairs;                                   // the paired tiles below exist (AVX-512)
  FwdTile fwd_pair[3][kFwdVectorsMax][kFwdRowsMax];
  DataTile data_pair[2][kMR];
  FwdTile fwd_tap[2][kMR];  // forward per tap (emulated): [NV - 1][MR - 1]
  FwdTile fwd_tap_pair[2][kMR];
  DataOrderedTile data_ordered[2][kMR];  // data gradient in another order: [NV - 1][MR - 1]
  // [(MO - 1) * kFwdSampleRows + R - 1], null: no fit
  FwdSampleTile fwd_sample[kFwdSampleWidth * kFwdSampleRows];
  // [(MC - 1) * kDataSampleRows + R - 1], null: no fit
  DataSampleTile data_sample[kMR * kDataSampleRows];
  WeightTile weight[2][kMR];                 // two vectors: [stride_w 1, any][MR - 1]
  WeightTile weight_wide[2][2 * kMR];        // one vector, up to 12 taps: [stride_w 1, any][MR - 1]
  FwdChanTile fwd_chan[3][2][kFwdChanRows];  // [KW 5, 3, any][SW - 1][R - 1]; AVX-512 only
  FwdChanTile fwd_chan1[3][2][kFwdChan1Rows];    // one vector of channels; AVX-512 only
  DataChanTile data_chan[kDataChanRows];         // [R - 1]; AVX-512 only, else null
  DataChanTile data_chan1[kDataChan1Rows];       // one vector of channels; AVX-512 only
  DataTile data_mem[3][kDataMemRows];            // [NV - 1][MR - 1]; AVX-512 only, else null
  int weight_acc;                                // accumulators of a weight_rows tile: 24 or 12
  int weight_vectors;                            // vectors of a weight_rows tile: up to 4 or 2
  WeightTile weight_rows[3][4][kWeightRowsMax];  // [KW 1, 3, 5][NV - 1][R - 1], null: no fit
  // Rows at stride_w 1, each input read once (weight_slide_tile): as weight_rows, with
  // (R + 1) * KW * NV + 1 <= regs.
  WeightTile weight_slide[2][2][kWeightRowsMax];  // [KW 3, 5][NV - 1][R - 1], null: no fit
  // The same at KW 5 leaving out the products of the padding's columns (their input is
  // +0.0f: a row's first pad_left and those from pad_left + W on), for steps whose dy values
  // are all finite, where each left-out fmaf(+0.0f, dy, acc) would have returned acc.
  WeightTile weight_slide_skip[2][kWeightRowsMax];  // [NV - 1][R - 1], null: no fit
  int regs;                                         // vector registers: 16 or 32
  ChanOut chan_out;                                 // AVX-512 only, else null
};

const TileSet& tiles_avx2();
const TileSet& tiles_avx512();  // call only where the CPU has AVX-512F

}  // namespace detdl::cpu::conv_direct
