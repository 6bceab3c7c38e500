#include "nets/data/prepare.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels/common/philox.h"
#include "kernels/common/random.h"

namespace detdl::data {

namespace {

// Uniform integer in [0, m) from one 32-bit draw.
std::int64_t uniform_below(std::uint32_t u, std::int64_t m) {
  return static_cast<std::int64_t>(
      (static_cast<std::uint64_t>(u) * static_cast<std::uint64_t>(m)) >> 32);
}

void check_batch(const float* x, const std::int64_t* sample_index, std::int64_t B, std::int64_t C,
                 std::int64_t H, std::int64_t W, std::int64_t epoch, const char* what) {
  if (B < 0 || C < 1 || H < 1 || W < 1)
    throw std::invalid_argument(std::string(what) + ": need B >= 0 and C, H, W >= 1, got B " +
                                std::to_string(B) + ", C " + std::to_string(C) + ", H " +
                                std::to_string(H) + ", W " + std::to_string(W));
  if (B > 0 && (x == nullptr || sample_index == nullptr))
    throw std::invalid_argument(std::string(what) + ": null x or sample_index");
  if (epoch < 0 || epoch > std::numeric_limits<std::uint32_t>::max())
    throw std::invalid_argument(std::string(what) + ": epoch " + std::to_string(epoch) +
                                " is not in [0, 2^32)");
  for (std::int64_t b = 0; b < B; ++b)
    if (sample_index[b] < 0 || sample_index[b] >= (std::int64_t{1} << 60))
      throw std::invalid_argument(std::string(what) + ": sample_index[" + std::to_string(b) +
                                  "] = " + std::to_string(sample_index[b]) + " is out of range");
}

std::uint32_t augment_draw(std::uint64_t seed, std::int64_t epoch, std::int64_t sample, int k) {
  return philox_u32(seed, RandomStream::augment, static_cast<std::uint32_t>(epoch),
                    static_cast<std::uint64_t>(sample) * 4 + k);
}
bool augment_flip(std::uint64_t seed, std::int64_t epoch, std::int64_t sample) {
  return philox_uniform(seed, RandomStream::augment, static_cast<std::uint32_t>(epoch),
                        static_cast<std::uint64_t>(sample) * 4 + 2) < 0.5f;
}

// Mirrors every row of one image (C, H, W) in place.
void mirror_rows(float* img, std::int64_t C, std::int64_t H, std::int64_t W) {
  for (std::int64_t r = 0; r < C * H; ++r)
    for (std::int64_t a = 0, b = W - 1; a < b; ++a, --b) std::swap(img[r * W + a], img[r * W + b]);
}

// The source index along an axis of length n for an output position shifted off the image.
std::int64_t fill_index(std::int64_t s, std::int64_t n, FillMode fill) {
  if (s >= 0 && s < n) return s;
  switch (fill) {
    case FillMode::nearest: return s < 0 ? 0 : n - 1;
    case FillMode::reflect: {
      // Period 2n: (abcd dcba) repeated, so any shift is defined (scipy's 'reflect').
      std::int64_t m = s % (2 * n);
      if (m < 0) m += 2 * n;
      return m < n ? m : 2 * n - 1 - m;
    }
    case FillMode::constant: return -1;
  }
  return -1;
}

}  // namespace

std::vector<std::int64_t> split_permutation(std::int64_t n, std::uint64_t seed) {
  if (n < 0) throw std::invalid_argument("split_permutation: n = " + std::to_string(n) + " < 0");
  return philox_permutation(n, seed, RandomStream::split, 0);
}

std::pair<Dataset, Dataset> shuffled_split(const Dataset& d, double test_fraction,
                                           std::uint64_t seed) {
  const std::int64_t n = d.size();
  if (!(test_fraction > 0.0 && test_fraction < 1.0))
    throw std::invalid_argument("shuffled_split: test_fraction " + std::to_string(test_fraction) +
                                " is not in (0, 1)");
  const auto n_test = static_cast<std::int64_t>(std::ceil(test_fraction * static_cast<double>(n)));
  if (n_test < 1 || n_test >= n)
    throw std::invalid_argument("shuffled_split: " + std::to_string(n) +
                                " rows give a test size of " + std::to_string(n_test) +
                                "; both halves need a row");
  const std::vector<std::int64_t> perm = split_permutation(n, seed);
  const std::vector<std::int64_t> train_rows(perm.begin(), perm.end() - n_test),
      test_rows(perm.end() - n_test, perm.end());
  return {take_rows(d, train_rows), take_rows(d, test_rows)};
}

void add_label_noise(Dataset& train, Task task, std::int64_t classes, double p,
                     std::uint64_t seed) {
  const std::int64_t n = train.size();
  if (!(p >= 0.0 && p <= 1.0))
    throw std::invalid_argument("add_label_noise: p = " + std::to_string(p) + " is not in [0, 1]");
  // One target per row; a regression target may have K columns (BUTTER's one-hot
  // regression targets, e.g. 294_satellite_image).
  const bool columns_ok = task == Task::regression && train.y.ndim() == 2 && train.y.dim(1) >= 1;
  if (train.y.dim(0) != n || (train.y.numel() != n && !columns_ok))
    throw std::invalid_argument("add_label_noise: y must hold one target per row, got shape " +
                                shape_str(train.y.shape()) + " for " + std::to_string(n) + " rows");
  if (p == 0.0 || n == 0) return;
  const auto changed =
      static_cast<std::int64_t>(static_cast<double>(n) * p);  // Python's int(n * p)
  switch (task) {
    case Task::binary: {
      check_dtype(train.y, DType::f32, "add_label_noise: binary y");
      float* y = train.y.f32();
      for (std::int64_t i = 0; i < n; ++i)
        if (y[i] != 0.0f && y[i] != 1.0f)
          throw std::invalid_argument("add_label_noise: binary y[" + std::to_string(i) +
                                      "] = " + std::to_string(y[i]) + " is not 0 or 1");
      const std::vector<std::int64_t> perm =
          philox_permutation(n, seed, RandomStream::label_noise, 0);
      for (std::int64_t k = 0; k < changed; ++k) y[perm[k]] = 1.0f - y[perm[k]];
      return;
    }
    case Task::multiclass: {
      check_dtype(train.y, DType::i32, "add_label_noise: multiclass y");
      if (classes < 2)
        throw std::invalid_argument("add_label_noise: classes = " + std::to_string(classes) +
                                    " < 2");
      std::int32_t* y = train.y.i32();
      for (std::int64_t i = 0; i < n; ++i)
        if (y[i] < 0 || y[i] >= classes)
          throw std::invalid_argument("add_label_noise: y[" + std::to_string(i) +
                                      "] = " + std::to_string(y[i]) + " is not in [0, " +
                                      std::to_string(classes) + ")");
      const std::vector<std::int64_t> perm =
          philox_permutation(n, seed, RandomStream::label_noise, 0);
      for (std::int64_t k = 0; k < changed; ++k) {
        const std::int64_t s = perm[k];
        const std::int64_t off = uniform_below(
            philox_u32(seed, RandomStream::label_noise, 1, static_cast<std::uint64_t>(s) * 4),
            classes - 1);
        y[s] = static_cast<std::int32_t>((y[s] + 1 + off) % classes);
      }
      return;
    }
    case Task::regression: {
      check_dtype(train.y, DType::f32, "add_label_noise: regression y");
      if (n < 2)
        throw std::invalid_argument(
            "add_label_noise: regression noise needs 2+ rows for a standard deviation");
      float* y = train.y.f32();  // (n, k): each column with its own standard deviation
      const std::int64_t k = train.y.numel() / n;
      for (std::int64_t j = 0; j < k; ++j) {
        double sum = 0.0;
        for (std::int64_t i = 0; i < n; ++i) sum += y[i * k + j];
        const double mean = sum / static_cast<double>(n);
        double ss = 0.0;
        for (std::int64_t i = 0; i < n; ++i) ss += (y[i * k + j] - mean) * (y[i * k + j] - mean);
        const double sigma = p * std::sqrt(ss / static_cast<double>(n - 1));
        // Counter i * k + j: a one-column target draws exactly what it always drew.
        for (std::int64_t i = 0; i < n; ++i)
          y[i * k + j] = static_cast<float>(
              y[i * k + j] + sigma * philox_normal(seed, RandomStream::label_noise, 1,
                                                   static_cast<std::uint64_t>(i * k + j)));
      }
      return;
    }
  }
}

Tensor pixel_mean(const Tensor& x) {
  check_dtype(x, DType::f32, "pixel_mean: x");
  if (x.ndim() < 1 || x.dim(0) < 1)
    throw std::invalid_argument("pixel_mean: x needs at least one row, got shape " +
                                shape_str(x.shape()));
  const std::int64_t n = x.dim(0), row = x.numel() / n;
  std::vector<double> sum(static_cast<std::size_t>(row), 0.0);
  const float* px = x.f32();
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < row; ++j) sum[j] += px[i * row + j];
  Tensor mean = Tensor::empty(Shape(x.shape().begin() + 1, x.shape().end()));
  for (std::int64_t j = 0; j < row; ++j)
    mean.f32()[j] = static_cast<float>(sum[j] / static_cast<double>(n));
  return mean;
}

void subtract_rows(Tensor& x, const Tensor& mean) {
  check_dtype(x, DType::f32, "subtract_rows: x");
  check_dtype(mean, DType::f32, "subtract_rows: mean");
  if (x.ndim() < 1) throw std::invalid_argument("subtract_rows: x needs a row dimension");
  check_shape(mean, Shape(x.shape().begin() + 1, x.shape().end()), "subtract_rows: mean");
  const std::int64_t n = x.dim(0), row = mean.numel();
  float* px = x.f32();
  const float* pm = mean.f32();
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < row; ++j) px[i * row + j] -= pm[j];
}

void standardize_channels(Tensor& x, const std::vector<float>& mean,
                          const std::vector<float>& stddev) {
  check_dtype(x, DType::f32, "standardize_channels: x");
  check_ndim(x, 4, "standardize_channels: x (N, C, H, W)");
  const std::int64_t n = x.dim(0), c = x.dim(1), plane = x.dim(2) * x.dim(3);
  if (static_cast<std::int64_t>(mean.size()) != c || static_cast<std::int64_t>(stddev.size()) != c)
    throw std::invalid_argument("standardize_channels: " + std::to_string(mean.size()) +
                                " means and " + std::to_string(stddev.size()) + " stddevs for " +
                                std::to_string(c) + " channels");
  for (std::int64_t ch = 0; ch < c; ++ch)
    if (!(stddev[ch] > 0.0f) || !std::isfinite(stddev[ch]) || !std::isfinite(mean[ch]))
      throw std::invalid_argument("standardize_channels: channel " + std::to_string(ch) +
                                  " needs a finite mean and stddev > 0");
  float* px = x.f32();
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t ch = 0; ch < c; ++ch) {
      float* p = px + (i * c + ch) * plane;
      for (std::int64_t j = 0; j < plane; ++j) p[j] = (p[j] - mean[ch]) / stddev[ch];
    }
}

void augment_crop_flip(float* x, const std::int64_t* sample_index, std::int64_t B, std::int64_t C,
                       std::int64_t H, std::int64_t W, std::int64_t pad, bool flip,
                       std::uint64_t seed, std::int64_t epoch) {
  check_batch(x, sample_index, B, C, H, W, epoch, "augment_crop_flip");
  if (pad < 0)
    throw std::invalid_argument("augment_crop_flip: pad = " + std::to_string(pad) + " < 0");
  const std::int64_t image = C * H * W;
  std::vector<float> src(static_cast<std::size_t>(image));
  for (std::int64_t b = 0; b < B; ++b) {
    float* img = x + b * image;
    const std::int64_t s = sample_index[b];
    if (pad > 0) {
      const std::int64_t dy = uniform_below(augment_draw(seed, epoch, s, 0), 2 * pad + 1);
      const std::int64_t dx = uniform_below(augment_draw(seed, epoch, s, 1), 2 * pad + 1);
      std::memcpy(src.data(), img, static_cast<std::size_t>(image) * sizeof(float));
      for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t i = 0; i < H; ++i)
          for (std::int64_t j = 0; j < W; ++j) {
            // padded[i + dy][j + dx] = x[i + dy - pad][j + dx - pad], zero outside.
            const std::int64_t r = i + dy - pad, q = j + dx - pad;
            img[(c * H + i) * W + j] =
                (r >= 0 && r < H && q >= 0 && q < W) ? src[(c * H + r) * W + q] : 0.0f;
          }
    }
    if (flip && augment_flip(seed, epoch, s)) mirror_rows(img, C, H, W);
  }
}

void augment_shift_flip(float* x, const std::int64_t* sample_index, std::int64_t B, std::int64_t C,
                        std::int64_t H, std::int64_t W, float max_frac, FillMode fill, bool flip,
                        std::uint64_t seed, std::int64_t epoch) {
  check_batch(x, sample_index, B, C, H, W, epoch, "augment_shift_flip");
  if (!(max_frac >= 0.0f && max_frac < 1.0f))
    throw std::invalid_argument("augment_shift_flip: max_frac = " + std::to_string(max_frac) +
                                " is not in [0, 1)");
  const auto sy =
      static_cast<std::int64_t>(std::floor(static_cast<double>(max_frac) * static_cast<double>(H)));
  const auto sx =
      static_cast<std::int64_t>(std::floor(static_cast<double>(max_frac) * static_cast<double>(W)));
  const std::int64_t image = C * H * W;
  std::vector<float> src(static_cast<std::size_t>(image));
  std::vector<std::int64_t> rows(static_cast<std::size_t>(H)), cols(static_cast<std::size_t>(W));
  for (std::int64_t b = 0; b < B; ++b) {
    float* img = x + b * image;
    const std::int64_t s = sample_index[b];
    const std::int64_t ty = uniform_below(augment_draw(seed, epoch, s, 0), 2 * sy + 1) - sy;
    const std::int64_t tx = uniform_below(augment_draw(seed, epoch, s, 1), 2 * sx + 1) - sx;
    if (ty != 0 || tx != 0) {
      for (std::int64_t i = 0; i < H; ++i) rows[i] = fill_index(i - ty, H, fill);
      for (std::int64_t j = 0; j < W; ++j) cols[j] = fill_index(j - tx, W, fill);
      std::memcpy(src.data(), img, static_cast<std::size_t>(image) * sizeof(float));
      for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t i = 0; i < H; ++i)
          for (std::int64_t j = 0; j < W; ++j)
            img[(c * H + i) * W + j] =
                (rows[i] < 0 || cols[j] < 0) ? 0.0f : src[(c * H + rows[i]) * W + cols[j]];
    }
    if (flip && augment_flip(seed, epoch, s)) mirror_rows(img, C, H, W);
  }
}

void augment_shift_flip_bilinear(float* x, const std::int64_t* sample_index, std::int64_t B,
                                 std::int64_t C, std::int64_t H, std::int64_t W, float max_frac,
                                 FillMode fill, bool flip, std::uint64_t seed, std::int64_t epoch) {
  check_batch(x, sample_index, B, C, H, W, epoch, "augment_shift_flip_bilinear");
  if (!(max_frac >= 0.0f && max_frac < 1.0f))
    throw std::invalid_argument("augment_shift_flip_bilinear: max_frac = " +
                                std::to_string(max_frac) + " is not in [0, 1)");
  if (fill == FillMode::constant)
    throw std::invalid_argument("augment_shift_flip_bilinear: fill must be nearest or reflect");
  const std::int64_t image = C * H * W;
  std::vector<float> src(static_cast<std::size_t>(image));
  // Per output row (column): the two source indices and the weight of the second.
  std::vector<std::int64_t> r0(static_cast<std::size_t>(H)), r1(static_cast<std::size_t>(H)),
      c0(static_cast<std::size_t>(W)), c1(static_cast<std::size_t>(W));
  std::vector<double> a(static_cast<std::size_t>(H)), b(static_cast<std::size_t>(W));
  auto axis = [fill](double shift, std::int64_t n, std::vector<std::int64_t>& lo,
                     std::vector<std::int64_t>& hi, std::vector<double>& w) {
    for (std::int64_t i = 0; i < n; ++i) {
      const double c = static_cast<double>(i) + shift;
      const double f = std::floor(c);
      const auto k = static_cast<std::int64_t>(f);
      lo[i] = fill_index(k, n, fill);
      hi[i] = fill_index(k + 1, n, fill);
      w[i] = c - f;
    }
  };
  const double two32 = 4294967296.0;
  for (std::int64_t s_i = 0; s_i < B; ++s_i) {
    float* img = x + s_i * image;
    const std::int64_t s = sample_index[s_i];
    const double u = augment_draw(seed, epoch, s, 0) / two32,
                 v = augment_draw(seed, epoch, s, 1) / two32;
    const double ty = (2.0 * u - 1.0) * static_cast<double>(max_frac) * static_cast<double>(H);
    const double tx = (2.0 * v - 1.0) * static_cast<double>(max_frac) * static_cast<double>(W);
    if (ty != 0.0 || tx != 0.0) {
      axis(ty, H, r0, r1, a);
      axis(tx, W, c0, c1, b);
      std::memcpy(src.data(), img, static_cast<std::size_t>(image) * sizeof(float));
      for (std::int64_t c = 0; c < C; ++c) {
        const float* in = src.data() + c * H * W;
        for (std::int64_t i = 0; i < H; ++i)
          for (std::int64_t j = 0; j < W; ++j) {
            const double ai = a[i], bj = b[j];
            const double value = (1 - ai) * (1 - bj) * in[r0[i] * W + c0[j]] +
                                 (1 - ai) * bj * in[r0[i] * W + c1[j]] +
                                 ai * (1 - bj) * in[r1[i] * W + c0[j]] +
                                 ai * bj * in[r1[i] * W + c1[j]];
            img[(c * H + i) * W + j] = static_cast<float>(value);
          }
      }
    }
    if (flip && augment_flip(seed, epoch, s)) mirror_rows(img, C, H, W);
  }
}

}  // namespace detdl::data
