// Packing, the 6x16 AVX2 micro-kernel and the cache-blocked loops (BLIS order:
// columns of B by kNC, k by kKC, rows of A by kMC, then micro-tiles). See gemm_block.h for
// why each C element is exactly one fmaf chain in k order.
#include "kernels/cpu/gemm_block.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "kernels/cpu/avx2.h"

namespace detdl::cpu::gemm_detail {
namespace {

using i64 = std::int64_t;

// Grow-only 64-byte aligned scratch, one per thread (packed panels are re-used per call).
struct AlignedBuffer {
  std::unique_ptr<float, decltype(&std::free)> p{nullptr, &std::free};
  std::size_t size = 0;
  float* get(std::size_t n) {
    if (n > size) {
      const std::size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
      p.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
      size = n;
    }
    return p.get();
  }
};

}  // namespace

// Packs op(A)[m0 .. m0+mc) x [k0 .. k0+kc) into micro-panels of kMR rows: panel p holds,
// for each k, the kMR values of rows m0 + p*kMR + r (zero past mc).
void pack_a(Operand a, i64 m0, i64 mc, i64 k0, i64 kc, float* dst) {
  for (i64 ir = 0; ir < mc; ir += kMR, dst += kMR * kc) {
    const i64 mr = std::min<i64>(kMR, mc - ir);
    if (a.trans) {  // A (K, M): the kMR values at one k are contiguous
      const float* src = a.data + k0 * a.ld + m0 + ir;
      if (mr == kMR) {
        for (i64 k = 0; k < kc; ++k, src += a.ld)
          for (i64 r = 0; r < kMR; ++r) dst[k * kMR + r] = src[r];
      } else {
        for (i64 k = 0; k < kc; ++k, src += a.ld)
          for (i64 r = 0; r < kMR; ++r) dst[k * kMR + r] = r < mr ? src[r] : 0.0f;
      }
    } else {  // A (M, K): kMR rows, each contiguous in k
      const float* rows[kMR];
      for (i64 r = 0; r < kMR; ++r) rows[r] = a.data + (m0 + ir + std::min(r, mr - 1)) * a.ld + k0;
      if (mr == kMR) {
        i64 k = 0;
        for (; k + 8 <= kc; k += 8) {  // 8 k at a time: 6 rows (+2 zero rows) transposed
          __m256 r[8];
          for (int i = 0; i < kMR; ++i) r[i] = _mm256_loadu_ps(rows[i] + k);
          r[6] = r[7] = _mm256_setzero_ps();
          avx2::transpose8(r);
          // Each store writes 8 floats where 6 belong; the 2 extra are overwritten by the
          // next store (the last one's land in the next k block, the next panel, or the
          // buffer's slack), so stores must stay in this order.
          for (int j = 0; j < 8; ++j) _mm256_storeu_ps(dst + (k + j) * kMR, r[j]);
        }
        for (; k < kc; ++k)
          for (i64 r = 0; r < kMR; ++r) dst[k * kMR + r] = rows[r][k];
      } else {
        for (i64 k = 0; k < kc; ++k)
          for (i64 r = 0; r < kMR; ++r) dst[k * kMR + r] = r < mr ? rows[r][k] : 0.0f;
      }
    }
  }
}

// Packs op(B)[k0 .. k0+kc) x [n0 .. n0+nc) into micro-panels of kNR columns: panel p holds,
// for each k, the kNR values of columns n0 + p*kNR + c (zero past nc).
void pack_b(Operand b, i64 k0, i64 kc, i64 n0, i64 nc, float* dst) {
  for (i64 jr = 0; jr < nc; jr += kNR, dst += kNR * kc) {
    const i64 nr = std::min<i64>(kNR, nc - jr);
    if (!b.trans) {  // B (K, N): the kNR values at one k are contiguous
      const float* src = b.data + k0 * b.ld + n0 + jr;
      if (nr == kNR) {
        for (i64 k = 0; k < kc; ++k, src += b.ld) {
          _mm256_store_ps(dst + k * kNR, _mm256_loadu_ps(src));
          _mm256_store_ps(dst + k * kNR + 8, _mm256_loadu_ps(src + 8));
        }
      } else {
        for (i64 k = 0; k < kc; ++k, src += b.ld)
          for (i64 c = 0; c < kNR; ++c) dst[k * kNR + c] = c < nr ? src[c] : 0.0f;
      }
    } else {  // B (N, K): kNR columns, each contiguous in k; 8x8 transposes
      const float* cols = b.data + (n0 + jr) * b.ld + k0;
      i64 k = 0;
      if (nr == kNR) {
        for (; k + 8 <= kc; k += 8)
          for (int half = 0; half < 2; ++half) {
            __m256 r[8];
            for (int c = 0; c < 8; ++c) r[c] = _mm256_loadu_ps(cols + (half * 8 + c) * b.ld + k);
            avx2::transpose8(r);
            for (int j = 0; j < 8; ++j) _mm256_store_ps(dst + (k + j) * kNR + half * 8, r[j]);
          }
      }
      for (; k < kc; ++k)
        for (i64 c = 0; c < kNR; ++c) dst[k * kNR + c] = c < nr ? cols[c * b.ld + k] : 0.0f;
    }
  }
}

namespace {

// The micro-kernel: a 6x16 tile of C, each lane p = fmaf(a_k, b_k, p) for k = 0..kc-1,
// starting from C (load) or +0.0f. a: packed (kc, 6), b: packed (kc, 16).
// A is read at a[r * rs + k * ks]: packed panels (rs = 1, ks = kMR) or op(A) in place
// (the caller's strides; see gemm_chain's direct path).
void micro_6x16(i64 kc, const float* __restrict a, const float* __restrict b, float* c, i64 ldc,
                bool load, i64 rs = 1, i64 ks = kMR) {
  __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
  if (load) {
    c00 = _mm256_loadu_ps(c + 0 * ldc), c01 = _mm256_loadu_ps(c + 0 * ldc + 8);
    c10 = _mm256_loadu_ps(c + 1 * ldc), c11 = _mm256_loadu_ps(c + 1 * ldc + 8);
    c20 = _mm256_loadu_ps(c + 2 * ldc), c21 = _mm256_loadu_ps(c + 2 * ldc + 8);
    c30 = _mm256_loadu_ps(c + 3 * ldc), c31 = _mm256_loadu_ps(c + 3 * ldc + 8);
    c40 = _mm256_loadu_ps(c + 4 * ldc), c41 = _mm256_loadu_ps(c + 4 * ldc + 8);
    c50 = _mm256_loadu_ps(c + 5 * ldc), c51 = _mm256_loadu_ps(c + 5 * ldc + 8);
  } else {
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_ps();
  }
#pragma GCC unroll 4
  for (i64 k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    __m256 ak = _mm256_broadcast_ss(a + 0 * rs);
    c00 = _mm256_fmadd_ps(ak, b0, c00), c01 = _mm256_fmadd_ps(ak, b1, c01);
    ak = _mm256_broadcast_ss(a + 1 * rs);
    c10 = _mm256_fmadd_ps(ak, b0, c10), c11 = _mm256_fmadd_ps(ak, b1, c11);
    ak = _mm256_broadcast_ss(a + 2 * rs);
    c20 = _mm256_fmadd_ps(ak, b0, c20), c21 = _mm256_fmadd_ps(ak, b1, c21);
    ak = _mm256_broadcast_ss(a + 3 * rs);
    c30 = _mm256_fmadd_ps(ak, b0, c30), c31 = _mm256_fmadd_ps(ak, b1, c31);
    ak = _mm256_broadcast_ss(a + 4 * rs);
    c40 = _mm256_fmadd_ps(ak, b0, c40), c41 = _mm256_fmadd_ps(ak, b1, c41);
    ak = _mm256_broadcast_ss(a + 5 * rs);
    c50 = _mm256_fmadd_ps(ak, b0, c50), c51 = _mm256_fmadd_ps(ak, b1, c51);
    a += ks;
    b += kNR;
  }
  _mm256_storeu_ps(c + 0 * ldc, c00), _mm256_storeu_ps(c + 0 * ldc + 8, c01);
  _mm256_storeu_ps(c + 1 * ldc, c10), _mm256_storeu_ps(c + 1 * ldc + 8, c11);
  _mm256_storeu_ps(c + 2 * ldc, c20), _mm256_storeu_ps(c + 2 * ldc + 8, c21);
  _mm256_storeu_ps(c + 3 * ldc, c30), _mm256_storeu_ps(c + 3 * ldc + 8, c31);
  _mm256_storeu_ps(c + 4 * ldc, c40), _mm256_storeu_ps(c + 4 * ldc + 8, c41);
  _mm256_storeu_ps(c + 5 * ldc, c50), _mm256_storeu_ps(c + 5 * ldc + 8, c51);
}

// A 6-row tile whose columns end inside it (nr < 16): the same chains, with the columns
// past nr masked off C's loads and stores (their lanes compute on B's zero padding and are
// never written). Eight-column tiles (nr <= 8) keep one accumulator per row.
template <bool kTwo>
void micro_6xn(i64 kc, const float* __restrict a, const float* __restrict b, float* c, i64 ldc,
               bool load, i64 nr, i64 rs, i64 ks) {
  // The mask of the last vector: its first (nr - 8 or nr) lanes.
  const i64 last = kTwo ? nr - 8 : nr;
  const __m256i mask = avx2::first_lanes(last);
  __m256 c0[kMR], c1[kMR];
  for (int r = 0; r < kMR; ++r) {
    if (kTwo) {
      c0[r] = load ? _mm256_loadu_ps(c + r * ldc) : _mm256_setzero_ps();
      c1[r] = load ? _mm256_maskload_ps(c + r * ldc + 8, mask) : _mm256_setzero_ps();
    } else {
      c0[r] = load ? _mm256_maskload_ps(c + r * ldc, mask) : _mm256_setzero_ps();
      c1[r] = _mm256_setzero_ps();
    }
  }
  for (i64 k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = kTwo ? _mm256_load_ps(b + 8) : b0;
    for (int r = 0; r < kMR; ++r) {
      const __m256 ak = _mm256_broadcast_ss(a + r * rs);
      c0[r] = _mm256_fmadd_ps(ak, b0, c0[r]);
      if (kTwo) c1[r] = _mm256_fmadd_ps(ak, b1, c1[r]);
    }
    a += ks;
    b += kNR;
  }
  for (int r = 0; r < kMR; ++r) {
    if (kTwo) {
      _mm256_storeu_ps(c + r * ldc, c0[r]);
      avx2::store_first(c + r * ldc + 8, c1[r], last);
    } else {
      avx2::store_first(c + r * ldc, c0[r], last);
    }
  }
}

// An edge tile (mr < 6 or nr < 16): the same kernel on a scratch tile; only the valid
// mr x nr lanes are read from and written back to C.
void micro_edge(i64 kc, const float* a, const float* b, float* c, i64 ldc, bool load, i64 mr,
                i64 nr) {
  alignas(32) float tile[kMR * kNR] = {};
  if (load)
    for (i64 r = 0; r < mr; ++r) std::memcpy(tile + r * kNR, c + r * ldc, nr * sizeof(float));
  micro_6x16(kc, a, b, tile, kNR, load);
  for (i64 r = 0; r < mr; ++r) std::memcpy(c + r * ldc, tile + r * kNR, nr * sizeof(float));
}

}  // namespace

namespace {
std::atomic<bool> g_avx512_allowed{true};
}  // namespace
void set_avx512_allowed(bool on) { g_avx512_allowed.store(on); }
bool avx512_in_use() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has && g_avx512_allowed.load();
}

void gemm_chain(Operand a, Operand b, i64 m0, i64 m1, i64 n0, i64 n1, i64 k0, i64 k1,
                bool accumulate, float* C, i64 ldc) {
  thread_local AlignedBuffer a_buf, b_buf;
  const i64 M = m1 - m0, N = n1 - n0;
  if (M <= 0 || N <= 0) return;
  if (k1 <= k0) {  // an empty chain leaves its start value: C, or +0.0f
    if (!accumulate)
      for (i64 m = 0; m < M; ++m) std::fill(C + m * ldc, C + m * ldc + N, 0.0f);
    return;
  }
  const bool direct = N <= 4 * kNR;  // at most 4 column panels reuse a packed A panel
  const bool wide = avx512_in_use();
  const i64 nc_max = std::min<i64>(kNC, (N + kNR - 1) / kNR * kNR);
  const i64 mc_max = std::min<i64>(kMC, (M + kMR - 1) / kMR * kMR);
  float* bp = b_buf.get(static_cast<std::size_t>(nc_max * kKC));
  float* ap = a_buf.get(static_cast<std::size_t>(mc_max * kKC + 8));  // +8: pack_a's overhang
  for (i64 jc = 0; jc < N; jc += kNC) {
    const i64 nc = std::min<i64>(kNC, N - jc);
    for (i64 pc = k0; pc < k1; pc += kKC) {
      const i64 kc = std::min<i64>(kKC, k1 - pc);
      const bool load = accumulate || pc > k0;  // continue the chain from the stored partial
      pack_b(b, pc, kc, n0 + jc, nc, bp);
      for (i64 ic = 0; ic < M; ic += kMC) {
        const i64 mc = std::min<i64>(kMC, M - ic);
        // Direct: full 6-row panels read op(A) in place (only a partial last panel is
        // packed), where A's panels would be reused for few column panels and packing
        // costs about what it saves. The values and their order are the same either way.
        const i64 full = direct ? mc / kMR * kMR : 0;
        if (!direct)
          pack_a(a, m0 + ic, mc, pc, kc, ap);
        else if (full < mc)
          pack_a(a, m0 + ic + full, mc - full, pc, kc, ap);
        for (i64 jr = 0; jr < nc; jr += kNR) {
          const i64 nr = std::min<i64>(kNR, nc - jr);
          const float* bpanel = bp + jr * kc;
          // The A panel of rows ir.. (packed, or op(A) in place) and its strides.
          auto panel = [&](i64 ir, i64& rs, i64& ks) -> const float* {
            rs = 1, ks = kMR;
            if (ir >= full) return ap + (ir - full) * kc;
            const i64 m = m0 + ic + ir;  // op(A)[m][k] in place
            rs = a.trans ? 1 : a.ld;
            ks = a.trans ? a.ld : 1;
            return a.trans ? a.data + pc * a.ld + m : a.data + m * a.ld + pc;
          };
          for (i64 ir = 0; ir < mc; ir += kMR) {
            const i64 mr = std::min<i64>(kMR, mc - ir);
            float* c = C + (ic + ir) * ldc + jc + jr;
            i64 rs, ks;
            const float* apanel = panel(ir, rs, ks);
            if (wide && nr == kNR && ir + 2 * kMR <= mc && (ir >= full || ir + kMR < full)) {
              i64 rs1, ks1;  // two full panels of the same kind: one 12-row AVX-512 tile
              const float* apanel1 = panel(ir + kMR, rs1, ks1);
              micro_12x16_avx512(kc, apanel, apanel1, rs, ks, bpanel, c, ldc, load);
              ir += kMR;
              continue;
            }
            if (mr == kMR && nr == kNR)
              micro_6x16(kc, apanel, bpanel, c, ldc, load, rs, ks);
            else if (mr == kMR && nr > 8)
              micro_6xn<true>(kc, apanel, bpanel, c, ldc, load, nr, rs, ks);
            else if (mr == kMR)
              micro_6xn<false>(kc, apanel, bpanel, c, ldc, load, nr, rs, ks);
            else
              micro_edge(kc, apanel, bpanel, c, ldc, load, mr, nr);
          }
        }
      }
    }
  }
}

}  // namespace detdl::cpu::gemm_detail
