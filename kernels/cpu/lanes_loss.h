// Softmax cross-entropy, its gradient, the accuracy count and the BUTTER metrics' per-sample
// values for a lane group (kernels/cpu/lanes.h's layout: element i of problem l at
// [i * lanes + l]), each lane its own repetition's batch. Every value is what the
// per-repetition path computes for that repetition alone, bit for bit: loss.h's
// softmax_cross_entropy (both forms; the mean by the canonical order of every level but
// fast), engine/train.cpp's count_correct for class labels, and engine/metrics.cpp's
// per-sample values on the softmax against the one-hot targets (metrics_core_avx2.h, the
// formulas metric_values8 runs). The lanes hold problems, not samples, so nothing is
// transposed: the per-repetition path moved each output out of the lanes, ran these per
// repetition on eight samples per vector, and moved the gradient back in.
#pragma once
#include <cstdint>

#include "kernels/common/cross_entropy.h"
#include "kernels/cpu/lanes.h"

namespace detdl::cpu::lanes {

// Per lane, the batch's results.
struct ClassLoss {
  float loss[kMaxLanes];            // the mean data loss over the count rows
  std::int64_t correct[kMaxLanes];  // rows whose logits' first maximum is the label (no NaN)
};

// count rows of K <= 256 logits per lane (kChunkValues: each row's sum one chain); `lanes` 8 or 16. labels (count) in the lane layout as
// int32, each in [0, K) in every lane (the caller's padding lanes included: std::invalid_argument
// names the row and lane otherwise, before anything is written).
// dlogits (count, K): dL/d logits of the mean loss (upstream gradient 1).
// probs (count, K): the softmax (softmax_forward's values), written.
// metric_values (kMetricValues, count) or nullptr: per metric m, element i is sample i's value
// (MetricAccumulator's per-sample series, metrics_avx2.h's order).
ClassLoss softmax_ce(int lanes, std::int64_t count, std::int64_t K,
                     const float* logits,         // (count, K)
                     const std::int32_t* labels,  // (count)
                     CrossEntropyForm form,
                     float* dlogits,         // (count, K)
                     float* probs,           // (count, K)
                     float* metric_values);  // (kMetricValues, count) or nullptr

}  // namespace detdl::cpu::lanes
