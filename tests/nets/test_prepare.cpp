// The train/test split, label noise, normalisation and augmentation. Augmentations are
// checked against slow references written here (each output must equal the reference for
// some offset/flip in range), and for the determinism contract: a row's result depends on
// (seed, epoch, sample index) only, never on its place in the batch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels/common/random.h"
#include "nets/data/prepare.h"

using namespace detdl;
using namespace detdl::data;

namespace {

// n rows: x (n, 2) = (i, -i), y int32 (n) = i, so every row says where it came from.
Dataset indexed(std::int64_t n) {
  Dataset d{Tensor::empty({n, 2}), Tensor::empty({n}, DType::i32)};
  for (std::int64_t i = 0; i < n; ++i) {
    d.x.f32()[2 * i] = static_cast<float>(i);
    d.x.f32()[2 * i + 1] = -static_cast<float>(i);
    d.y.i32()[i] = static_cast<std::int32_t>(i);
  }
  return d;
}

std::vector<std::int32_t> labels(const Dataset& d) { return {d.y.i32(), d.y.i32() + d.size()}; }

}  // namespace

// ---- split ----

TEST(Split, SizesAreCeilAndRowsStayAligned) {
  for (const auto& [n, n_test] : std::vector<std::pair<std::int64_t, std::int64_t>>{
           {100, 20}, {101, 21}, {5, 1}, {4898, 980}, {7, 2}}) {
    const Dataset d = indexed(n);
    const auto [train, test] = shuffled_split(d, 0.2, 42);
    ASSERT_EQ(test.size(), n_test) << n;
    ASSERT_EQ(train.size(), n - n_test) << n;
    std::vector<int> seen(static_cast<std::size_t>(n), 0);
    for (const Dataset* part : {&train, &test})
      for (std::int64_t i = 0; i < part->size(); ++i) {
        const std::int32_t row = part->y.i32()[i];
        ++seen.at(static_cast<std::size_t>(row));
        EXPECT_EQ(part->x.f32()[2 * i], static_cast<float>(row));
        EXPECT_EQ(part->x.f32()[2 * i + 1], -static_cast<float>(row));
      }
    EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }))
        << "disjoint and covering, n = " << n;
  }
}

TEST(Split, FollowsThePermutationAndTheSeed) {
  const Dataset d = indexed(200);
  const auto [train, test] = shuffled_split(d, 0.2, 7);
  const std::vector<std::int64_t> perm = split_permutation(200, 7);
  for (std::int64_t i = 0; i < 160; ++i) ASSERT_EQ(train.y.i32()[i], perm[i]);
  for (std::int64_t i = 0; i < 40; ++i) ASSERT_EQ(test.y.i32()[i], perm[160 + i]);
  const auto [train2, test2] = shuffled_split(d, 0.2, 7);
  EXPECT_EQ(labels(train2), labels(train));
  EXPECT_EQ(labels(test2), labels(test));
  const auto [train3, test3] = shuffled_split(d, 0.2, 8);
  EXPECT_NE(labels(test3), labels(test));
  // Not the identity, and not the training loop's data-order permutation (own stream).
  std::vector<std::int64_t> id(200);
  std::iota(id.begin(), id.end(), 0);
  EXPECT_NE(perm, id);
  EXPECT_NE(perm, epoch_permutation(200, 7, 0));
}

TEST(Split, PermutationIsRoughlyUniform) {
  // Where element 0 lands over 3000 seeds, n = 6: 500 expected per position (sd ~ 20).
  std::vector<int> where(6, 0);
  for (std::uint64_t seed = 0; seed < 3000; ++seed) {
    const auto p = split_permutation(6, seed);
    std::vector<std::int64_t> sorted = p;
    std::sort(sorted.begin(), sorted.end());
    ASSERT_EQ(sorted, (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5}));
    ++where[static_cast<std::size_t>(std::find(p.begin(), p.end(), 0) - p.begin())];
  }
  for (int c : where) EXPECT_NEAR(c, 500, 100);
}

TEST(Split, BadArguments) {
  const Dataset d = indexed(10);
  EXPECT_THROW(shuffled_split(d, 0.0, 1), std::invalid_argument);
  EXPECT_THROW(shuffled_split(d, 1.0, 1), std::invalid_argument);
  EXPECT_THROW(shuffled_split(d, std::nan(""), 1), std::invalid_argument);
  EXPECT_THROW(shuffled_split(indexed(1), 0.2, 1), std::invalid_argument);
  EXPECT_THROW(shuffled_split(d, 0.95, 1),
               std::invalid_argument);  // ceil(9.5) = 10 leaves no training row
}

// ---- label noise ----

TEST(LabelNoise, BinaryFlipsExactlyIntNP) {
  for (const auto& [n, p, changed] : std::vector<std::tuple<std::int64_t, double, std::int64_t>>{
           {1000, 0.1, 100}, {999, 0.25, 249}, {7, 0.5, 3}}) {
    Dataset d{Tensor::empty({n, 1}), Tensor::empty({n}, DType::i32)};
    for (std::int64_t i = 0; i < n; ++i) d.x.f32()[i] = static_cast<float>(i % 3 == 0);  // unused
    Tensor y0 = Tensor::empty({n, 1});
    for (std::int64_t i = 0; i < n; ++i) y0.f32()[i] = static_cast<float>((i * 7) % 3 == 0);
    Dataset train{d.x, y0.clone()};
    add_label_noise(train, Task::binary, 2, p, 5);
    std::int64_t flipped = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const float a = y0.f32()[i], b = train.y.f32()[i];
      ASSERT_TRUE(b == 0.0f || b == 1.0f);
      flipped += a != b;
    }
    EXPECT_EQ(flipped, changed) << "n " << n << " p " << p;
  }
}

TEST(LabelNoise, MulticlassMovesToAnotherClassUniformly) {
  const std::int64_t n = 1997, k = 5;
  Tensor y0 = Tensor::empty({n}, DType::i32);
  for (std::int64_t i = 0; i < n; ++i) y0.i32()[i] = static_cast<std::int32_t>((i * 3) % k);
  Dataset train{Tensor::zeros({n, 1}), y0.clone()};
  add_label_noise(train, Task::multiclass, k, 0.3, 11);
  std::int64_t changed = 0;
  std::vector<int> step(k, 0);  // (new - old) mod k
  std::set<std::int64_t> rows;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int32_t a = y0.i32()[i], b = train.y.i32()[i];
    ASSERT_GE(b, 0);
    ASSERT_LT(b, k);
    if (a != b) {
      ++changed;
      rows.insert(i);
      ++step[static_cast<std::size_t>((b - a + k) % k)];
    }
  }
  EXPECT_EQ(changed, static_cast<std::int64_t>(1997 * 0.3));  // 599
  EXPECT_EQ(step[0], 0);
  for (std::int64_t s = 1; s < k; ++s) EXPECT_NEAR(step[s], 599 / 4.0, 45) << s;  // sd ~ 10.6

  // Same seed: the same rows and labels; another seed: other rows.
  Dataset again{Tensor::zeros({n, 1}), y0.clone()};
  add_label_noise(again, Task::multiclass, k, 0.3, 11);
  EXPECT_EQ(labels(again), labels(train));
  Dataset other{Tensor::zeros({n, 1}), y0.clone()};
  add_label_noise(other, Task::multiclass, k, 0.3, 12);
  std::set<std::int64_t> other_rows;
  for (std::int64_t i = 0; i < n; ++i)
    if (other.y.i32()[i] != y0.i32()[i]) other_rows.insert(i);
  EXPECT_EQ(other_rows.size(), 599u);
  EXPECT_NE(other_rows, rows);

  // Two classes: every chosen row goes to the only other class.
  Dataset two{Tensor::zeros({10, 1}),
              Tensor::from_vector_i32({10}, {0, 1, 0, 1, 0, 1, 0, 1, 0, 1})};
  add_label_noise(two, Task::multiclass, 2, 1.0, 3);
  for (std::int64_t i = 0; i < 10; ++i) EXPECT_EQ(two.y.i32()[i], 1 - i % 2);
}

TEST(LabelNoise, RegressionAddsGaussianWithPTimesTheStd) {
  const std::int64_t n = 20000;
  Tensor y0 = Tensor::empty({n, 1});
  for (std::int64_t i = 0; i < n; ++i)
    y0.f32()[i] = static_cast<float>(i % 101) / 100.0f;  // std ~ 0.2930
  double mean = 0.0, ss = 0.0;
  for (std::int64_t i = 0; i < n; ++i) mean += y0.f32()[i];
  mean /= n;
  for (std::int64_t i = 0; i < n; ++i) ss += (y0.f32()[i] - mean) * (y0.f32()[i] - mean);
  const double sd = std::sqrt(ss / (n - 1));
  Dataset train{Tensor::zeros({n, 1}), y0.clone()};
  add_label_noise(train, Task::regression, 0, 0.5, 9);
  double dsum = 0.0, dss = 0.0;
  std::int64_t moved = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double diff = static_cast<double>(train.y.f32()[i]) - y0.f32()[i];
    moved += diff != 0.0;
    dsum += diff;
    dss += diff * diff;
  }
  EXPECT_GT(moved, n - 20);  // every row gets noise
  const double noise_sd = std::sqrt(dss / n), want = 0.5 * sd;
  EXPECT_NEAR(noise_sd, want, 0.03 * want);  // sampling error of the sd ~ 0.5%
  EXPECT_NEAR(dsum / n, 0.0, 5.0 * want / std::sqrt(n));
}

TEST(LabelNoise, ZeroNoiseAndBadArguments) {
  Dataset d{Tensor::zeros({4, 1}), Tensor::from_vector({4, 1}, {0, 1, 1, 0})};
  add_label_noise(d, Task::binary, 2, 0.0, 1);
  EXPECT_EQ(d.y.to_vector(), (std::vector<float>{0, 1, 1, 0}));
  EXPECT_THROW(add_label_noise(d, Task::binary, 2, 1.5, 1), std::invalid_argument);
  EXPECT_THROW(add_label_noise(d, Task::binary, 2, -0.1, 1), std::invalid_argument);
  Dataset half{Tensor::zeros({2, 1}), Tensor::from_vector({2, 1}, {0.0f, 0.5f})};
  EXPECT_THROW(add_label_noise(half, Task::binary, 2, 0.5, 1), std::invalid_argument);
  Dataset out_of_range{Tensor::zeros({2, 1}), Tensor::from_vector_i32({2}, {0, 3})};
  EXPECT_THROW(add_label_noise(out_of_range, Task::multiclass, 3, 0.5, 1), std::invalid_argument);
  Dataset wrong_dtype{Tensor::zeros({2, 1}), Tensor::from_vector({2}, {0.0f, 1.0f})};
  EXPECT_THROW(add_label_noise(wrong_dtype, Task::multiclass, 3, 0.5, 1), std::invalid_argument);
  Dataset two_outputs{Tensor::zeros({2, 1}), Tensor::zeros({2, 2})};
  EXPECT_THROW(add_label_noise(two_outputs, Task::binary, 2, 0.5, 1), std::invalid_argument);
}

// A one-hot regression target (BUTTER's 294_satellite_image): each column gets noise scaled
// by its own SD, drawn at counter row * K + column, so a one-column target draws as before.
TEST(LabelNoise, RegressionColumnsEachWithTheirOwnSd) {
  const std::int64_t n = 50;
  std::vector<float> two(2 * n), one(n);
  for (std::int64_t i = 0; i < n; ++i) {
    two[2 * i] = 0.25f;                        // column 0: constant, SD 0
    two[2 * i + 1] = one[i] = (i % 5) / 4.0f;  // column 1 varies
  }
  Dataset d2{Tensor::zeros({n, 1}), Tensor::from_vector({n, 2}, two)};
  add_label_noise(d2, Task::regression, 0, 0.1, 7);
  Dataset d1{Tensor::zeros({n, 1}), Tensor::from_vector({n, 1}, one)};
  add_label_noise(d1, Task::regression, 0, 0.1, 7);
  double sum = 0, ss = 0;  // the column's SD as the implementation's float64 formula
  for (float v : one) sum += v;
  const double mean = sum / static_cast<double>(n);
  for (float v : one) ss += (v - mean) * (v - mean);
  const double sd = std::sqrt(ss / static_cast<double>(n - 1));
  int moved = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(d2.y.f32()[2 * i], 0.25f);  // SD 0: no noise
    const float expect =
        static_cast<float>(one[i] + 0.1 * sd *
                                        philox_normal(7, RandomStream::label_noise, 1,
                                                      static_cast<std::uint64_t>(2 * i + 1)));
    EXPECT_EQ(d2.y.f32()[2 * i + 1], expect) << i;
    moved += d2.y.f32()[2 * i + 1] != one[i];
    // The one-column target: counter i, as it always was.
    const float single = static_cast<float>(
        one[i] +
        0.1 * sd * philox_normal(7, RandomStream::label_noise, 1, static_cast<std::uint64_t>(i)));
    EXPECT_EQ(d1.y.f32()[i], single) << i;
  }
  EXPECT_GT(moved, n / 2);
}

// ---- normalisation ----

TEST(Normalise, PixelMeanInFloat64) {
  const Tensor x = Tensor::from_vector({3, 2, 2}, {1, 2, 3, 4, 3, 4, 5, 6, 5, 6, 7, 9});
  const Tensor m = pixel_mean(x);
  ASSERT_EQ(m.shape(), (Shape{2, 2}));
  EXPECT_EQ(m.to_vector(), (std::vector<float>{3, 4, 5, static_cast<float>(19.0 / 3.0)}));
  // 200000 rows of 0.1f: a float accumulator drifts far from 0.1f; float64 does not.
  const Tensor many = Tensor::full({200000, 1}, 0.1f);
  EXPECT_EQ(pixel_mean(many).to_vector()[0], 0.1f);
  Tensor y = x.clone();
  subtract_rows(y, m);
  const auto v = y.to_vector(), xv = x.to_vector(), mv = m.to_vector();
  for (std::size_t i = 0; i < v.size(); ++i) EXPECT_EQ(v[i], xv[i] - mv[i % 4]);
  EXPECT_THROW(subtract_rows(y, Tensor::zeros({4})), std::invalid_argument);
  EXPECT_THROW(pixel_mean(Tensor::zeros({0, 3})), std::invalid_argument);
}

TEST(Normalise, StandardizeChannels) {
  Tensor x = Tensor::from_vector({2, 2, 1, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  standardize_channels(x, {1.0f, 4.0f}, {2.0f, 0.5f});
  EXPECT_EQ(x.to_vector(), (std::vector<float>{0.0f, 0.5f, -2.0f, 0.0f, 2.0f, 2.5f, 6.0f, 8.0f}));
  EXPECT_THROW(standardize_channels(x, {0.0f}, {1.0f}), std::invalid_argument);
  EXPECT_THROW(standardize_channels(x, {0.0f, 0.0f}, {1.0f, 0.0f}), std::invalid_argument);
  Tensor flat = Tensor::zeros({2, 4});
  EXPECT_THROW(standardize_channels(flat, {0.0f}, {1.0f}), std::invalid_argument);
}

// ---- augmentation ----

namespace {

constexpr std::int64_t C = 2, H = 5, W = 7;  // odd and unequal, so a transpose or off-by-one shows
constexpr std::int64_t kImg = C * H * W;

// Image b of a batch: every pixel distinct and nonzero, so zero padding is recognisable.
std::vector<float> unique_images(std::int64_t B) {
  std::vector<float> x(static_cast<std::size_t>(B * kImg));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i + 1);
  return x;
}

// Reference crop: padded image built explicitly, window at (dy, dx), then mirror.
std::vector<float> ref_crop(const float* img, std::int64_t pad, std::int64_t dy, std::int64_t dx,
                            bool flip) {
  const std::int64_t ph = H + 2 * pad, pw = W + 2 * pad;
  std::vector<float> padded(static_cast<std::size_t>(C * ph * pw), 0.0f), out(kImg);
  for (std::int64_t c = 0; c < C; ++c)
    for (std::int64_t i = 0; i < H; ++i)
      for (std::int64_t j = 0; j < W; ++j)
        padded[(c * ph + i + pad) * pw + j + pad] = img[(c * H + i) * W + j];
  for (std::int64_t c = 0; c < C; ++c)
    for (std::int64_t i = 0; i < H; ++i)
      for (std::int64_t j = 0; j < W; ++j)
        out[(c * H + i) * W + j] = padded[(c * ph + i + dy) * pw + (flip ? W - 1 - j : j) + dx];
  return out;
}

// Reference shift: each row/column extended to three copies per Keras's pictures
// (nearest aaaa|abcd|dddd, reflect dcba|abcd|dcba, constant 0000|abcd|0000), then read.
float extended(const float* plane, std::int64_t i, std::int64_t j, FillMode fill) {
  auto ext = [&](std::int64_t s, std::int64_t n) -> std::int64_t {
    std::vector<std::int64_t> idx;  // the index each of the 3n extended positions reads
    for (std::int64_t k = 0; k < n; ++k)
      idx.push_back(fill == FillMode::nearest ? 0 : fill == FillMode::reflect ? n - 1 - k : -1);
    for (std::int64_t k = 0; k < n; ++k) idx.push_back(k);
    for (std::int64_t k = 0; k < n; ++k)
      idx.push_back(fill == FillMode::nearest ? n - 1 : fill == FillMode::reflect ? n - 1 - k : -1);
    return idx.at(static_cast<std::size_t>(s + n));
  };
  const std::int64_t r = ext(i, H), q = ext(j, W);
  return (r < 0 || q < 0) ? 0.0f : plane[r * W + q];
}

std::vector<float> ref_shift(const float* img, std::int64_t ty, std::int64_t tx, FillMode fill,
                             bool flip) {
  std::vector<float> out(kImg);
  for (std::int64_t c = 0; c < C; ++c)
    for (std::int64_t i = 0; i < H; ++i)
      for (std::int64_t j = 0; j < W; ++j)
        out[(c * H + i) * W + j] =
            extended(img + c * H * W, i - ty, (flip ? W - 1 - j : j) - tx, fill);
  return out;
}

struct Found {
  std::int64_t a, b;
  bool flip;
};

}  // namespace

TEST(Augment, CropMatchesTheReferenceForSomeOffsetInRange) {
  const std::int64_t B = 600, pad = 2;
  std::vector<float> x = unique_images(B);
  const std::vector<float> x0 = x;
  std::vector<std::int64_t> idx(B);
  std::iota(idx.begin(), idx.end(), 1000);
  augment_crop_flip(x.data(), idx.data(), B, C, H, W, pad, true, 77, 3);
  std::map<std::pair<std::int64_t, std::int64_t>, int> offsets;
  int flips = 0;
  for (std::int64_t b = 0; b < B; ++b) {
    const std::vector<float> got(x.begin() + b * kImg, x.begin() + (b + 1) * kImg);
    bool matched = false;
    for (std::int64_t dy = 0; dy <= 2 * pad && !matched; ++dy)
      for (std::int64_t dx = 0; dx <= 2 * pad && !matched; ++dx)
        for (bool f : {false, true})
          if (!matched && ref_crop(x0.data() + b * kImg, pad, dy, dx, f) == got) {
            matched = true;
            ++offsets[{dy, dx}];
            flips += f;
          }
    ASSERT_TRUE(matched) << "row " << b;
  }
  EXPECT_EQ(offsets.size(), 25u);  // every (dy, dx) in [0, 4]^2 occurs
  for (const auto& [o, count] : offsets) EXPECT_NEAR(count, 600 / 25.0, 15);  // sd ~ 4.8
  EXPECT_NEAR(flips, 300, 60);                                                // sd ~ 12
}

TEST(Augment, CropOfAConstantImageHasZerosOnlyOnTheShiftedBorder) {
  const std::int64_t B = 50, pad = 3;
  std::vector<float> x(static_cast<std::size_t>(B * kImg), 1.0f);
  std::vector<std::int64_t> idx(B);
  std::iota(idx.begin(), idx.end(), 0);
  augment_crop_flip(x.data(), idx.data(), B, C, H, W, pad, false, 5, 0);
  for (std::int64_t b = 0; b < B; ++b) {
    // The ones form one rectangle: rows [r0, r1) x cols [c0, c1), the same in each channel.
    const float* img = x.data() + b * kImg;
    std::int64_t r0 = H, r1 = 0, c0 = W, c1 = 0, ones = 0;
    for (std::int64_t i = 0; i < H; ++i)
      for (std::int64_t j = 0; j < W; ++j) {
        const float v = img[i * W + j];
        ASSERT_TRUE(v == 0.0f || v == 1.0f);
        for (std::int64_t c = 1; c < C; ++c) ASSERT_EQ(img[(c * H + i) * W + j], v);
        if (v == 1.0f) {
          ++ones;
          r0 = std::min(r0, i), r1 = std::max(r1, i + 1), c0 = std::min(c0, j),
          c1 = std::max(c1, j + 1);
        }
      }
    if (ones == 0) continue;  // a shift of pad >= H or W can leave nothing (not here: pad 3 < 5)
    EXPECT_EQ(ones, (r1 - r0) * (c1 - c0)) << b;
    EXPECT_TRUE(r0 == 0 || r1 == H) << b;  // the zeros sit on one side only
    EXPECT_TRUE(c0 == 0 || c1 == W) << b;
    EXPECT_GE(r1 - r0, H - pad);
    EXPECT_GE(c1 - c0, W - pad);
  }
}

TEST(Augment, ShiftMatchesTheReferenceForEveryFillMode) {
  const std::int64_t B = 400;
  const float frac = 0.45f;  // sy = floor(2.25) = 2, sx = floor(3.15) = 3
  for (FillMode fill : {FillMode::nearest, FillMode::reflect, FillMode::constant}) {
    std::vector<float> x = unique_images(B);
    const std::vector<float> x0 = x;
    std::vector<std::int64_t> idx(B);
    std::iota(idx.begin(), idx.end(), 0);
    augment_shift_flip(x.data(), idx.data(), B, C, H, W, frac, fill, true, 123, 1);
    std::set<std::int64_t> ty_seen, tx_seen;
    int flips = 0;
    for (std::int64_t b = 0; b < B; ++b) {
      const std::vector<float> got(x.begin() + b * kImg, x.begin() + (b + 1) * kImg);
      bool matched = false;
      for (std::int64_t ty = -2; ty <= 2 && !matched; ++ty)
        for (std::int64_t tx = -3; tx <= 3 && !matched; ++tx)
          for (bool f : {false, true})
            if (!matched && ref_shift(x0.data() + b * kImg, ty, tx, fill, f) == got) {
              matched = true;
              ty_seen.insert(ty);
              tx_seen.insert(tx);
              flips += f;
            }
      ASSERT_TRUE(matched) << "fill " << static_cast<int>(fill) << " row " << b;
    }
    EXPECT_EQ(ty_seen.size(), 5u);
    EXPECT_EQ(tx_seen.size(), 7u);
    EXPECT_NEAR(flips, 200, 50);
  }
}

TEST(Augment, StudyShiftOfTenPercentOn32PixelsIsAtMostThree) {
  // CIFAR-sized: max_frac 0.1 -> s = floor(3.2) = 3; an image whose value is its column
  // index + 1 shows the horizontal shift as the value change at the centre (constant fill).
  const std::int64_t B = 300, n = 32;
  std::vector<float> x(static_cast<std::size_t>(B * n * n));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % n + 1);
  std::vector<std::int64_t> idx(B);
  std::iota(idx.begin(), idx.end(), 0);
  augment_shift_flip(x.data(), idx.data(), B, 1, n, n, 0.1f, FillMode::constant, false, 9, 0);
  std::set<std::int64_t> shifts;
  for (std::int64_t b = 0; b < B; ++b)
    shifts.insert(17 - static_cast<std::int64_t>(x[b * n * n + 16 * n + 16]));
  EXPECT_EQ(shifts, (std::set<std::int64_t>{-3, -2, -1, 0, 1, 2, 3}));
}

TEST(Augment, DependsOnlyOnSeedEpochAndSampleIndex) {
  const std::int64_t B = 9;
  const std::vector<float> x0 = unique_images(B);
  const std::vector<std::int64_t> idx = {4, 90, 17, 3, 250000, 8, 61, 5, 12};
  const std::vector<std::int64_t> perm = {6, 2, 8, 0, 4, 1, 7, 3, 5};
  using Aug =
      std::function<void(float*, const std::int64_t*, std::int64_t, std::int64_t /*epoch*/)>;
  const std::vector<Aug> augs = {
      [](float* x, const std::int64_t* s, std::int64_t b, std::int64_t e) {
        augment_crop_flip(x, s, b, C, H, W, 2, true, 31, e);
      },
      [](float* x, const std::int64_t* s, std::int64_t b, std::int64_t e) {
        augment_shift_flip(x, s, b, C, H, W, 0.3f, FillMode::reflect, true, 31, e);
      }};
  for (const Aug& aug : augs) {
    std::vector<float> a = x0;
    aug(a.data(), idx.data(), B, 4);
    // The same rows in another order: outputs permuted the same way.
    std::vector<float> p(x0.size());
    std::vector<std::int64_t> pidx(B);
    for (std::int64_t b = 0; b < B; ++b) {
      std::copy(x0.begin() + perm[b] * kImg, x0.begin() + (perm[b] + 1) * kImg,
                p.begin() + b * kImg);
      pidx[b] = idx[perm[b]];
    }
    aug(p.data(), pidx.data(), B, 4);
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t j = 0; j < kImg; ++j) ASSERT_EQ(p[b * kImg + j], a[perm[b] * kImg + j]);
    // One row alone: the same as in the batch.
    std::vector<float> one(x0.begin() + 2 * kImg, x0.begin() + 3 * kImg);
    aug(one.data(), &idx[2], 1, 4);
    EXPECT_TRUE(std::equal(one.begin(), one.end(), a.begin() + 2 * kImg));
    // Repeatable; another epoch changes at least one row.
    std::vector<float> again = x0;
    aug(again.data(), idx.data(), B, 4);
    EXPECT_EQ(again, a);
    std::vector<float> next = x0;
    aug(next.data(), idx.data(), B, 5);
    EXPECT_NE(next, a);
  }
}

TEST(Augment, NoPadNoFlipIsIdentityAndFlipIsAMirror) {
  const std::int64_t B = 40;
  const std::vector<float> x0 = unique_images(B);
  std::vector<std::int64_t> idx(B);
  std::iota(idx.begin(), idx.end(), 0);
  std::vector<float> x = x0;
  augment_crop_flip(x.data(), idx.data(), B, C, H, W, 0, false, 1, 0);
  EXPECT_EQ(x, x0);
  augment_shift_flip(x.data(), idx.data(), B, C, H, W, 0.0f, FillMode::constant, false, 1, 0);
  EXPECT_EQ(x, x0);
  augment_crop_flip(x.data(), idx.data(), B, C, H, W, 0, true, 1, 0);
  int mirrored = 0;
  for (std::int64_t b = 0; b < B; ++b) {
    const std::vector<float> got(x.begin() + b * kImg, x.begin() + (b + 1) * kImg);
    const bool same = got == ref_crop(x0.data() + b * kImg, 0, 0, 0, false);
    const bool mirror = got == ref_crop(x0.data() + b * kImg, 0, 0, 0, true);
    ASSERT_TRUE(same || mirror) << b;
    mirrored += mirror;
  }
  EXPECT_GT(mirrored, 5);
  EXPECT_LT(mirrored, 35);
}

TEST(Augment, BadArguments) {
  std::vector<float> x(kImg);
  const std::int64_t s = 0, neg = -1;
  EXPECT_THROW(augment_crop_flip(x.data(), &s, 1, C, H, W, -1, true, 1, 0), std::invalid_argument);
  EXPECT_THROW(augment_crop_flip(x.data(), &neg, 1, C, H, W, 1, true, 1, 0), std::invalid_argument);
  EXPECT_THROW(augment_crop_flip(x.data(), &s, 1, C, H, W, 1, true, 1, -1), std::invalid_argument);
  EXPECT_THROW(augment_crop_flip(nullptr, &s, 1, C, H, W, 1, true, 1, 0), std::invalid_argument);
  EXPECT_THROW(augment_shift_flip(x.data(), &s, 1, C, H, W, 1.0f, FillMode::nearest, true, 1, 0),
               std::invalid_argument);
  EXPECT_THROW(augment_shift_flip(x.data(), &s, 1, 0, H, W, 0.1f, FillMode::nearest, true, 1, 0),
               std::invalid_argument);
}

// Keras's continuous shift with bilinear resampling (augment_shift_flip_bilinear). A ramp
// along one axis is reproduced exactly by linear interpolation, so the output tells the
// shift: in(i, j + tx) = j + tx wherever both neighbours are inside the image.
namespace {

// (B, 1, H, W) images whose value is the column (by_column) or the row.
std::vector<float> ramps(std::int64_t B, std::int64_t H, std::int64_t W, bool by_column) {
  std::vector<float> x(static_cast<std::size_t>(B * H * W));
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t i = 0; i < H; ++i)
      for (std::int64_t j = 0; j < W; ++j)
        x[(b * H + i) * W + j] = static_cast<float>(by_column ? j : i);
  return x;
}

}  // namespace

TEST(Augment, BilinearShiftIsContinuousWithinTheRangeAndExactOnRamps) {
  const std::int64_t B = 64, H = 32, W = 32;
  std::vector<std::int64_t> rows(B);
  std::iota(rows.begin(), rows.end(), 0);
  for (bool by_column : {true, false}) {
    std::vector<float> x = ramps(B, H, W, by_column);
    augment_shift_flip_bilinear(x.data(), rows.data(), B, 1, H, W, 0.1f, FillMode::nearest,
                                /*flip=*/false, 5, 0);
    int fractional = 0;
    double largest = 0;
    for (std::int64_t b = 0; b < B; ++b) {
      // The middle pixel is interior for any shift up to 3.2 pixels: its value is 16 + t.
      const float* img = x.data() + b * H * W;
      const double t = img[16 * W + 16] - 16.0;
      largest = std::max(largest, std::fabs(t));
      ASSERT_LE(std::fabs(t), 0.1 * 32 + 1e-5) << b;
      fractional += std::fabs(t - std::round(t)) > 1e-3;
      // The whole interior is the same ramp moved by t (linear interpolation is exact on it,
      // up to float rounding), and the edges clamp to the image's values (nearest).
      for (std::int64_t i = 4; i < H - 4; ++i)
        for (std::int64_t j = 4; j < W - 4; ++j) {
          const double want = (by_column ? j : i) + t;
          ASSERT_NEAR(img[i * W + j], want, 1e-5) << b << " " << i << " " << j;
        }
      for (std::int64_t k = 0; k < W * H; ++k) {
        ASSERT_GE(img[k], 0.0f);
        ASSERT_LE(img[k], 31.0f);
      }
    }
    EXPECT_GT(fractional, B * 9 / 10) << "shifts are whole pixels, not Keras's continuous ones";
    EXPECT_GT(largest, 2.5) << "the range U(-3.2, 3.2) is not covered";
  }
}

TEST(Augment, BilinearShiftReflectsAndIsDeterministic) {
  const std::int64_t B = 16, H = 8, W = 8;
  std::vector<std::int64_t> rows(B);
  std::iota(rows.begin(), rows.end(), 100);
  std::vector<float> x = ramps(B, H, W, true), whole = x;
  augment_shift_flip_bilinear(x.data(), rows.data(), B, 1, H, W, 0.4f, FillMode::reflect, false, 9,
                              2);
  augment_shift_flip(whole.data(), rows.data(), B, 1, H, W, 0.4f, FillMode::reflect, false, 9, 2);
  for (std::int64_t b = 0; b < B; ++b) {
    // Reflect (scipy's, half-sample: dcba|abcd|dcba) keeps every value in [0, 7] and, for a
    // column ramp, makes each output row a continuous, piecewise-linear function.
    const float* img = x.data() + b * H * W;
    for (std::int64_t j = 0; j < W; ++j) {
      ASSERT_GE(img[j], 0.0f);
      ASSERT_LE(img[j], 7.0f);
      if (j > 0) ASSERT_LE(std::fabs(img[j] - img[j - 1]), 1.0f + 1e-5f);
    }
  }
  // The whole-pixel form (shift-int-*) moves the ramp by whole pixels only.
  for (std::int64_t b = 0; b < B; ++b) {
    const double t = whole[b * H * W + 4 * W + 4] - 4.0;
    EXPECT_EQ(t, std::round(t)) << b;
  }
  // Deterministic: seed, epoch and sample index decide everything.
  std::vector<float> again = ramps(B, H, W, true);
  augment_shift_flip_bilinear(again.data(), rows.data(), B, 1, H, W, 0.4f, FillMode::reflect, false,
                              9, 2);
  EXPECT_EQ(again, x);
  std::vector<float> other = ramps(B, H, W, true);
  augment_shift_flip_bilinear(other.data(), rows.data(), B, 1, H, W, 0.4f, FillMode::reflect, false,
                              9, 3);
  EXPECT_NE(other, x);
  EXPECT_THROW(augment_shift_flip_bilinear(x.data(), rows.data(), B, 1, H, W, 0.1f,
                                           FillMode::constant, false, 9, 2),
               std::invalid_argument);
}
