// The lane kernels of lanes.h for AVX-512F (16 lanes: lanes_kernels.inc over __m512). This
// file alone is compiled with -mavx512f (CMakeLists.txt) and holds nothing else; it is
// reached only through kernels_avx512(), where the CPU has AVX-512F.
#include <immintrin.h>

#include <utility>

#include "kernels/common/reduction.h"
#include "kernels/cpu/lanes.h"

namespace detdl::cpu::lanes {

namespace {

struct V {
  using reg = __m512;
  static constexpr int lanes = 16;
  static constexpr int kIB = 4, kJB = 6;  // 24 accumulators + 4 + 1 of 32 registers
  static reg zero() { return _mm512_setzero_ps(); }
  static reg loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void storeu(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  // x > 0 ? x : +0.0f: activation.cpp's relu, the same bits (NaN: +0.0f).
  static reg relu(reg v) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero(), _CMP_GT_OQ), v);
  }
  // z > 0 ? g : +0.0f: activation.cpp's relu backward, the same bits (NaN z: +0.0f).
  static reg relu_grad(reg z, reg g) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(z, zero(), _CMP_GT_OQ), g);
  }
};

#include "kernels/cpu/lanes_kernels.inc"

}  // namespace

const Kernels& kernels_avx512() {
  static const Kernels k = make_kernels();
  return k;
}

}  // namespace detdl::cpu::lanes
