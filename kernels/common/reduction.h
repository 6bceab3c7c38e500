// The canonical reduction of the determinism contract (docs/determinism.md):
//   1. split the index range into chunks of S consecutive terms (the last may be shorter);
//   2. inside a chunk accumulate in index order from +0.0f: p = fmaf(a_k, b_k, p) for
//      products, p = p + x_k for values;
//   3. combine the chunk partials with a balanced binary tree over the chunk index (pairs
//      (0,1), (2,3), ..., then pairs of pairs; a node without a right child takes its left
//      child unchanged). The root is the result; an empty reduction is +0.0f.
// The two chunk sizes live here and only here: changing either changes every golden hash.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common/hd.h"

namespace detdl {

inline constexpr int kChunkProducts = 4096;  // sums of products: GEMM, conv, their gradients
inline constexpr int kChunkValues = 256;     // sums of values: bias grads, norm stats, losses

// Streams chunk partials in chunk order and yields the tree's root. It keeps a stack of
// partials and merges equal-sized neighbours as a binary counter does; what is left on
// the stack is folded right to left at the end. This gives exactly the level-by-level
// tree because every merge it does is a node of that tree, and the final fold builds the
// right spine of the tree (whose right subtrees are the smaller, later groups).
struct ChunkTree {
  float part[64];
  std::uint8_t height[64];
  int depth = 0;

  DETDL_HD void push(float p) {
    std::uint8_t h = 0;
    while (depth > 0 && height[depth - 1] == h) {
      p = part[--depth] + p;
      ++h;
    }
    part[depth] = p;
    height[depth++] = h;
  }
  DETDL_HD float root() const {
    if (depth == 0) return 0.0f;
    float r = part[depth - 1];
    for (int i = depth - 2; i >= 0; --i) r = part[i] + r;
    return r;
  }
};

// Canonical sum of values x[0], x[stride], ..., x[(n-1)*stride] (chunk kChunkValues).
DETDL_HD float canonical_sum(const float* x, std::int64_t n, std::int64_t stride = 1) {
  ChunkTree tree;
  for (std::int64_t s = 0; s < n; s += kChunkValues) {
    const std::int64_t e = (s + kChunkValues < n) ? s + kChunkValues : n;
    float p = 0.0f;
    for (std::int64_t k = s; k < e; ++k) p = p + x[k * stride];
    tree.push(p);
  }
  return tree.root();
}

// M canonical sums of n values each, out[m] = canonical_sum(xs[m], n), with the M chains of
// a chunk run side by side: each chain keeps its own order (the same bits), and M
// independent adds per term fill the adder's pipeline where one chain waits on each add.
template <int M>
inline void canonical_sums(const float* const* xs, std::int64_t n, float* out) {
  ChunkTree tree[M];
  for (std::int64_t s = 0; s < n; s += kChunkValues) {
    const std::int64_t e = (s + kChunkValues < n) ? s + kChunkValues : n;
    float p[M];
#pragma GCC unroll 16
    for (int m = 0; m < M; ++m) p[m] = 0.0f;
    for (std::int64_t k = s; k < e; ++k)
#pragma GCC unroll 16
      for (int m = 0; m < M; ++m) p[m] = p[m] + xs[m][k];
    for (int m = 0; m < M; ++m) tree[m].push(p[m]);
  }
  for (int m = 0; m < M; ++m) out[m] = tree[m].root();
}

// Canonical dot product sum_k a[k*sa] * b[k*sb] (chunk kChunkProducts).
DETDL_HD float canonical_dot(const float* a, std::int64_t sa, const float* b, std::int64_t sb,
                             std::int64_t n) {
  ChunkTree tree;
  for (std::int64_t s = 0; s < n; s += kChunkProducts) {
    const std::int64_t e = (s + kChunkProducts < n) ? s + kChunkProducts : n;
    float p = 0.0f;
    for (std::int64_t k = s; k < e; ++k) p = fmaf(a[k * sa], b[k * sb], p);
    tree.push(p);
  }
  return tree.root();
}

// Canonical sum of values given by a functor term(k), k in [0, n): for reductions whose
// terms are computed on the fly (e.g. (x - mean)^2 in batch norm, a loss per sample).
template <class Term>
DETDL_HD float canonical_sum_of(std::int64_t n, Term term) {
  if (n <= kChunkValues) {  // one chunk: the tree's root is its partial (the common short sum)
    float p = 0.0f;
    for (std::int64_t k = 0; k < n; ++k) p = p + term(k);
    return p;
  }
  ChunkTree tree;
  for (std::int64_t s = 0; s < n; s += kChunkValues) {
    const std::int64_t e = (s + kChunkValues < n) ? s + kChunkValues : n;
    float p = 0.0f;
    for (std::int64_t k = s; k < e; ++k) p = p + term(k);
    tree.push(p);
  }
  return tree.root();
}

}  // namespace detdl
