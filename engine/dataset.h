// An in-memory data set and the row operations the loaders, the splits and the trainer
// share. Data sets live on the host: the trainer gathers each batch here and copies it to
// the run's device.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

#include "engine/tensor.h"

namespace detdl {

// Inputs x (N, ...) float32; targets y: (N) int32 class labels for softmax_ce, or float32 of
// the model output's shape for bce / mse.
struct Dataset {
  Tensor x;
  Tensor y;
  std::int64_t size() const { return x.dim(0); }
};

// The loss a data set's targets are for (the trainer's loss, chosen by the task).
// softmax_ce: exact cross-entropy of the logits; keras_ce: Keras 2.2.2's categorical
// cross-entropy of the softmax output, probabilities clipped to [1e-7, 1 - 1e-7]
// (kernels/common/cross_entropy.h). Both take class labels and a logits output.
enum class LossKind { softmax_ce, bce, mse, keras_ce };
std::string_view loss_name(LossKind k);
// softmax_ce or keras_ce: int32 class labels, the model's output is logits.
inline bool takes_class_labels(LossKind k) {
  return k == LossKind::softmax_ce || k == LossKind::keras_ce;
}

// Rows [begin, end) of both tensors, copied.
Dataset slice_rows(const Dataset& d, std::int64_t begin, std::int64_t end);
// The given rows of both tensors, in the given order, copied. Throws std::out_of_range for
// a row outside the data set and std::invalid_argument when x and y differ in length.
Dataset take_rows(const Dataset& d, const std::vector<std::int64_t>& rows);

// Rows idx[0..count) of t (N, ...) gathered into a new host tensor (count, ...). t must be
// on the host.
Tensor gather_rows(const Tensor& t, const std::int64_t* idx, std::int64_t count);

}  // namespace detdl
