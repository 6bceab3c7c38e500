// Keras 2 metric formulas per sample, reduced canonically (see metrics.h).
#include "engine/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels/common/detmath.h"
#include "kernels/common/reduction.h"
#include "kernels/cpu/detmath_avx2.h"
#include "kernels/cpu/metrics_avx2.h"

namespace detdl {

namespace {

using cpu::clip_keep_nan;
using cpu::max_keep_nan;
constexpr float kEps = cpu::kMetricEps;
constexpr float kNormFloor = cpu::kMetricNormFloor;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

constexpr std::array<std::string_view, kMetricCount> kNames = {"accuracy",
                                                               "cosine_similarity",
                                                               "hinge",
                                                               "kullback_leibler_divergence",
                                                               "mean_absolute_error",
                                                               "mean_squared_error",
                                                               "mean_squared_logarithmic_error",
                                                               "root_mean_squared_error",
                                                               "squared_hinge"};
static_assert(kNames.size() == 9, "a metric was added without its name");
static_assert(kMetricCount == cpu::kMetricValues, "metrics_avx2.h computes every metric");

// Index of the first maximum of x (k); -1 if any value is NaN.
std::int64_t argmax_first(const float* x, std::int64_t k) {
  std::int64_t best = 0;
  for (std::int64_t j = 0; j < k; ++j) {
    if (std::isnan(x[j])) return -1;
    if (x[j] > x[best]) best = j;
  }
  return best;
}

bool any_nan(const float* x, std::int64_t k) {
  for (std::int64_t j = 0; j < k; ++j)
    if (std::isnan(x[j])) return true;
  return false;
}

void check_counts(const char* where, std::int64_t n, std::int64_t k) {
  if (n < 0)
    throw std::invalid_argument(std::string(where) + ": n = " + std::to_string(n) + " is negative");
  if (k < 1)
    throw std::invalid_argument(std::string(where) + ": k = " + std::to_string(k) +
                                " must be >= 1");
}

void check_labels(const char* where, const std::int32_t* labels, std::int64_t n, std::int64_t k) {
  if (n > 0 && labels == nullptr)
    throw std::invalid_argument(std::string(where) + ": labels is null");
  for (std::int64_t i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= k)
      throw std::invalid_argument(std::string(where) + ": labels[" + std::to_string(i) +
                                  "] = " + std::to_string(labels[i]) + " is outside [0, " +
                                  std::to_string(k) + ")");
}

}  // namespace

std::string_view metric_name(Metric m) {
  const int i = static_cast<int>(m);
  if (i < 0 || i >= kMetricCount)
    throw std::invalid_argument("metric_name: bad Metric " + std::to_string(i));
  return kNames[static_cast<std::size_t>(i)];
}

void MetricAccumulator::add(const float* pred, const float* target, std::int64_t n,
                            std::int64_t k) {
  check_counts("MetricAccumulator::add", n, k);
  if (k_ != 0 && k != k_)
    throw std::invalid_argument("MetricAccumulator::add: k = " + std::to_string(k) +
                                " differs from this epoch's k = " + std::to_string(k_));
  if (n > 0 && (pred == nullptr || target == nullptr))
    throw std::invalid_argument("MetricAccumulator::add: pred or target is null");
  k_ = k;
  // Keras's hinge turns 0/1 labels into -1/+1 when the whole batch's targets are 0 or 1.
  bool binary_targets = true;
  for (std::int64_t e = 0; e < n * k && binary_targets; ++e)
    binary_targets = (target[e] == 0.0f || target[e] == 1.0f);

  const float kf = static_cast<float>(k);
  auto push = [&](Metric m, float v) { per_sample_[static_cast<std::size_t>(m)].push_back(v); };
  // The logarithms first, eight at a time (det_logf_n is det_logf bit for bit): KL's
  // log(yc / pc) and MSLE's log(max(p, eps) + 1), log(max(y, eps) + 1) for every element.
  const std::int64_t elems = n * k;
  thread_local std::vector<float> kl_log, p_log, y_log;
  kl_log.resize(static_cast<std::size_t>(elems));
  p_log.resize(static_cast<std::size_t>(elems));
  y_log.resize(static_cast<std::size_t>(elems));
  cpu::metric_log_args(pred, target, elems, kl_log.data(), p_log.data(), y_log.data());
  cpu::det_logf_n(kl_log.data(), kl_log.data(), elems);
  cpu::det_logf_n(p_log.data(), p_log.data(), elems);
  if (binary_targets) {
    // 0/1 targets (one-hot, binary labels) have two logarithms between them: the same
    // det_logf of the same arguments, taken once.
    const float at0 = det_logf(max_keep_nan(0.0f, kEps) + 1.0f);
    const float at1 = det_logf(max_keep_nan(1.0f, kEps) + 1.0f);
    for (std::int64_t e = 0; e < elems; ++e) y_log[e] = target[e] == 1.0f ? at1 : at0;
  } else {
    cpu::det_logf_n(y_log.data(), y_log.data(), elems);
  }
  // Whole groups of 8 samples in the lanes (metrics_avx2.h: the same values bit for bit),
  // the rest one by one below.
  const std::int64_t n8 = k <= kChunkValues ? n / 8 * 8 : 0;
  if (n8 > 0) {
    thread_local std::vector<float> values;
    values.resize(static_cast<std::size_t>(cpu::kMetricValues * n8));
    cpu::metric_values8(pred, target, kl_log.data(), p_log.data(), y_log.data(), n8, k,
                        binary_targets, values.data());
    for (int m = 0; m < kMetricCount; ++m) {
      const float* v = values.data() + m * n8;
      per_sample_[static_cast<std::size_t>(m)].insert(per_sample_[m].end(), v, v + n8);
    }
  }
  for (std::int64_t i = n8; i < n; ++i) {
    const float* p = pred + i * k;    // (k)
    const float* y = target + i * k;  // (k)
    if (any_nan(p, k) || any_nan(y, k)) {
      for (int m = 0; m < kMetricCount; ++m) push(static_cast<Metric>(m), kNaN);
      continue;
    }
    const bool correct =
        (k == 1) ? ((p[0] > 0.5f) == (y[0] > 0.5f)) : (argmax_first(p, k) == argmax_first(y, k));
    push(Metric::accuracy, correct ? 1.0f : 0.0f);

    const float norm_y = std::sqrt(
        max_keep_nan(canonical_sum_of(k, [&](std::int64_t j) { return y[j] * y[j]; }), kNormFloor));
    const float norm_p = std::sqrt(
        max_keep_nan(canonical_sum_of(k, [&](std::int64_t j) { return p[j] * p[j]; }), kNormFloor));
    push(Metric::cosine_similarity,
         canonical_sum_of(k, [&](std::int64_t j) { return (y[j] / norm_y) * (p[j] / norm_p); }));

    auto hinge_term = [&](std::int64_t j) {
      const float ys = binary_targets ? 2.0f * y[j] - 1.0f : y[j];
      return max_keep_nan(1.0f - ys * p[j], 0.0f);
    };
    push(Metric::hinge, canonical_sum_of(k, hinge_term) / kf);
    push(Metric::squared_hinge, canonical_sum_of(k, [&](std::int64_t j) {
                                  const float h = hinge_term(j);
                                  return h * h;
                                }) / kf);

    const float* kl = kl_log.data() + i * k;  // (k) log(yc / pc)
    push(Metric::kl_divergence, canonical_sum_of(k, [&](std::int64_t j) {
           return clip_keep_nan(y[j], kEps, 1.0f) * kl[j];
         }));
    push(Metric::mean_absolute_error,
         canonical_sum_of(k, [&](std::int64_t j) { return std::fabs(p[j] - y[j]); }) / kf);
    const float squared_errors = canonical_sum_of(k, [&](std::int64_t j) {
      const float d = p[j] - y[j];
      return d * d;
    });
    push(Metric::mean_squared_error, squared_errors / kf);
    push(Metric::root_mean_squared_error, squared_errors);
    const float* lp = p_log.data() + i * k;  // (k) log(max(p, eps) + 1)
    const float* ly = y_log.data() + i * k;  // (k) log(max(y, eps) + 1)
    push(Metric::mean_squared_logarithmic_error, canonical_sum_of(k, [&](std::int64_t j) {
                                                   const float d = lp[j] - ly[j];
                                                   return d * d;
                                                 }) / kf);
  }
  samples_ += n;
}

void MetricAccumulator::append(const float* const* values, std::int64_t n, std::int64_t k) {
  check_counts("MetricAccumulator::append", n, k);
  if (k_ != 0 && k != k_)
    throw std::invalid_argument("MetricAccumulator::append: k = " + std::to_string(k) +
                                " differs from this epoch's k = " + std::to_string(k_));
  k_ = k;
  for (int m = 0; m < kMetricCount; ++m)
    per_sample_[static_cast<std::size_t>(m)].insert(per_sample_[m].end(), values[m], values[m] + n);
  samples_ += n;
}

std::array<double, kMetricCount> MetricAccumulator::result() const {
  std::array<double, kMetricCount> out;
  out.fill(std::numeric_limits<double>::quiet_NaN());
  if (samples_ == 0) return out;
  // Every series holds one value per sample: the sums run side by side (the same bits).
  std::array<const float*, kMetricCount> series;
  for (int m = 0; m < kMetricCount; ++m)
    series[static_cast<std::size_t>(m)] = per_sample_[m].data();
  std::array<float, kMetricCount> totals;
  canonical_sums<kMetricCount>(series.data(), samples_, totals.data());
  for (int m = 0; m < kMetricCount; ++m) {
    const float total = totals[static_cast<std::size_t>(m)];
    // RMSE: Keras's sqrt(total / count) over elements; the others: mean over samples.
    out[static_cast<std::size_t>(m)] = (static_cast<Metric>(m) == Metric::root_mean_squared_error)
                                           ? std::sqrt(total / static_cast<float>(samples_ * k_))
                                           : total / static_cast<float>(samples_);
  }
  return out;
}

std::vector<double> per_class_accuracy(const float* scores, const std::int32_t* labels,
                                       std::int64_t n, std::int64_t k) {
  check_counts("per_class_accuracy", n, k);
  if (n > 0 && scores == nullptr) throw std::invalid_argument("per_class_accuracy: scores is null");
  check_labels("per_class_accuracy", labels, n, k);
  std::vector<std::int64_t> correct(static_cast<std::size_t>(k), 0),
      count(static_cast<std::size_t>(k), 0);
  for (std::int64_t i = 0; i < n; ++i) {
    const auto c = static_cast<std::size_t>(labels[i]);
    ++count[c];
    if (argmax_first(scores + i * k, k) == labels[i]) ++correct[c];
  }
  std::vector<double> out(static_cast<std::size_t>(k));
  for (std::size_t c = 0; c < out.size(); ++c)
    out[c] = count[c] == 0 ? std::numeric_limits<double>::quiet_NaN()
                           : static_cast<double>(correct[c]) / static_cast<double>(count[c]);
  return out;
}

std::vector<float> one_hot(const std::int32_t* labels, std::int64_t n, std::int64_t k) {
  check_counts("one_hot", n, k);
  check_labels("one_hot", labels, n, k);
  std::vector<float> out(static_cast<std::size_t>(n * k), 0.0f);
  for (std::int64_t i = 0; i < n; ++i) out[static_cast<std::size_t>(i * k + labels[i])] = 1.0f;
  return out;
}

void MetricAccumulator::restore(std::int64_t k,
                                const std::array<std::vector<float>, kMetricCount>& values) {
  const std::size_t n = values[0].size();
  for (const auto& v : values)
    if (v.size() != n)
      throw std::invalid_argument("MetricAccumulator::restore: metric vectors differ in length");
  if (n > 0 && k < 1)
    throw std::invalid_argument("MetricAccumulator::restore: k must be at least 1");
  per_sample_ = values;
  samples_ = static_cast<std::int64_t>(n);
  k_ = n > 0 ? k : 0;
}

}  // namespace detdl
