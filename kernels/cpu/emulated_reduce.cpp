// The emulated reduction shapes (emulated_reduce.h). Each output (a column, a channel, the
// one sum) is computed by one task with shaped_sum_of, so no bit depends on the threads.
#include "kernels/cpu/emulated_reduce.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/parallel.h"

namespace detdl::cpu {
namespace {

using i64 = std::int64_t;

constexpr i64 kColumnsPerTask = 16;  // a fixed partition of the columns / channels

// A per-thread buffer of n floats: one sum's terms copied contiguous, so that the shapes'
// loops read consecutive floats (the lanes of block_reduce then vectorise).
float* contiguous(i64 n) {
  thread_local std::vector<float> buf;
  if (static_cast<i64>(buf.size()) < n) buf.resize(static_cast<std::size_t>(n));
  return buf.data();
}

}  // namespace

void shaped_column_sums(ReduceShape s, const ImplDraw& d, i64 rows, i64 cols, const float* x,
                        float* out) {
  const std::vector<i64> order = arrival_order(s, d, rows);
  const i64 tasks = (cols + kColumnsPerTask - 1) / kColumnsPerTask;
  parallel_for(tasks, [&](i64 b) {
    float* col = contiguous(rows);
    for (i64 j = b * kColumnsPerTask; j < cols && j < (b + 1) * kColumnsPerTask; ++j) {
      for (i64 i = 0; i < rows; ++i) col[i] = x[i * cols + j];
      out[j] = shaped_sum_of(s, order.data(), rows, [col](i64 i) { return col[i]; });
    }
  });
}

void shaped_plane_sums(ReduceShape s, const ImplDraw& d, i64 N, i64 C, i64 P, const float* x,
                       float* out) {
  const std::vector<i64> order = arrival_order(s, d, N * P);
  parallel_for(C, [&](i64 c) {
    float* plane = contiguous(N * P);  // the channel's terms in (n, p) order
    for (i64 n = 0; n < N; ++n) std::copy_n(x + (n * C + c) * P, P, plane + n * P);
    out[c] = shaped_sum_of(s, order.data(), N * P, [plane](i64 k) { return plane[k]; });
  });
}

float shaped_sum(ReduceShape s, const ImplDraw& d, i64 n, const float* x) {
  const std::vector<i64> order = arrival_order(s, d, n);
  return shaped_sum_of(s, order.data(), n, [x](i64 k) { return x[k]; });
}

void emulated_column_sums(const ImplDraw& d, i64 rows, i64 cols, const float* x, float* out) {
  shaped_column_sums(reduce_shape(d), d, rows, cols, x, out);
}

void emulated_plane_sums(const ImplDraw& d, i64 N, i64 C, i64 P, const float* x, float* out) {
  shaped_plane_sums(reduce_shape(d), d, N, C, P, x, out);
}

float emulated_sum(const ImplDraw& d, i64 n, const float* x) {
  return shaped_sum(reduce_shape(d), d, n, x);
}

}  // namespace detdl::cpu
