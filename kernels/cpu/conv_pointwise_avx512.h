// The pointwise convolutions' register tiles for AVX-512F (conv_pointwise.h): 16-lane vectors,
// up to 8 rows x 3 vectors of flat positions (24 accumulators of 32 registers), where the
// AVX2 tiles run 6 x 2 of 8 lanes. The same chains in the same order, so the same bits. Compiled
// alone with -mavx512f (CMakeLists.txt); call only where the CPU has AVX-512F.
#pragma once
#include <cstdint>

namespace detdl::cpu::conv_pointwise {

inline constexpr int kRows512 = 8;  // rows per block of the AVX-512 tiles

// out[r * ldo + p] for r < mr (1..8), p < P: one fmaf chain from +0.0f over k < K of
// a[k * kRows512 + r] * b[k * ldb + p], then + bias[r] where bias is not null, else
// +0.0f + the chain when plus_zero (col2im's add into a zeroed dx), else the chain.
// Loads and stores past P are masked: nothing past b's and out's rows is touched.
void block_avx512(std::int64_t mr,
                  const float* a,  // (K, kRows512)
                  std::int64_t K,
                  const float* b,  // (K, ldb)
                  std::int64_t ldb, std::int64_t P,
                  const float* bias,  // (mr) or nullptr
                  bool plus_zero,
                  float* out,  // (mr, ldo)
                  std::int64_t ldo);

}  // namespace detdl::cpu::conv_pointwise
