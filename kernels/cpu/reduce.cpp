#include "kernels/cpu/reduce.h"

#include <algorithm>
#include <vector>

#include "kernels/common/reduction.h"
#include "kernels/cpu/parallel.h"

namespace detdl::cpu {
namespace {

// Canonical column sums of rows [0, rows) for columns [j0, j1): chunk partials are
// accumulated for all columns at once (each column is an independent lane doing the same
// adds in row order, so the loop vectorises without changing any bit) and pushed into
// one ChunkTree per column.
void column_sums_range(std::int64_t rows, std::int64_t cols, const float* x, float* out,
                       std::int64_t j0, std::int64_t j1) {
  const std::int64_t w = j1 - j0;
  if (rows <= kChunkValues) {  // one chunk: the partial is the result
    for (std::int64_t j = 0; j < w; ++j) out[j0 + j] = 0.0f;
    for (std::int64_t i = 0; i < rows; ++i) {
      const float* row = x + i * cols + j0;
      float* o = out + j0;
      for (std::int64_t j = 0; j < w; ++j) o[j] = o[j] + row[j];
    }
    return;
  }
  std::vector<ChunkTree> trees(static_cast<std::size_t>(w));
  std::vector<float> part(static_cast<std::size_t>(w));
  for (std::int64_t s = 0; s < rows; s += kChunkValues) {
    const std::int64_t e = s + kChunkValues < rows ? s + kChunkValues : rows;
    for (auto& p : part) p = 0.0f;
    for (std::int64_t i = s; i < e; ++i) {
      const float* row = x + i * cols + j0;
      for (std::int64_t j = 0; j < w; ++j) part[j] = part[j] + row[j];
    }
    for (std::int64_t j = 0; j < w; ++j) trees[j].push(part[j]);
  }
  for (std::int64_t j = 0; j < w; ++j) out[j0 + j] = trees[j].root();
}

}  // namespace

void column_sums(Level level, std::int64_t rows, std::int64_t cols, const float* x, float* out) {
  if (level == Level::fast && num_threads() > 1 && rows >= 2 * num_threads()) {
    // Pieces of rows handed out dynamically; each worker sums its pieces into its own
    // partial, and the partials are added into out in the order the workers finish.
    const int T = num_threads();
    const std::int64_t piece = std::max<std::int64_t>(1, rows / (4 * T));
    const std::int64_t pieces = (rows + piece - 1) / piece;
    std::vector<std::vector<float>> part(static_cast<std::size_t>(T),
                                         std::vector<float>(static_cast<std::size_t>(cols), 0.0f));
    std::vector<char> used(static_cast<std::size_t>(T), 0);
    parallel_dynamic(pieces, [&](std::int64_t p, int w) {
      used[w] = 1;
      for (std::int64_t i = p * piece; i < std::min(rows, (p + 1) * piece); ++i)
        for (std::int64_t j = 0; j < cols; ++j) part[w][j] = part[w][j] + x[i * cols + j];
    });
    for (std::int64_t j = 0; j < cols; ++j) out[j] = 0.0f;
    for (int w = 0; w < T; ++w)
      if (used[w])
        for (std::int64_t j = 0; j < cols; ++j) out[j] = out[j] + part[w][j];
    return;
  }
  // Columns in blocks of 64 (one task each): a fixed partition, thread-count invariant.
  constexpr std::int64_t kBlock = 64;
  const std::int64_t blocks = (cols + kBlock - 1) / kBlock;
  parallel_for(blocks, [&](std::int64_t b) {
    const std::int64_t j0 = b * kBlock, j1 = j0 + kBlock < cols ? j0 + kBlock : cols;
    column_sums_range(rows, cols, x, out, j0, j1);
  });
}

float sum_all(Level level, std::int64_t n, const float* x) {
  if (level == Level::fast && num_threads() > 1 && n >= 4 * kChunkValues) {
    // As column_sums: dynamic pieces, per-worker partials, one sequential chain each.
    const int T = num_threads();
    const std::int64_t piece = std::max<std::int64_t>(kChunkValues, n / (8 * T));
    const std::int64_t pieces = (n + piece - 1) / piece;
    std::vector<float> part(static_cast<std::size_t>(T), 0.0f);
    parallel_dynamic(pieces, [&](std::int64_t p, int w) {
      float acc = part[w];
      for (std::int64_t i = p * piece; i < std::min(n, (p + 1) * piece); ++i) acc = acc + x[i];
      part[w] = acc;
    });
    float total = 0.0f;
    for (float p : part) total = total + p;
    return total;
  }
  // Chunks are independent: compute their partials in parallel, fold them in order.
  const std::int64_t chunks = (n + kChunkValues - 1) / kChunkValues;
  if (chunks <= 8) return canonical_sum(x, n);
  std::vector<float> part(static_cast<std::size_t>(chunks));
  parallel_for(chunks, [&](std::int64_t c) {
    const std::int64_t s = c * kChunkValues, e = s + kChunkValues < n ? s + kChunkValues : n;
    float p = 0.0f;
    for (std::int64_t k = s; k < e; ++k) p = p + x[k];
    part[c] = p;
  });
  ChunkTree tree;
  for (float p : part) tree.push(p);
  return tree.root();
}

}  // namespace detdl::cpu
