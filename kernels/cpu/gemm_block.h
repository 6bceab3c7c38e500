// The blocked AVX2 engine under sgemm (gemm.cpp): one fmaf chain per C element over a
// range of k, computed with packed panels and a 6x16 register-blocked micro-kernel.
//
// Why this gives the canonical chunk partial bit for bit: every lane of every __m256
// accumulator is one C element, and the micro-kernel does exactly p = fmaf(a_k, b_k, p)
// for k in increasing order (_mm256_fmadd_ps is fmaf per lane). Cache blocking only cuts
// the chain into KC-long pieces; between pieces the partial is stored to C and loaded
// back, which is exact. Edge tiles are zero-padded in the packed panels and computed in a
// scratch tile whose padded lanes are thrown away, so their lanes do the same chain too.
#pragma once
#include <cstdint>

namespace detdl::cpu::gemm_detail {

inline constexpr int kMR = 6;     // micro-tile rows (6 x 2 __m256 accumulators = 12 of 16 ymm)
inline constexpr int kNR = 16;    // micro-tile columns (two __m256)
inline constexpr int kKC = 256;   // k per packed block; divides kChunkProducts (4096)
inline constexpr int kMC = 120;   // rows of A per packed block (a multiple of kMR): ~120 KiB in L2
inline constexpr int kNC = 2048;  // columns of B per packed block (a multiple of kNR): in L3

// A read-only operand: op(X)[r][k] = trans ? X[k * ld + r] : X[r * ld + k] for A,
// and op(X)[k][c] = trans ? X[c * ld + k] : X[k * ld + c] for B.
struct Operand {
  const float* data;
  std::int64_t ld;
  bool trans;
};

// For m in [m0, m1), n in [n0, n1) (absolute indices of op(A) rows and op(B) columns):
//   p = accumulate ? C[m][n] : +0.0f;  for k in [k0, k1): p = fmaf(opA[m][k], opB[k][n], p);
//   C[m][n] = p.
// C points at element (m0, n0) with leading dimension ldc. Uses thread-local scratch.
void gemm_chain(Operand a, Operand b, std::int64_t m0, std::int64_t m1, std::int64_t n0,
                std::int64_t n1, std::int64_t k0, std::int64_t k1, bool accumulate, float* C,
                std::int64_t ldc);

// gemm_chain's packing, also used by emulated_gemm.cpp's split-K tiles. Both write panels
// zero-padded to whole micro-tiles; dst must be 32-byte aligned.
// pack_a: op(A)[m0, m0+mc) x [k0, k0+kc) as panels of kMR rows, panel p at dst + p*kMR*kc,
// holding for each k the kMR values of its rows; needs ceil(mc/kMR)*kMR*kc + 8 floats.
void pack_a(Operand a, std::int64_t m0, std::int64_t mc, std::int64_t k0, std::int64_t kc,
            float* dst);
// pack_b: op(B)[k0, k0+kc) x [n0, n0+nc) as panels of kNR columns, panel p at dst + p*kNR*kc,
// holding for each k the kNR values of its columns; needs ceil(nc/kNR)*kNR*kc floats.
void pack_b(Operand b, std::int64_t k0, std::int64_t kc, std::int64_t n0, std::int64_t nc,
            float* dst);

// The AVX-512F tile (gemm_avx512.cpp): C rows [0, 6) from A panel a0, rows [6, 12) from a1
// (each read at a[r * rs + k * ks], as micro_6x16), one packed 16-column B panel, C (12, 16)
// at c. Call only where the CPU has AVX-512F.
void micro_12x16_avx512(std::int64_t kc, const float* a0, const float* a1, std::int64_t rs,
                        std::int64_t ks, const float* b, float* c, std::int64_t ldc, bool load);

// Test hook: false keeps gemm_chain on the AVX2 tiles on a CPU with AVX-512F (the tiles
// give the same bits). Default true.
void set_avx512_allowed(bool on);
bool avx512_in_use();  // the CPU has AVX-512F and it is allowed

}  // namespace detdl::cpu::gemm_detail
