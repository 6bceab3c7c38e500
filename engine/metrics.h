// The per-epoch metrics BUTTER records (../shared/design/BUTTER.md, "What each epoch
// records"), with Keras 2 semantics. They are computed on predictions after the output
// activation (probabilities for softmax/sigmoid outputs, raw values for regression)
// against dense targets (one-hot for multi-class, (N, 1) values for binary/regression).
//
// Determinism: each sample's value is a canonical sum over its K outputs; the epoch value
// is the canonical sum over all samples seen, in the order they were added, taken only in
// result(). So splitting an epoch into batches differently never changes a bit, and no
// sum depends on threads.
#pragma once
#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace detdl {

enum class Metric : int {
  accuracy,
  cosine_similarity,
  hinge,
  kl_divergence,
  mean_absolute_error,
  mean_squared_error,
  mean_squared_logarithmic_error,
  root_mean_squared_error,
  squared_hinge,
  count_
};
inline constexpr int kMetricCount = static_cast<int>(Metric::count_);

// Keras/BUTTER names ("kullback_leibler_divergence" for kl_divergence).
std::string_view metric_name(Metric m);

// Accumulates the metrics over the batches of one epoch. Keras's running mean weights each
// batch by its samples, so every metric is the mean over all samples seen, except RMSE,
// which is Keras's stateful sqrt(sum of all squared errors / number of elements).
//
// A NaN anywhere in a sample's prediction or target makes that sample's values NaN, so a
// diverged run reports NaN for every metric (accuracy included) rather than a number.
class MetricAccumulator {
 public:
  // pred (n, k), target (n, k), row-major. k must be the same in every call of an epoch.
  // Hinge converts 0/1 targets to -1/+1 when every target value of this batch is 0 or 1
  // (Keras's _maybe_convert_labels works per batch too).
  void add(const float* pred, const float* target, std::int64_t n, std::int64_t k);
  // Appends n samples' values computed elsewhere (the lane kernels of repetitions trained
  // together, kernels/cpu/lanes_loss.h): values[m] (n) the per-sample values of metric m, as
  // add() would have pushed them for those samples' k outputs.
  void append(const float* const* values, std::int64_t n, std::int64_t k);
  // Each metric's value, computed in float and widened; all NaN before any sample.
  std::array<double, kMetricCount> result() const;
  std::int64_t samples() const { return samples_; }

  // For checkpoints: a run resumed mid-epoch must report the same epoch metrics as one
  // never stopped, so the per-sample values so far are saved and restored.
  std::int64_t outputs() const { return k_; }
  const std::vector<float>& values(Metric m) const { return per_sample_[static_cast<int>(m)]; }
  // Restores the state; every vector must hold `samples` values.
  void restore(std::int64_t k, const std::array<std::vector<float>, kMetricCount>& values);

 private:
  std::int64_t samples_ = 0;
  std::int64_t k_ = 0;  // outputs per sample, fixed by the first add
  // Per-sample values in the order added: one vector per metric. For RMSE the value kept is
  // the sample's sum of squared errors (Keras pools elements, not per-sample means).
  std::array<std::vector<float>, kMetricCount> per_sample_;
};

// Per-class accuracy: for each class c, correct / count over the rows whose label is c
// (NaN for a class with no rows). scores (n, k): the prediction is the argmax (the first
// maximum wins); a row with a NaN score counts as wrong. labels (n) in [0, k).
std::vector<double> per_class_accuracy(const float* scores, const std::int32_t* labels,
                                       std::int64_t n, std::int64_t k);

// Dense targets for the metrics from class labels: labels (n) in [0, k) -> one-hot (n, k).
std::vector<float> one_hot(const std::int32_t* labels, std::int64_t n, std::int64_t k);

}  // namespace detdl
