// emulated_sgemm on the AVX2 GEMM engine (gemm_block.h). Long slices: each slice is a
// gemm_chain call (one fmaf chain per element over its k range) into a small per-task
// buffer, combined per element in the plan's order. Short reductions (K <= kShortK): A and
// B are packed once and every 6x16 micro-tile runs all slices and the combine itself, so
// one-term slices do not cost a pass over C each. Both give the same bits. C is cut into
// fixed blocks; a block is one task, so which thread computes it changes nothing.
#include "kernels/cpu/emulated_gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <utility>

#include "kernels/cpu/gemm_block.h"
#include "kernels/cpu/parallel.h"

namespace detdl::cpu {
namespace {

using i64 = std::int64_t;
using gemm_detail::gemm_chain;
using gemm_detail::kMR;
using gemm_detail::kNR;
using gemm_detail::Operand;
using gemm_detail::pack_a;
using gemm_detail::pack_b;

// Blocks of C: small enough that a block's slice buffers stay near the caches, large
// enough that re-packing A and B per block costs little; smaller when a matrix has fewer
// blocks than threads. Only speed depends on them.
struct Blocks {
  i64 mb, nb, rows, cols;  // block size, block counts
  i64 count() const { return rows * cols; }
};
Blocks choose_blocks(i64 M, i64 N) {
  i64 mb = std::min<i64>(20 * kMR, (M + kMR - 1) / kMR * kMR);
  i64 nb = std::min<i64>(16 * kNR, (N + kNR - 1) / kNR * kNR);
  auto make = [&] { return Blocks{mb, nb, (M + mb - 1) / mb, (N + nb - 1) / nb}; };
  while (make().count() < num_threads()) {
    const bool n_can = nb > kNR, m_can = mb > kMR;
    if (n_can && (!m_can || nb * M >= mb * N)) {  // halve the longer side of the block
      nb = std::max<i64>(kNR, nb / 2 / kNR * kNR);
    } else if (m_can) {
      mb = std::max<i64>(kMR, mb / 2 / kMR * kMR);
    } else {
      break;
    }
  }
  return make();
}

template <class Fn>
void for_blocks(i64 M, i64 N, const Fn& fn) {
  const Blocks b = choose_blocks(M, N);
  parallel_for(b.count(), [&](i64 t) {
    const i64 i = t / b.cols, j = t % b.cols;
    fn(i * b.mb, std::min(M, (i + 1) * b.mb), j * b.nb, std::min(N, (j + 1) * b.nb));
  });
}

// Per-thread slice buffers, grown on demand and kept between calls.
std::vector<float>& slot(std::size_t i, i64 n) {
  thread_local std::vector<std::vector<float>> slots;
  if (slots.size() <= i) slots.resize(i + 1);
  if (static_cast<i64>(slots[i].size()) < n) slots[i].resize(static_cast<std::size_t>(n));
  return slots[i];
}

// One block [m0, m1) x [n0, n1) of C in the plan's order; c points at C[m0][n0].
void plan_block(const EmulatedGemmPlan& p, Operand a, Operand b, i64 m0, i64 m1, i64 n0, i64 n1,
                float* c, i64 ldc) {
  const i64 S = p.slices(), rows = m1 - m0, cols = n1 - n0, size = rows * cols;
  auto slice = [&](i64 j, float* dst, i64 ld) {
    gemm_chain(a, b, m0, m1, n0, n1, p.cuts[j], p.cuts[j + 1], false, dst, ld);
  };
  if (S == 1) {
    slice(0, c, ldc);
    return;
  }
  if (p.combine == SplitCombine::arrival) {
    // C = +0.0f, then C = C + P for each slice as it lands. The first landing is computed
    // straight into C; the zero is added together with the second (0 + P0 is exact except
    // that it turns -0.0f into +0.0f, which the explicit add keeps).
    slice(p.order[0], c, ldc);
    float* buf = slot(0, size).data();
    for (i64 i = 1; i < S; ++i) {
      slice(p.order[i], buf, cols);
      for (i64 r = 0; r < rows; ++r) {
        float* cr = c + r * ldc;
        const float* pr = buf + r * cols;
        if (i == 1) {
          for (i64 k = 0; k < cols; ++k) cr[k] = (0.0f + cr[k]) + pr[k];
        } else {
          for (i64 k = 0; k < cols; ++k) cr[k] = cr[k] + pr[k];
        }
      }
    }
    return;
  }
  // Pairwise tree as a binary-counter stack (kernels/common/reduction.h's ChunkTree, per
  // element): merge equal-height neighbours left + right, fold the rest right to left.
  // Same tree as pairing (0,1), (2,3), ... level by level with an odd last node moving up.
  int height[64];
  int depth = 0;
  for (i64 j = 0; j < S; ++j) {
    float* dst = slot(depth, size).data();
    slice(j, dst, cols);
    int h = 0;
    while (depth > 0 && height[depth - 1] == h) {
      float* left = slot(depth - 1, size).data();
      const float* right = slot(depth, size).data();
      for (i64 i = 0; i < size; ++i) left[i] = left[i] + right[i];
      --depth;
      ++h;
    }
    height[depth++] = h;
  }
  for (i64 r = 0; r < rows; ++r) {
    float* cr = c + r * ldc;
    const float* top = slot(depth - 1, size).data() + r * cols;
    std::copy(top, top + cols, cr);
    for (int d = depth - 2; d >= 0; --d) {
      const float* left = slot(d, size).data() + r * cols;
      for (i64 k = 0; k < cols; ++k) cr[k] = left[k] + cr[k];
    }
  }
}

// ---- short reductions: the whole plan per micro-tile ----
// With short slices (split-K of a short reduction: conv data gradients over o, per-tap
// sums over c) a gemm_chain per slice would store and reload the tile once per slice. Here
// the block's A and B are packed once over all of k, and each 6x16 tile runs every slice's
// chain in registers and the combine in an L1 tile. Same chains, same combine order: the
// same bits as plan_block.
constexpr i64 kShortK = 512;  // K up to this takes the register path

struct AlignedBuffer {
  std::unique_ptr<float, decltype(&std::free)> p{nullptr, &std::free};
  std::size_t size = 0;
  float* get(std::size_t n) {
    if (n > size) {
      p.reset(static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64)));
      size = n;
    }
    return p.get();
  }
};

// p = the 6x16 tile's chains over k in [k0, k1) from +0.0f, as micro_6x16 (gemm_block.cpp)
// computes them: lane (r, j) is fmaf(a[k][r], b[k][j], p) in k order. 12 accumulators keep
// both FMA ports busy. a: packed (K, kMR); b: packed (K, kNR).
inline void chain_6x16(const float* a, const float* b, i64 k0, i64 k1, __m256 p[2 * kMR]) {
#pragma GCC unroll 12
  for (int r = 0; r < 2 * kMR; ++r) p[r] = _mm256_setzero_ps();
  for (i64 k = k0; k < k1; ++k) {
    const __m256 b0 = _mm256_load_ps(b + k * kNR), b1 = _mm256_load_ps(b + k * kNR + 8);
#pragma GCC unroll 6
    for (int r = 0; r < kMR; ++r) {
      const __m256 ak = _mm256_broadcast_ss(a + k * kMR + r);
      p[2 * r] = _mm256_fmadd_ps(ak, b0, p[2 * r]);
      p[2 * r + 1] = _mm256_fmadd_ps(ak, b1, p[2 * r + 1]);
    }
  }
}

// One 6x16 tile of the plan into out (kMR, kNR), leading dimension ld. The slice being
// computed stays in registers; the combine's running sums (arrival) or stack of subtree
// sums (tree) live in small L1 tiles, touched once per slice.
void plan_tile(const EmulatedGemmPlan& p, const float* a, const float* b, float* out, i64 ld) {
  constexpr int kT = kMR * kNR;
  const i64 S = p.slices();
  __m256 part[2 * kMR];
  alignas(32) float stack[16][kT];  // S <= kShortK slices: tree depth <= 10
  int height[16];
  int depth = 0;
  if (p.combine == SplitCombine::arrival) {
    // C = +0.0f; C = C + P for each slice as it lands (S >= 2 here).
    const __m256 zero = _mm256_setzero_ps();
    float* acc = stack[0];
    chain_6x16(a, b, p.cuts[p.order[0]], p.cuts[p.order[0] + 1], part);
#pragma GCC unroll 12
    for (int r = 0; r < 2 * kMR; ++r) _mm256_store_ps(acc + r * 8, _mm256_add_ps(zero, part[r]));
    for (i64 i = 1; i < S; ++i) {
      const i64 j = p.order[i];
      chain_6x16(a, b, p.cuts[j], p.cuts[j + 1], part);
#pragma GCC unroll 12
      for (int r = 0; r < 2 * kMR; ++r)
        _mm256_store_ps(acc + r * 8, _mm256_add_ps(_mm256_load_ps(acc + r * 8), part[r]));
    }
    depth = 1;
  } else {  // binary-counter stack, as plan_block's tree
    for (i64 j = 0; j < S; ++j) {
      chain_6x16(a, b, p.cuts[j], p.cuts[j + 1], part);
      int h = 0;
      while (depth > 0 && height[depth - 1] == h) {
        float* left = stack[depth - 1];
#pragma GCC unroll 12
        for (int r = 0; r < 2 * kMR; ++r)
          part[r] = _mm256_add_ps(_mm256_load_ps(left + r * 8), part[r]);
        --depth;
        ++h;
      }
#pragma GCC unroll 12
      for (int r = 0; r < 2 * kMR; ++r) _mm256_store_ps(stack[depth] + r * 8, part[r]);
      height[depth++] = h;
    }
  }
  // Fold the stack right to left (arrival: its one entry) straight into out.
  const int top = std::max(depth, 1) - 1;
  for (int r = 0; r < kMR; ++r)
    for (int h = 0; h < 2; ++h) {
      __m256 v = _mm256_load_ps(stack[top] + r * kNR + h * 8);
      for (int d = top - 1; d >= 0; --d)
        v = _mm256_add_ps(_mm256_load_ps(stack[d] + r * kNR + h * 8), v);
      _mm256_storeu_ps(out + r * ld + h * 8, v);
    }
}

void plan_block_short(const EmulatedGemmPlan& p, Operand a, Operand b, i64 m0, i64 m1, i64 n0,
                      i64 n1, float* c, i64 ldc) {
  thread_local AlignedBuffer a_buf, b_buf;
  const i64 K = p.cuts.back(), rows = m1 - m0, cols = n1 - n0;
  const i64 rows_p = (rows + kMR - 1) / kMR * kMR, cols_p = (cols + kNR - 1) / kNR * kNR;
  float* ap = a_buf.get(static_cast<std::size_t>(rows_p * K + 8));  // +8: pack_a's overhang
  float* bp = b_buf.get(static_cast<std::size_t>(cols_p * K));
  pack_a(a, m0, rows, 0, K, ap);
  pack_b(b, 0, K, n0, cols, bp);
  alignas(32) float tile[kMR * kNR];
  for (i64 jr = 0; jr < cols; jr += kNR)
    for (i64 ir = 0; ir < rows; ir += kMR) {
      const i64 mr = std::min<i64>(kMR, rows - ir), nr = std::min<i64>(kNR, cols - jr);
      float* dst = c + ir * ldc + jr;
      if (mr == kMR && nr == kNR) {  // a whole tile: straight into C
        plan_tile(p, ap + ir * K, bp + jr * K, dst, ldc);
        continue;
      }
      plan_tile(p, ap + ir * K, bp + jr * K, tile, kNR);  // edge: only the valid lanes
      for (i64 r = 0; r < mr; ++r)
        for (i64 j = 0; j < nr; ++j) dst[r * ldc + j] = tile[r * kNR + j];
    }
}

}  // namespace

void emulated_sgemm(const EmulatedGemmPlan& plan, bool trans_a, bool trans_b, i64 M, i64 N, i64 K,
                    const float* A, i64 lda, const float* B, i64 ldb, float* C, i64 ldc) {
  if (plan.cuts.size() < 2 || plan.cuts.front() != 0 || plan.cuts.back() != K)
    throw std::invalid_argument("emulated_sgemm: the plan's slices do not cover K = " +
                                std::to_string(K));
  if (M <= 0 || N <= 0) return;
  const Operand a{A, lda, trans_a}, b{B, ldb, trans_b};
  const bool short_slices = plan.slices() > 1 && K <= kShortK;
  for_blocks(M, N, [&](i64 m0, i64 m1, i64 n0, i64 n1) {
    if (short_slices)
      plan_block_short(plan, a, b, m0, m1, n0, n1, C + m0 * ldc + n0, ldc);
    else
      plan_block(plan, a, b, m0, m1, n0, n1, C + m0 * ldc + n0, ldc);
  });
}

void chain_sgemm(bool trans_a, bool trans_b, i64 M, i64 N, i64 K, const float* A, i64 lda,
                 const float* B, i64 ldb, bool accumulate, float* C, i64 ldc) {
  if (M <= 0 || N <= 0) return;
  const Operand a{A, lda, trans_a}, b{B, ldb, trans_b};
  for_blocks(M, N, [&](i64 m0, i64 m1, i64 n0, i64 n1) {
    gemm_chain(a, b, m0, m1, n0, n1, 0, K, accumulate, C + m0 * ldc + n0, ldc);
  });
}

void combine_partials(SplitCombine combine, const std::int32_t* order, i64 count,
                      float* const* parts, i64 n, float* out) {
  if (count <= 0) {
    std::fill(out, out + n, 0.0f);
    return;
  }
  parallel_ranges(n, [&](i64 b, i64 e, int) {
    if (combine == SplitCombine::arrival) {
      for (i64 i = b; i < e; ++i) out[i] = 0.0f + parts[order[0]][i];
      for (i64 j = 1; j < count; ++j) {
        const float* p = parts[order[j]];
        for (i64 i = b; i < e; ++i) out[i] = out[i] + p[i];
      }
      return;
    }
    // Level by level: pairs (0,1), (2,3), ..., an odd last node moving up; the sum of a
    // pair goes into the left one's storage.
    std::vector<float*> level(parts, parts + count);
    while (level.size() > 1) {
      std::vector<float*> next;
      for (std::size_t j = 0; j + 1 < level.size(); j += 2) {
        float* l = level[j];
        const float* r = level[j + 1];
        for (i64 i = b; i < e; ++i) l[i] = l[i] + r[i];
        next.push_back(l);
      }
      if (level.size() % 2) next.push_back(level.back());
      level.swap(next);
    }
    if (level[0] != out) std::copy(level[0] + b, level[0] + e, out + b);
  });
}

}  // namespace detdl::cpu
