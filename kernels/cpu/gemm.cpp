// Placeholder scalar GEMM in canonical order; to be replaced by the AVX2 kernel.
#include "kernels/cpu/gemm.h"

#include "kernels/common/reduction.h"
#include "kernels/cpu/parallel.h"

namespace detdl::cpu {

void sgemm(Level level, bool trans_a, bool trans_b, std::int64_t M, std::int64_t N,
           std::int64_t K, const float* A, std::int64_t lda, const float* B, std::int64_t ldb,
           float* C, std::int64_t ldc) {
  parallel_for(M, [&](std::int64_t m) {
    for (std::int64_t n = 0; n < N; ++n) {
      const float* a = trans_a ? A + m : A + m * lda;
      const std::int64_t sa = trans_a ? lda : 1;
      const float* b = trans_b ? B + n * ldb : B + n;
      const std::int64_t sb = trans_b ? 1 : ldb;
      C[m * ldc + n] = canonical_dot(a, sa, b, sb, K);
    }
  });
}

}  // namespace detdl::cpu
