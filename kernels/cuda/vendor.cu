#include "kernels/cuda/vendor.h"

#include <cublas_v2.h>

#include <climits>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

#include "kernels/cuda/check.h"

namespace detdl::cuda {
namespace {

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cublas_sgemm: ") + what +
                             " failed: " + cublasGetStatusString(status));
}

int narrow(std::int64_t v, const char* name) {
  if (v < 0 || v > INT_MAX)
    throw std::invalid_argument(std::string("cublas_sgemm: ") + name +
                                " out of int range: " + std::to_string(v));
  return static_cast<int>(v);
}

}  // namespace

void cublas_sgemm(bool tf32, bool trans_a, bool trans_b, std::int64_t M, std::int64_t N,
                  std::int64_t K, const float* A, std::int64_t lda, const float* B,
                  std::int64_t ldb, float* C, std::int64_t ldc, cudaStream_t stream) {
  const int m = narrow(M, "M"), n = narrow(N, "N"), k = narrow(K, "K");
  if (m == 0 || n == 0) return;
  int device = 0;
  DETDL_CUDA_CHECK(cudaGetDevice(&device));
  static std::mutex mutex;
  static std::map<int, cublasHandle_t> handles;  // never destroyed: see device_allocator()
  std::lock_guard<std::mutex> lock(mutex);
  cublasHandle_t& h = handles[device];
  if (!h) check_cublas(cublasCreate(&h), "cublasCreate");
  check_cublas(cublasSetStream(h, stream), "cublasSetStream");
  check_cublas(cublasSetMathMode(h, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH),
               "cublasSetMathMode");
  // Row-major C = opA * opB is column-major C^T = opB^T * opA^T: the column-major view of a
  // row-major buffer is its transpose, so B goes first with its own flag, then A.
  const float one = 1.0f, zero = 0.0f;
  check_cublas(cublasSgemm(h, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                           trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &one, B,
                           narrow(ldb, "ldb"), A, narrow(lda, "lda"), &zero, C, narrow(ldc, "ldc")),
               "cublasSgemm");
}

}  // namespace detdl::cuda
