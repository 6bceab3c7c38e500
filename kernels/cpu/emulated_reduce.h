// Value reductions at the `emulated` level (ImplFamily::reduce, kernels/common/impl_choice.h):
// the same sums as reduce.h / the canonical order, in a tree shape drawn from the impl seed.
// Used for bias gradients (linear and convolution), batch-norm statistics, global average
// pooling and loss means. Every shape is thread-count invariant (each output is one task's
// work in a fixed order) and within the float64 bound of the canonical sum on the tests'
// data (tests/kernels/test_emulated_reduce.cpp).
//
// The shapes, for the sum of terms t_0 .. t_{n-1} (u = 2^-24):
//   canonical       chunks of 256 added in order, pairwise tree over the chunk partials
//                   (kernels/common/reduction.h): the engine's own order.
//   sequential      one chain from +0.0f in index order: a single-thread loop, as NumPy's
//                   add.reduce along a non-contiguous axis (sum(axis=0) adds row by row)
//                   or a naive framework CPU kernel. Worst-case bound (n-1) u sum|t|,
//                   larger than the canonical's for n > ~280; realised errors on real data
//                   grow like sqrt(n) u and stay inside it (the tests check this).
//   warp_tree_256,  one thread block of B = 256 or 1024 threads reduces the whole range, as
//   warp_tree_1024  CUB's BlockReduce after a grid-stride loop (PyTorch's per-channel
//                   reductions): thread t adds t_t, t_{t+B}, t_{t+2B}, ... in a chain from
//                   +0.0f; within each warp of 32 lanes a shuffle-down tree, offsets 16, 8,
//                   4, 2, 1 (v[l] = v[l] + v[l + off] for l < off); lane 0 of each warp writes
//                   its partial; then the B/32 warp partials are reduced by the same tree
//                   (offsets B/64, ..., 1). Bound (ceil(n/B) + 5 + log2(B/32)) u sum|t|.
//   block_atomic    blocks of 256 consecutive terms, each reduced as warp_tree_256 with one
//                   term per thread; the block partials are atomicAdd-ed into an output
//                   that starts at +0.0f, in an arrival order drawn per step (a Fisher-Yates
//                   permutation of the blocks, impl_permutation, decision kArrivalWhat + k
//                   for the call's k-th sum). This is the one-pass grid reduction with
//                   atomics (e.g. a bias-gradient kernel ending in atomicAdd). Bound
//                   (8 + ceil(n/256)) u sum|t|. One order serves every column / channel of
//                   a call (the grid's blocks land in one order).
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/common/impl_choice.h"
#include "kernels/common/reduce_shape.h"
#include "kernels/common/reduction.h"

namespace detdl::cpu {

// The shapes and their draw live in kernels/common/reduce_shape.h (the CUDA kernels run the
// same ones); named here too, as the CPU's callers know them.
using detdl::arrival_order;
using detdl::kArrivalWhat;
using detdl::kAtomicBlockTerms;
using detdl::kReduceShapeCount;
using detdl::reduce_shape;
using detdl::ReduceShape;

namespace detail {

// Shuffle-down tree over v[0..lanes), lanes a power of two: the result lands in v[0].
inline float shuffle_tree(float* v, int lanes) {
  for (int off = lanes / 2; off >= 1; off /= 2)
    for (int l = 0; l < off; ++l) v[l] = v[l] + v[l + off];
  return v[0];
}

// One block of B threads (B a multiple of 32, <= 1024) over terms [0, n) of term:
// grid-stride chains, warp trees, then the tree over warp partials.
template <class Term>
float block_reduce(int B, std::int64_t n, Term term) {
  float lane[1024];
  for (int t = 0; t < B; ++t) lane[t] = 0.0f;
  for (std::int64_t base = 0; base < n; base += B) {  // one grid-stride round per pass
    const int m = n - base < B ? static_cast<int>(n - base) : B;
    for (int t = 0; t < m; ++t) lane[t] = lane[t] + term(base + t);
  }
  float warp[32];
  for (int w = 0; w < B / 32; ++w) warp[w] = shuffle_tree(lane + 32 * w, 32);
  return shuffle_tree(warp, B / 32);
}

}  // namespace detail

// The sum of term(k), k in [0, n), in shape s; order is arrival_order(s, d, n, k) (read only
// by block_atomic). Serial: callers parallelise over independent sums.
template <class Term>
float shaped_sum_of(ReduceShape s, const std::int64_t* order, std::int64_t n, Term term) {
  switch (s) {
    case ReduceShape::sequential: {
      float acc = 0.0f;
      for (std::int64_t k = 0; k < n; ++k) acc = acc + term(k);
      return acc;
    }
    case ReduceShape::warp_tree_256: return detail::block_reduce(256, n, term);
    case ReduceShape::warp_tree_1024: return detail::block_reduce(1024, n, term);
    case ReduceShape::block_atomic: {
      const std::int64_t blocks = (n + kAtomicBlockTerms - 1) / kAtomicBlockTerms;
      float out = 0.0f;
      for (std::int64_t j = 0; j < blocks; ++j) {
        const std::int64_t b0 = order[j] * kAtomicBlockTerms;
        const std::int64_t len = n - b0 < kAtomicBlockTerms ? n - b0 : kAtomicBlockTerms;
        out = out + detail::block_reduce(256, len, [&](std::int64_t k) { return term(b0 + k); });
      }
      return out;
    }
    default: return canonical_sum_of(n, term);
  }
}

// The explicit-shape forms of the three sums below (d supplies block_atomic's order).
void shaped_column_sums(ReduceShape s, const ImplDraw& d, std::int64_t rows, std::int64_t cols,
                        const float* x,  // (rows, cols)
                        float* out);     // (cols)
void shaped_plane_sums(ReduceShape s, const ImplDraw& d, std::int64_t N, std::int64_t C,
                       std::int64_t P,
                       const float* x,                                               // (N, C, P)
                       float* out);                                                  // (C)
float shaped_sum(ReduceShape s, const ImplDraw& d, std::int64_t n, const float* x);  // x: (n)

// out[j] = sum over i of x[i][j], in the drawn shape.
void emulated_column_sums(const ImplDraw& d, std::int64_t rows, std::int64_t cols,
                          const float* x,  // (rows, cols)
                          float* out);     // (cols)

// out[c] = sum over (n, p) flattened in that order of x[n][c][p], in the drawn shape
// (convolution bias gradients, batch-norm statistics).
void emulated_plane_sums(const ImplDraw& d, std::int64_t N, std::int64_t C, std::int64_t P,
                         const float* x,  // (N, C, P)
                         float* out);     // (C)

// The sum over the flat index of x, in the drawn shape.
float emulated_sum(const ImplDraw& d, std::int64_t n, const float* x);  // x: (n)

}  // namespace detdl::cpu
