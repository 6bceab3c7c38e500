// Error checking for the CUDA backend: every runtime call and every kernel launch goes
// through DETDL_CUDA_CHECK, which throws std::runtime_error naming the file, the line, the
// call and cudaGetErrorString, so a failed launch is never silently a wrong answer.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace detdl::cuda {

inline void check_cuda(cudaError_t status, const char* what, const char* file, int line) {
  if (status == cudaSuccess) return;
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + what +
                           " failed: " + cudaGetErrorName(status) + " (" +
                           cudaGetErrorString(status) + ")");
}

}  // namespace detdl::cuda

// Wraps a cudaError_t-returning call: DETDL_CUDA_CHECK(cudaMemcpyAsync(...)).
#define DETDL_CUDA_CHECK(call) ::detdl::cuda::check_cuda((call), #call, __FILE__, __LINE__)
// After a <<<...>>> launch: catches bad configurations (grid too large, too much shared
// memory) at once; faults inside the kernel surface at the next synchronising call.
#define DETDL_CUDA_CHECK_LAUNCH(kernel_name) \
  ::detdl::cuda::check_cuda(cudaGetLastError(), "launch of " kernel_name, __FILE__, __LINE__)
