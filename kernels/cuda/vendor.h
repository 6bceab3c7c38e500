// cuBLAS SGEMM with the same row-major interface as cuda::sgemm (gemm.h), for comparison
// only: its reduction order is cuBLAS's own (undocumented, per GPU and version), so it is
// never `portable`. tf32 = false pins CUBLAS_PEDANTIC_MATH (plain FP32, no tensor-core
// down-conversion); tf32 = true allows CUBLAS_TF32_TENSOR_OP_MATH (inputs rounded to 10
// mantissa bits). On one GPU, stream and cuBLAS version cuBLAS GEMMs are documented as
// run-to-run deterministic, so the FP32 path is at best `repeatable`.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace detdl::cuda {

// C (M, N) = opA (M, K) * opB (K, N), row-major, as cuda::sgemm. Throws std::runtime_error
// on a cuBLAS or CUDA error. Uses one cuBLAS handle per device (created on first use,
// guarded by a mutex).
void cublas_sgemm(bool tf32, bool trans_a, bool trans_b, std::int64_t M, std::int64_t N,
                  std::int64_t K, const float* A,
                  std::int64_t lda,                  // (M, K) or (K, M) when trans_a
                  const float* B, std::int64_t ldb,  // (K, N) or (N, K) when trans_b
                  float* C, std::int64_t ldc,        // (M, N)
                  cudaStream_t stream);

}  // namespace detdl::cuda
