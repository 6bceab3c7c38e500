// Host mode's kernels/cuda/vendor.h: cuBLAS exists only on a device, so host mode builds
// this file in place of vendor.cu, and the vendor GEMM says why it cannot run.
#include <stdexcept>

#include "kernels/cuda/vendor.h"

namespace detdl::cuda {

void cublas_sgemm(bool, bool, bool, std::int64_t, std::int64_t, std::int64_t, const float*,
                  std::int64_t, const float*, std::int64_t, float*, std::int64_t, cudaStream_t) {
  throw std::runtime_error(
      "cublas_sgemm: cuBLAS is not available in host mode (a -DDETDL_CUDA_HOST=ON build runs "
      "detdl's own CUDA kernels on the CPU; docs/gpu.md)");
}

}  // namespace detdl::cuda
