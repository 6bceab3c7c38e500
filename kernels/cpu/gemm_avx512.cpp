// The AVX-512F micro-kernel of gemm_chain (gemm_block.cpp): a 12 x 16 tile of C, two packed
// (or in-place) 6-row A panels against one 16-column B panel, one __m512 per row, so that
// twelve independent chains hide the fma latency. Each lane does exactly what micro_6x16's
// lanes do, p = fmaf(a_k, b_k, p) for k in order, so the bits are the same.
//
// This file alone is compiled with -mavx512f (CMakeLists.txt) and holds only this function
// (no inline or template code that the linker could share with the rest of the library);
// gemm_chain calls it only where the CPU has AVX-512F.
#include <immintrin.h>

#include "kernels/cpu/gemm_block.h"

namespace detdl::cpu::gemm_detail {

void micro_12x16_avx512(std::int64_t kc, const float* a0, const float* a1, std::int64_t rs,
                        std::int64_t ks, const float* b, float* c, std::int64_t ldc, bool load) {
  __m512 c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11;
  if (load) {
    c0 = _mm512_loadu_ps(c + 0 * ldc), c1 = _mm512_loadu_ps(c + 1 * ldc);
    c2 = _mm512_loadu_ps(c + 2 * ldc), c3 = _mm512_loadu_ps(c + 3 * ldc);
    c4 = _mm512_loadu_ps(c + 4 * ldc), c5 = _mm512_loadu_ps(c + 5 * ldc);
    c6 = _mm512_loadu_ps(c + 6 * ldc), c7 = _mm512_loadu_ps(c + 7 * ldc);
    c8 = _mm512_loadu_ps(c + 8 * ldc), c9 = _mm512_loadu_ps(c + 9 * ldc);
    c10 = _mm512_loadu_ps(c + 10 * ldc), c11 = _mm512_loadu_ps(c + 11 * ldc);
  } else {
    c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = c8 = c9 = c10 = c11 = _mm512_setzero_ps();
  }
  for (std::int64_t k = 0; k < kc; ++k) {
    const __m512 bk = _mm512_loadu_ps(b);
    c0 = _mm512_fmadd_ps(_mm512_set1_ps(a0[0 * rs]), bk, c0);
    c1 = _mm512_fmadd_ps(_mm512_set1_ps(a0[1 * rs]), bk, c1);
    c2 = _mm512_fmadd_ps(_mm512_set1_ps(a0[2 * rs]), bk, c2);
    c3 = _mm512_fmadd_ps(_mm512_set1_ps(a0[3 * rs]), bk, c3);
    c4 = _mm512_fmadd_ps(_mm512_set1_ps(a0[4 * rs]), bk, c4);
    c5 = _mm512_fmadd_ps(_mm512_set1_ps(a0[5 * rs]), bk, c5);
    c6 = _mm512_fmadd_ps(_mm512_set1_ps(a1[0 * rs]), bk, c6);
    c7 = _mm512_fmadd_ps(_mm512_set1_ps(a1[1 * rs]), bk, c7);
    c8 = _mm512_fmadd_ps(_mm512_set1_ps(a1[2 * rs]), bk, c8);
    c9 = _mm512_fmadd_ps(_mm512_set1_ps(a1[3 * rs]), bk, c9);
    c10 = _mm512_fmadd_ps(_mm512_set1_ps(a1[4 * rs]), bk, c10);
    c11 = _mm512_fmadd_ps(_mm512_set1_ps(a1[5 * rs]), bk, c11);
    a0 += ks;
    a1 += ks;
    b += kNR;
  }
  _mm512_storeu_ps(c + 0 * ldc, c0), _mm512_storeu_ps(c + 1 * ldc, c1);
  _mm512_storeu_ps(c + 2 * ldc, c2), _mm512_storeu_ps(c + 3 * ldc, c3);
  _mm512_storeu_ps(c + 4 * ldc, c4), _mm512_storeu_ps(c + 5 * ldc, c5);
  _mm512_storeu_ps(c + 6 * ldc, c6), _mm512_storeu_ps(c + 7 * ldc, c7);
  _mm512_storeu_ps(c + 8 * ldc, c8), _mm512_storeu_ps(c + 9 * ldc, c9);
  _mm512_storeu_ps(c + 10 * ldc, c10), _mm512_storeu_ps(c + 11 * ldc, c11);
}

}  // namespace detdl::cpu::gemm_detail
