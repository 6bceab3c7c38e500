// sgemm: the thread partition, the chunk tree over k, and the `fast` split-K. The
// arithmetic of one chunk (one fmaf chain per C element) is gemm_block.cpp's.
#include "kernels/cpu/gemm.h"

#include <algorithm>
#include <atomic>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "kernels/common/reduction.h"
#include "kernels/cpu/gemm_block.h"
#include "kernels/cpu/parallel.h"

namespace detdl::cpu {
namespace {

using i64 = std::int64_t;
using gemm_detail::gemm_chain;
using gemm_detail::kKC;
using gemm_detail::kMR;
using gemm_detail::kNR;
using gemm_detail::Operand;

i64 ceil_div(i64 a, i64 b) { return (a + b - 1) / b; }

// A tm x tn grid of C regions, one per thread. Which grid is chosen changes only speed:
// every element is the same chain whichever region computes it. Among the factorisations
// of the thread count (fewer threads if the matrix has too few micro-tiles) take the one
// that packs the least: each region packs (M/tm + N/tn) * K values.
struct Grid {
  i64 tm = 1, tn = 1;
};
Grid choose_grid(i64 M, i64 N, i64 threads) {
  const i64 mt = ceil_div(M, kMR), nt = ceil_div(N, kNR);
  for (i64 t = threads; t > 1; --t) {
    Grid best;
    double best_cost = -1.0;
    for (i64 tm = 1; tm <= t; ++tm) {
      if (t % tm != 0 || tm > mt || t / tm > nt) continue;
      const double cost = static_cast<double>(M) / tm + static_cast<double>(N) / (t / tm);
      if (best_cost < 0.0 || cost < best_cost) best = {tm, t / tm}, best_cost = cost;
    }
    if (best_cost >= 0.0) return best;
  }
  return {};
}

// Region `task` of grid g over C (M, N): rows [m0, m1), columns [n0, n1). Boundaries fall
// on micro-tile boundaries so that only the matrix's own last row/column tiles are edge tiles.
struct Region {
  i64 m0, m1, n0, n1;
};
Region region(Grid g, i64 M, i64 N, i64 task) {
  const i64 mt = ceil_div(M, kMR), nt = ceil_div(N, kNR);
  const i64 i = task / g.tn, j = task % g.tn;
  return {std::min(M, mt * i / g.tm * kMR), std::min(M, mt * (i + 1) / g.tm * kMR),
          std::min(N, nt * j / g.tn * kNR), std::min(N, nt * (j + 1) / g.tn * kNR)};
}

// One region of C, in the canonical order: one chain per kChunkProducts chunk of k, the
// chunk partials merged per element as ChunkTree does (a binary-counter stack of partial
// regions: merge equal-height neighbours left + right, fold the rest right to left).
void region_canonical(Operand a, Operand b, i64 m0, i64 m1, i64 n0, i64 n1, i64 K, float* C,
                      i64 ldc) {
  if (K <= kChunkProducts) {  // one chunk: the chain itself, straight into C
    gemm_chain(a, b, m0, m1, n0, n1, 0, K, false, C + m0 * ldc + n0, ldc);
    return;
  }
  const i64 rows = m1 - m0, cols = n1 - n0, size = rows * cols;
  thread_local std::vector<std::vector<float>> slots;  // (rows, cols) partials
  std::vector<int> height;
  int depth = 0;
  for (i64 k0 = 0; k0 < K; k0 += kChunkProducts) {
    if (static_cast<int>(slots.size()) <= depth) slots.resize(depth + 1);
    if (static_cast<i64>(slots[depth].size()) < size) slots[depth].resize(size);
    gemm_chain(a, b, m0, m1, n0, n1, k0, std::min(K, k0 + kChunkProducts), false,
               slots[depth].data(), cols);
    int h = 0;
    while (depth > 0 && height[depth - 1] == h) {
      float* left = slots[depth - 1].data();
      const float* right = slots[depth].data();
      for (i64 i = 0; i < size; ++i) left[i] = left[i] + right[i];
      --depth;
      ++h;
    }
    if (static_cast<int>(height.size()) <= depth) height.resize(depth + 1);
    height[depth++] = h;
  }
  for (i64 r = 0; r < rows; ++r) {
    float* c = C + (m0 + r) * ldc + n0;
    const float* top = slots[depth - 1].data() + r * cols;
    std::copy(top, top + cols, c);
    for (int d = depth - 2; d >= 0; --d) {
      const float* left = slots[d].data() + r * cols;
      for (i64 j = 0; j < cols; ++j) c[j] = left[j] + c[j];
    }
  }
}

// `fast` split-K is worth it when C is small against the reduction (weight gradients):
// then splitting M x N would make every thread pack all of the long A or B.
bool split_k_pays(i64 M, i64 N, i64 K, int threads) {
  return threads > 1 && K >= 2 * kChunkProducts && K >= 4 * std::max(M, N);
}

// `fast` split-K: k is cut into pieces handed out dynamically (parallel_dynamic); each
// worker continues one fmaf chain in its own (M, N) partial over the pieces it happens to
// get, in the order it gets them; the partials are then added into C in the order the
// workers finished. Which worker gets which piece depends on timing, so the bits may
// differ from run to run with 2+ threads.
void fast_split_k(Operand a, Operand b, i64 M, i64 N, i64 K, float* C, i64 ldc, int threads) {
  const i64 piece = std::max<i64>(kChunkProducts, ceil_div(ceil_div(K, 4 * threads), kKC) * kKC);
  const i64 n_pieces = ceil_div(K, piece);
  std::vector<std::vector<float>> partial(threads);
  std::vector<i64> finished(threads, -1);  // completion stamp of each worker's last piece
  std::atomic<i64> stamp{0};
  parallel_dynamic(n_pieces, [&](i64 p, int w) {
    const bool started = finished[w] >= 0;
    if (!started) partial[w].resize(M * N);
    gemm_chain(a, b, 0, M, 0, N, p * piece, std::min(K, (p + 1) * piece), started,
               partial[w].data(), N);
    finished[w] = stamp.fetch_add(1);
  });
  std::vector<int> order;
  for (int w = 0; w < threads; ++w)
    if (finished[w] >= 0) order.push_back(w);
  std::sort(order.begin(), order.end(), [&](int x, int y) { return finished[x] < finished[y]; });
  for (i64 m = 0; m < M; ++m) {
    float* c = C + m * ldc;
    const float* first = partial[order[0]].data() + m * N;
    std::copy(first, first + N, c);
    for (std::size_t i = 1; i < order.size(); ++i) {
      const float* p = partial[order[i]].data() + m * N;
      for (i64 n = 0; n < N; ++n) c[n] = c[n] + p[n];
    }
  }
}

}  // namespace

void sgemm(Level level, bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
           const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float* C,
           std::int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  const Operand a{A, lda, trans_a}, b{B, ldb, trans_b};
  const int threads = num_threads();
  if (level == Level::fast && split_k_pays(M, N, K, threads)) {
    fast_split_k(a, b, M, N, K, C, ldc, threads);
    return;
  }
  const Grid g = choose_grid(M, N, threads);
  parallel_for(g.tm * g.tn, [&](i64 task) {
    const Region r = region(g, M, N, task);
    if (level == Level::fast)  // one chain over all of k, no chunk tree
      gemm_chain(a, b, r.m0, r.m1, r.n0, r.n1, 0, K, false, C + r.m0 * ldc + r.n0, ldc);
    else
      region_canonical(a, b, r.m0, r.m1, r.n0, r.n1, K, C, ldc);
  });
}

void sgemm_batched(Level level, bool trans_a, bool trans_b, std::int64_t R, std::int64_t M,
                   std::int64_t N, std::int64_t K, const float* const* A, std::int64_t lda,
                   const float* const* B, std::int64_t ldb, float* const* C, std::int64_t ldc) {
  if (level == Level::fast)
    throw std::invalid_argument("sgemm_batched: level fast is not batched (use sgemm)");
  if (R <= 0 || M <= 0 || N <= 0) return;
  // Split each product only as far as the threads need: with R >= threads one region per
  // product (its packing is done once), otherwise a grid per product.
  const i64 threads = num_threads();
  const Grid g = choose_grid(M, N, std::max<i64>(1, ceil_div(threads, R)));
  const i64 per = g.tm * g.tn;
  parallel_for(R * per, [&](i64 task) {
    const i64 p = task / per;
    const Region r = region(g, M, N, task % per);
    region_canonical(Operand{A[p], lda, trans_a}, Operand{B[p], ldb, trans_b}, r.m0, r.m1, r.n0,
                     r.n1, K, C[p], ldc);
  });
}

}  // namespace detdl::cpu
