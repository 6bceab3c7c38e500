// engine/cuda_backend.h over kernels/cuda/: each entry of engine/cuda_door.def forwards to
// its kernel on the default stream (kStream). Built only with CUDA (CMakeLists.txt adds
// engine/cuda/ then).
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "engine/cuda_backend.h"
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/arith.h"
#include "kernels/cuda/batchnorm.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/conv.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/loss.h"
#include "kernels/cuda/optim.h"
#include "kernels/cuda/pool.h"
#include "kernels/cuda/reduce.h"
#include "kernels/cuda/vendor.h"
#include "kernels/cuda/vendor_cudnn.h"

namespace detdl::gpu {
namespace {

// The legacy default stream: it orders every kernel and copy of the process, so the
// engine needs no events and the caching allocator's per-stream reuse is always safe.
const cudaStream_t kStream = nullptr;

class CudaAllocator final : public Allocator {
 public:
  void* allocate(std::size_t bytes) override {
    return cuda::device_allocator().allocate(bytes, kStream);
  }
  void deallocate(void* p, std::size_t) override {
    if (p) cuda::device_allocator().release(p);
  }
  Device device() const override { return Device::cuda; }
};

// Empty when a device is usable, else why not (the driver's words).
const std::string& unavailable_reason() {
  static const std::string reason = [] {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
      cudaGetLastError();  // clear the error so that it does not surface at a later call
      return std::string("no usable CUDA device: ") + cudaGetErrorString(e);
    }
    if (count == 0) return std::string("no CUDA device found");
    return std::string();
  }();
  return reason;
}

}  // namespace

bool available() { return unavailable_reason().empty(); }

void require(const char* what) {
  if (!available()) throw std::runtime_error(std::string(what) + ": " + unavailable_reason());
}

Allocator& allocator() {
  require("a CUDA tensor");
  static CudaAllocator a;
  return a;
}

void copy_to_device(void* dst, const void* src, std::size_t bytes) {
  if (bytes) DETDL_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}
void copy_to_host(void* dst, const void* src, std::size_t bytes) {
  if (bytes) DETDL_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}
void copy_on_device(void* dst, const void* src, std::size_t bytes) {
  if (bytes) DETDL_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, kStream));
}

// Every kernel entry forwards to its kernels/cuda/ namesake, arguments as listed (kStream
// last where the kernel takes a stream). Vendor routing is not here: engine/ops/dispatch.h
// picks the own kernel or the vendor entry, so this file makes no choices.
#define DETDL_CUDA_DOOR(ret, name, params, args) \
  ret name params { return cuda::name args; }
#include "engine/cuda_door.def"
#undef DETDL_CUDA_DOOR

}  // namespace detdl::gpu
