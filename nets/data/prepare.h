// Turning a loaded data set into what a run trains on: the train/test split, label noise,
// normalisation and augmentation. Every random draw is Philox keyed by (seed, stream, sub,
// index) with the index a sample's position or index (docs/determinism.md, "Randomness"),
// so nothing here depends on threads, batch composition or the machine.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "engine/dataset.h"
#include "kernels/common/permutation.h"
#include "nets/data/pmlb.h"  // Task

namespace detdl::data {

// Rows of a data set in a given order: detdl::take_rows (engine/dataset.h).
using detdl::take_rows;

// The permutation of [0, n) behind shuffled_split: detdl::philox_permutation (the data
// order's Fisher-Yates rule) on (seed, RandomStream::split, sub 0).
std::vector<std::int64_t> split_permutation(std::int64_t n, std::uint64_t seed);

// BUTTER's 80/20 split, shuffled, not stratified: n_test = ceil(test_fraction * n) (double
// arithmetic, as sklearn's train_test_split); train = rows perm[0, n - n_test), test = rows
// perm[n - n_test, n), each in permutation order. Needs 0 < test_fraction < 1 and
// 1 <= n_test < n.
std::pair<Dataset, Dataset> shuffled_split(const Dataset& d, double test_fraction,
                                           std::uint64_t seed);

// BUTTER's label noise on training targets, p in [0, 1]; n = train.size():
//   binary (y float32 (N, 1) or (N) in {0, 1}): flip int(n * p) distinct rows;
//   multiclass (y int32 (N) in [0, classes)): move int(n * p) distinct rows to another
//     class, uniform among the other classes - 1: new = (y + 1 + off) % classes with
//     off = (u * (classes - 1)) >> 32, u = philox_u32(seed, label_noise, 1, sample * 4);
//   regression (y float32 (N, K), (N, 1) or (N)): y += p * s * z for every row and column,
//     s = that column's sample standard deviation (float64, n - 1),
//     z = philox_normal(seed, label_noise, 1, sample * K + column).
// The rows are the first int(n * p) of a Fisher-Yates permutation drawn like
// split_permutation on (seed, RandomStream::label_noise, sub 0). `classes` is used for
// multiclass only (>= 2).
void add_label_noise(Dataset& train, Task task, std::int64_t classes, double p, std::uint64_t seed);

// Per-pixel mean image of x (N, ...): each position's mean over N, summed in float64 in row
// order, divided by N, rounded to float. Returns shape (...) (one row's shape).
Tensor pixel_mean(const Tensor& x);
// x (N, ...) -= mean (...), row by row, in float.
void subtract_rows(Tensor& x, const Tensor& mean);
// x (N, C, H, W): (x - mean[c]) / stddev[c] per channel, in float; stddev[c] > 0.
void standardize_channels(Tensor& x, const std::vector<float>& mean,
                          const std::vector<float>& stddev);

// Augmentation of a batch x (B, C, H, W) in place; sample_index[b] (B) is row b's index in
// the training set. Draw k of a row is philox keyed (seed, RandomStream::augment, sub =
// epoch, index = sample * 4 + k), so it depends on nothing but (seed, epoch, sample).
//   k = 0: vertical offset, k = 1: horizontal offset, k = 2: flip (philox_uniform < 0.5).
// An offset uniform in [0, m) is (u32 * m) >> 32.

// Random crop and flip: pad by `pad` zero pixels on each side, take the HxW window at
// (dy, dx), each uniform in [0, 2 * pad]: out[i][j] = padded[i + dy][j + dx]; then mirror
// horizontally (out[i][j] = out[i][W-1-j]) with probability 0.5 when `flip`.
void augment_crop_flip(float* x, const std::int64_t* sample_index, std::int64_t B, std::int64_t C,
                       std::int64_t H, std::int64_t W, std::int64_t pad, bool flip,
                       std::uint64_t seed, std::int64_t epoch);

// Keras ImageDataGenerator-style shift (the dl-variance study), with integer shifts:
// ty uniform in [-sy, sy], tx in [-sx, sx], sy = floor(max_frac * H), sx = floor(max_frac * W);
// out[i][j] = in[i - ty][j - tx], a source pixel outside the image taken by `fill`:
//   nearest: the closest edge pixel (aaaa|abcd|dddd);
//   reflect: mirrored about the edge, the edge repeated (dcba|abcd|dcba), as scipy's 'reflect';
//   constant: 0.
// Then a horizontal flip with probability 0.5 when `flip`.
enum class FillMode { nearest, reflect, constant };
void augment_shift_flip(float* x, const std::int64_t* sample_index, std::int64_t B, std::int64_t C,
                        std::int64_t H, std::int64_t W, float max_frac, FillMode fill, bool flip,
                        std::uint64_t seed, std::int64_t epoch);

// Keras 2.2.2's ImageDataGenerator shift as the dl-variance study ran it (the default of
// the shift-flip augmentations): continuous shifts and bilinear resampling.
//   ty = (2u - 1) * max_frac * H, tx = (2v - 1) * max_frac * W, u, v uniform in [0, 1)
//   (np.random.uniform(-f, f) times the side, keras_preprocessing's random_transform);
//   out[i][j] = in(i + ty, j + tx), sampled as scipy.ndimage.affine_transform(order=1)
//   does: r0 = floor(i + ty), a = (i + ty) - r0, likewise c0 and b for the column, and
//     out = (1-a)(1-b) in[r0][c0] + (1-a) b in[r0][c0+1] + a (1-b) in[r0+1][c0] + a b in[r0+1][c0+1]
//   in double, in that order, rounded to float once; indices outside the image are taken by
//   `fill` (nearest: Keras's default fill_mode; reflect: the WRN study's). Then a horizontal
//   flip with probability 0.5 when `flip`. (Keras adds the shift to the output coordinate;
//   augment_shift_flip subtracts it: the distributions are the same, being symmetric.)
void augment_shift_flip_bilinear(float* x, const std::int64_t* sample_index, std::int64_t B,
                                 std::int64_t C, std::int64_t H, std::int64_t W, float max_frac,
                                 FillMode fill, bool flip, std::uint64_t seed, std::int64_t epoch);

}  // namespace detdl::data
