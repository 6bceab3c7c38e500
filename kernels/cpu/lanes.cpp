// The lane kernels of lanes.h for AVX2 (8 lanes: lanes_kernels.inc over __m256), the choice
// of kernels by CPU, and the layout moves (AVX2 transposes for both widths).
#include "kernels/cpu/lanes.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <utility>
#include <vector>

#include "kernels/common/reduction.h"
#include "kernels/cpu/avx2.h"

namespace detdl::cpu::lanes {

namespace {

struct V {
  using reg = __m256;
  static constexpr int lanes = 8;
  static constexpr int kIB = 3, kJB = 4;  // 12 accumulators + 3 + 1 of 16 registers
  static reg zero() { return _mm256_setzero_ps(); }
  static reg loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  // x > 0 ? x : +0.0f as (x > 0 mask) & x: activation.cpp's relu, the same bits (NaN: +0.0f).
  static reg relu(reg v) { return _mm256_and_ps(v, _mm256_cmp_ps(v, zero(), _CMP_GT_OQ)); }
  // z > 0 ? g : +0.0f as (z > 0 mask) & g: activation.cpp's relu backward, the same bits.
  static reg relu_grad(reg z, reg g) {
    return _mm256_and_ps(g, _mm256_cmp_ps(z, zero(), _CMP_GT_OQ));
  }
};

#include "kernels/cpu/lanes_kernels.inc"

std::atomic<bool> g_avx512_allowed{true};

}  // namespace

const Kernels& kernels_avx2() {
  static const Kernels k = make_kernels();
  return k;
}

bool avx512_available() { return __builtin_cpu_supports("avx512f"); }

void set_avx512_allowed(bool on) { g_avx512_allowed.store(on); }

const Kernels& kernels() {
  static const bool has512 = avx512_available();
  return has512 && g_avx512_allowed.load() ? kernels_avx512() : kernels_avx2();
}

void dot(const Kernels& k, std::int64_t I, std::int64_t J, std::int64_t R, const float* a,
         std::int64_t a_i, std::int64_t a_r, const float* b, std::int64_t b_j, std::int64_t b_r,
         float* c, std::int64_t c_i, std::int64_t c_j, const Epilogue* ep) {
  if (R <= kChunkProducts) {  // one chunk (or none: +0.0f): the tree's root is its chain
    k.dot_chunk(I, J, R, a, a_i, a_r, b, b_j, b_r, c, c_i, c_j, ep);
    return;
  }
  // Long reductions (a weight gradient over a batch of more than kChunkProducts rows): each
  // chunk's chains into a buffer of partials, then the canonical tree per output and lane
  // (reduction.h's ChunkTree: the lanes are separate problems).
  const std::int64_t L = k.lanes, chunks = (R + kChunkProducts - 1) / kChunkProducts, IJ = I * J;
  std::vector<float> parts(static_cast<std::size_t>(chunks * IJ * L));
  for (std::int64_t ch = 0; ch < chunks; ++ch) {
    const std::int64_t r0 = ch * kChunkProducts, n = std::min<std::int64_t>(kChunkProducts, R - r0);
    k.dot_chunk(I, J, n, a + r0 * a_r * L, a_i, a_r, b + r0 * b_r * L, b_j, b_r,
                parts.data() + ch * IJ * L, J, 1, nullptr);
  }
  for (std::int64_t e = 0; e < IJ; ++e)
    for (std::int64_t l = 0; l < L; ++l) {
      ChunkTree tree;
      for (std::int64_t ch = 0; ch < chunks; ++ch) tree.push(parts[(ch * IJ + e) * L + l]);
      const std::int64_t at = ((e / J) * c_i + (e % J) * c_j) * L + l;
      float v = tree.root();
      if (ep && ep->bias) v = v + ep->bias[(e % J) * L + l];
      if (ep && ep->relu_grad_of) v = ep->relu_grad_of[at] > 0.0f ? v : 0.0f;
      if (ep && ep->relu) ep->relu[at] = v > 0.0f ? v : 0.0f;
      c[at] = v;
    }
}

// 8 x 8 blocks: eight problems' rows of 8 elements in, transposed, each element's 8 lanes
// out (the two halves of a 16-lane element are two blocks).
// A group of fewer problems than lanes (30 repetitions as 8, 8, 7, 7) takes the blocks too,
// with zeros for the missing problems' rows (interleave) or their rows not stored
// (deinterleave).
void interleave(int lanes, std::int64_t n, const float* const* src, std::int64_t count,
                float* dst) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int half = 0; half < lanes; half += 8) {
      __m256 r[8];
      for (int l = 0; l < 8; ++l)
        r[l] = half + l < count ? _mm256_loadu_ps(src[half + l] + i) : _mm256_setzero_ps();
      avx2::transpose8(r);
      for (int k = 0; k < 8; ++k) _mm256_storeu_ps(dst + (i + k) * lanes + half, r[k]);
    }
  for (; i < n; ++i)
    for (std::int64_t l = 0; l < lanes; ++l) dst[i * lanes + l] = l < count ? src[l][i] : 0.0f;
}

void gather_rows(int lanes, std::int64_t rows, std::int64_t n, const float* const* src,
                 const std::int64_t* const* order, std::int64_t count, float* dst) {
  // The rows are far apart (shuffled): each lane's row kAhead rows on is asked for while this
  // one moves (its first and last line), so the loads do not wait one after the other.
  constexpr std::int64_t kAhead = 4;
  for (std::int64_t i = 0; i < rows; ++i) {
    if (i + kAhead < rows)
      for (std::int64_t l = 0; l < count; ++l) {
        const float* next = src[l] + order[l][i + kAhead] * n;
        __builtin_prefetch(next);
        __builtin_prefetch(next + n - 1);
      }
    float* out = dst + i * n * lanes;
    for (int half = 0; half < lanes; half += 8) {
      const float* row[8];
      for (int l = 0; l < 8; ++l)
        row[l] = half + l < count ? src[half + l] + order[half + l][i] * n : nullptr;
      std::int64_t f = 0;
      for (; f + 8 <= n; f += 8) {  // 8 x 8 blocks
        __m256 r[8];
        for (int l = 0; l < 8; ++l)
          r[l] = row[l] ? _mm256_loadu_ps(row[l] + f) : _mm256_setzero_ps();
        avx2::transpose8(r);
        for (int k = 0; k < 8; ++k) _mm256_storeu_ps(out + (f + k) * lanes + half, r[k]);
      }
      if (f < n) {  // the last columns: loads masked to the row, w vectors stored
        const std::int64_t w = n - f;
        const __m256i m = avx2::first_lanes(w);
        __m256 r[8];
        for (int l = 0; l < 8; ++l)
          r[l] = row[l] ? _mm256_maskload_ps(row[l] + f, m) : _mm256_setzero_ps();
        avx2::transpose8(r);
        for (std::int64_t k = 0; k < w; ++k) _mm256_storeu_ps(out + (f + k) * lanes + half, r[k]);
      }
    }
  }
}

void deinterleave(int lanes, std::int64_t n, const float* src, std::int64_t count,
                  float* const* dst) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int half = 0; half < lanes && half < count; half += 8) {
      __m256 r[8];
      for (int k = 0; k < 8; ++k) r[k] = _mm256_loadu_ps(src + (i + k) * lanes + half);
      avx2::transpose8(r);
      for (int l = 0; l < 8 && half + l < count; ++l) _mm256_storeu_ps(dst[half + l] + i, r[l]);
    }
  for (; i < n; ++i)
    for (std::int64_t l = 0; l < count; ++l) dst[l][i] = src[i * lanes + l];
}

}  // namespace detdl::cpu::lanes
