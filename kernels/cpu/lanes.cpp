// The lane kernels of lanes.h on AVX2: one __m256 is one element of 8 problems.
#include "kernels/cpu/lanes.h"

#include <immintrin.h>

#include <vector>

#include "kernels/common/reduction.h"
#include "kernels/cpu/avx2.h"

namespace detdl::cpu::lanes {

namespace {

using i64 = std::int64_t;
static_assert(kLanes == 8, "these kernels are AVX2's: one __m256 per element");

// reduction.h's ChunkTree lane by lane: the same merges in the same order.
struct VecTree {
  __m256 part[64];
  std::uint8_t height[64];
  int depth = 0;
  void push(__m256 p) {
    std::uint8_t h = 0;
    while (depth > 0 && height[depth - 1] == h) {
      p = _mm256_add_ps(part[--depth], p);
      ++h;
    }
    part[depth] = p;
    height[depth++] = h;
  }
  __m256 root() const {
    if (depth == 0) return _mm256_setzero_ps();
    __m256 r = part[depth - 1];
    for (int i = depth - 2; i >= 0; --i) r = _mm256_add_ps(part[i], r);
    return r;
  }
};

// One IB x JB tile of dot's outputs: each a chain from +0.0f over r in [0, R) (R within one
// chunk). Pointers are at the tile's first element; strides in floats (kLanes per element).
// Accumulators as a 2-D array fully unrolled: IB * JB + IB + 1 <= 16 registers.
template <int IB, int JB>
void tile(i64 R, const float* a, i64 sa_i, i64 sa_r, const float* b, i64 sb_j, i64 sb_r, float* c,
          i64 sc_i, i64 sc_j) {
  __m256 acc[IB][JB];
#pragma GCC unroll 4
  for (int i = 0; i < IB; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < JB; ++j) acc[i][j] = _mm256_setzero_ps();
  for (i64 r = 0; r < R; ++r, a += sa_r, b += sb_r) {
    __m256 av[IB];
#pragma GCC unroll 4
    for (int i = 0; i < IB; ++i) av[i] = _mm256_loadu_ps(a + i * sa_i);
#pragma GCC unroll 4
    for (int j = 0; j < JB; ++j) {
      const __m256 bv = _mm256_loadu_ps(b + j * sb_j);
#pragma GCC unroll 4
      for (int i = 0; i < IB; ++i) acc[i][j] = _mm256_fmadd_ps(av[i], bv, acc[i][j]);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < IB; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < JB; ++j) _mm256_storeu_ps(c + i * sc_i + j * sc_j, acc[i][j]);
}

constexpr int kIB = 3, kJB = 4;
using TileFn = void (*)(i64, const float*, i64, i64, const float*, i64, i64, float*, i64, i64);
template <int IB>
constexpr TileFn row_of(int jb) {
  return jb == 1 ? tile<IB, 1> : jb == 2 ? tile<IB, 2> : jb == 3 ? tile<IB, 3> : tile<IB, 4>;
}
TileFn tile_fn(int ib, int jb) {
  return ib == 1 ? row_of<1>(jb) : ib == 2 ? row_of<2>(jb) : row_of<3>(jb);
}

// dot over r in [r0, r1) (one chunk at most) for every (i, j): chains from +0.0f.
void dot_chunk(i64 I, i64 J, i64 r0, i64 r1, const float* a, i64 a_i, i64 a_r, const float* b,
               i64 b_j, i64 b_r, float* c, i64 c_i, i64 c_j) {
  const i64 L = kLanes;
  for (i64 i = 0; i < I; i += kIB) {
    const int ib = static_cast<int>(I - i < kIB ? I - i : kIB);
    for (i64 j = 0; j < J; j += kJB) {
      const int jb = static_cast<int>(J - j < kJB ? J - j : kJB);
      tile_fn(ib, jb)(r1 - r0, a + (i * a_i + r0 * a_r) * L, a_i * L, a_r * L,
                      b + (j * b_j + r0 * b_r) * L, b_j * L, b_r * L, c + (i * c_i + j * c_j) * L,
                      c_i * L, c_j * L);
    }
  }
}

}  // namespace

void dot(i64 I, i64 J, i64 R, const float* a, i64 a_i, i64 a_r, const float* b, i64 b_j, i64 b_r,
         float* c, i64 c_i, i64 c_j) {
  if (R <= kChunkProducts) {  // one chunk (or none: +0.0f): the tree's root is its chain
    dot_chunk(I, J, 0, R, a, a_i, a_r, b, b_j, b_r, c, c_i, c_j);
    return;
  }
  // Long reductions (a weight gradient over a batch of more than kChunkProducts rows): each
  // chunk's chains into a buffer of partials, then the canonical tree per output.
  const i64 chunks = (R + kChunkProducts - 1) / kChunkProducts, IJ = I * J;
  std::vector<float> parts(static_cast<std::size_t>(chunks * IJ * kLanes));
  for (i64 ch = 0; ch < chunks; ++ch) {
    const i64 r0 = ch * kChunkProducts, r1 = r0 + kChunkProducts < R ? r0 + kChunkProducts : R;
    dot_chunk(I, J, r0, r1, a, a_i, a_r, b, b_j, b_r, parts.data() + ch * IJ * kLanes, J, 1);
  }
  for (i64 i = 0; i < I; ++i)
    for (i64 j = 0; j < J; ++j) {
      VecTree tree;
      for (i64 ch = 0; ch < chunks; ++ch)
        tree.push(_mm256_loadu_ps(parts.data() + (ch * IJ + i * J + j) * kLanes));
      _mm256_storeu_ps(c + (i * c_i + j * c_j) * kLanes, tree.root());
    }
}

void column_sums(i64 N, i64 J, const float* x, float* s) {
  constexpr int kCols = 4;  // columns summed side by side (independent chains)
  for (i64 j0 = 0; j0 < J; j0 += kCols) {
    const int q = static_cast<int>(J - j0 < kCols ? J - j0 : kCols);
    if (N <= kChunkValues) {  // one chunk: the root is its chain (the common batch)
      __m256 p[kCols] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                         _mm256_setzero_ps()};
      for (i64 n = 0; n < N; ++n)
        for (int k = 0; k < q; ++k)
          p[k] = _mm256_add_ps(p[k], _mm256_loadu_ps(x + (n * J + j0 + k) * kLanes));
      for (int k = 0; k < q; ++k) _mm256_storeu_ps(s + (j0 + k) * kLanes, p[k]);
      continue;
    }
    VecTree trees[kCols];
    for (i64 n0 = 0; n0 < N; n0 += kChunkValues) {
      const i64 n1 = n0 + kChunkValues < N ? n0 + kChunkValues : N;
      __m256 p[kCols] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                         _mm256_setzero_ps()};
      for (i64 n = n0; n < n1; ++n)
        for (int k = 0; k < q; ++k)
          p[k] = _mm256_add_ps(p[k], _mm256_loadu_ps(x + (n * J + j0 + k) * kLanes));
      for (int k = 0; k < q; ++k) trees[k].push(p[k]);
    }
    for (int k = 0; k < q; ++k) _mm256_storeu_ps(s + (j0 + k) * kLanes, trees[k].root());
  }
}

void add_rows(i64 N, i64 J, const float* b, float* y) {
  for (i64 n = 0; n < N; ++n)
    for (i64 j = 0; j < J; ++j) {
      float* p = y + (n * J + j) * kLanes;
      _mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(b + j * kLanes)));
    }
}

void interleave(i64 n, const float* const* src, i64 count, float* dst) {
  i64 i = 0;
  if (count == kLanes)  // whole 8 x 8 blocks: one row per problem in, one per element out
    for (; i + 8 <= n; i += 8) {
      __m256 r[8];
      for (int l = 0; l < 8; ++l) r[l] = _mm256_loadu_ps(src[l] + i);
      avx2::transpose8(r);
      for (int k = 0; k < 8; ++k) _mm256_storeu_ps(dst + (i + k) * kLanes, r[k]);
    }
  for (; i < n; ++i)
    for (i64 l = 0; l < kLanes; ++l) dst[i * kLanes + l] = l < count ? src[l][i] : 0.0f;
}

void deinterleave(i64 n, const float* src, i64 count, float* const* dst) {
  i64 i = 0;
  if (count == kLanes)
    for (; i + 8 <= n; i += 8) {
      __m256 r[8];
      for (int k = 0; k < 8; ++k) r[k] = _mm256_loadu_ps(src + (i + k) * kLanes);
      avx2::transpose8(r);
      for (int l = 0; l < 8; ++l) _mm256_storeu_ps(dst[l] + i, r[l]);
    }
  for (; i < n; ++i)
    for (i64 l = 0; l < count; ++l) dst[l][i] = src[i * kLanes + l];
}

}  // namespace detdl::cpu::lanes
