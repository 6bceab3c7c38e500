// Plain reductions used by several ops.
//
// Reduction orders:
//   column_sums: out[j] = canonical sum of values over i (rows, in order) of x[i][j]
//                (chunks of kChunkValues = 256). Used for linear-layer bias gradients.
//   sum_all:     canonical sum of values over the flat index.
// In `fast` (OpFamily::bias_grad / loss_reduce), pieces of the index range are handed to
// threads dynamically (parallel_dynamic); each thread sums its pieces into one partial in
// the order it got them, and the partials are added in worker order: which piece lands
// in which partial depends on timing, so 2+ threads give run-to-run variation.
#pragma once
#include <cstdint>

#include "kernels/common/level.h"

namespace detdl::cpu {

void column_sums(Level level, std::int64_t rows, std::int64_t cols,
                 const float* x,  // (rows, cols)
                 float* out);     // (cols)

float sum_all(Level level, std::int64_t n, const float* x);  // x: (n)

}  // namespace detdl::cpu
