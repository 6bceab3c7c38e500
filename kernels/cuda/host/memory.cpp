// Host mode's runtime API (kernels/cuda/host/runtime.h): one emulated device, device
// memory from the C++ heap (256-byte aligned, as cudaMalloc), and copies and memsets that
// check their device side against the live allocations, so that a copy past the end of a
// buffer is an error (cudaErrorInvalidValue) as it is on a device, not a silent overwrite.
// Every call completes before it returns; streams only need to exist.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>

#include "kernels/cuda/host/runtime.h"

namespace detdl::cuda::host {
namespace {

thread_local cudaError_t t_last_error = cudaSuccess;

struct Allocations {
  std::mutex mutex;
  std::map<std::uintptr_t, std::size_t> live;  // start -> bytes
};

Allocations& allocations() {
  static Allocations* const a = new Allocations();  // never destroyed, as the driver's
  return *a;
}

cudaError_t fail(cudaError_t e) {
  t_last_error = e;
  return e;
}

// [p, p + bytes) lies inside one live allocation.
bool inside_allocation(const void* p, std::size_t bytes) {
  Allocations& a = allocations();
  std::lock_guard<std::mutex> lock(a.mutex);
  const auto u = reinterpret_cast<std::uintptr_t>(p);
  auto it = a.live.upper_bound(u);
  if (it == a.live.begin()) return false;
  --it;
  return u >= it->first && u - it->first <= it->second && bytes <= it->second - (u - it->first);
}

bool device_side_ok(cudaMemcpyKind kind, void* dst, const void* src, std::size_t bytes) {
  switch (kind) {
    case cudaMemcpyHostToHost: return true;
    case cudaMemcpyHostToDevice: return inside_allocation(dst, bytes);
    case cudaMemcpyDeviceToHost: return inside_allocation(src, bytes);
    case cudaMemcpyDeviceToDevice:
      return inside_allocation(dst, bytes) && inside_allocation(src, bytes);
    case cudaMemcpyDefault: return true;  // unified addressing: either side may be host
  }
  return false;
}

struct StreamToken {};  // what a cudaStream_t points to in host mode

}  // namespace

void set_last_error(cudaError_t e) { t_last_error = e; }

}  // namespace detdl::cuda::host

using namespace detdl::cuda::host;  // NOLINT: the runtime API is global, as CUDA's

cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return fail(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return fail(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice);
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (value == nullptr || device != 0) return fail(cudaErrorInvalidValue);
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; return cudaSuccess;
    case cudaDevAttrWarpSize: *value = 32; return cudaSuccess;
    // An H100 / H200's count, so that size-dependent choices (the GEMM's split of K into
    // chunk groups) take the same paths as there.
    case cudaDevAttrMultiProcessorCount: *value = 132; return cudaSuccess;
  }
  return fail(cudaErrorInvalidValue);
}

cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

cudaError_t cudaMalloc(void** ptr, std::size_t bytes) {
  if (ptr == nullptr) return fail(cudaErrorInvalidValue);
  const std::size_t rounded = (std::max<std::size_t>(bytes, 1) + 255) / 256 * 256;
  void* p = std::aligned_alloc(256, rounded);
  if (p == nullptr) return fail(cudaErrorMemoryAllocation);
  Allocations& a = allocations();
  std::lock_guard<std::mutex> lock(a.mutex);
  a.live[reinterpret_cast<std::uintptr_t>(p)] = bytes;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  Allocations& a = allocations();
  {
    std::lock_guard<std::mutex> lock(a.mutex);
    auto it = a.live.find(reinterpret_cast<std::uintptr_t>(ptr));
    if (it == a.live.end()) return fail(cudaErrorInvalidDevicePointer);
    a.live.erase(it);
  }
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
  return cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t) {
  if (bytes == 0) return cudaSuccess;
  if (dst == nullptr || src == nullptr) return fail(cudaErrorInvalidValue);
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
    return fail(cudaErrorInvalidMemcpyDirection);
  if (!device_side_ok(kind, dst, const_cast<void*>(src), bytes)) return fail(cudaErrorInvalidValue);
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpy2DAsync(void* dst, std::size_t dpitch, const void* src, std::size_t spitch,
                              std::size_t width, std::size_t height, cudaMemcpyKind kind,
                              cudaStream_t) {
  if (width == 0 || height == 0) return cudaSuccess;
  if (width > dpitch || width > spitch) return fail(cudaErrorInvalidValue);
  const std::size_t dst_span = dpitch * (height - 1) + width,
                    src_span = spitch * (height - 1) + width;
  const bool dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if ((dst_device && !inside_allocation(dst, dst_span)) ||
      (src_device && !inside_allocation(src, src_span)))
    return fail(cudaErrorInvalidValue);
  for (std::size_t r = 0; r < height; ++r)
    std::memmove(static_cast<char*>(dst) + r * dpitch, static_cast<const char*>(src) + r * spitch,
                 width);
  return cudaSuccess;
}

cudaError_t cudaMemset(void* ptr, int value, std::size_t bytes) {
  return cudaMemsetAsync(ptr, value, bytes, nullptr);
}

cudaError_t cudaMemsetAsync(void* ptr, int value, std::size_t bytes, cudaStream_t) {
  if (bytes == 0) return cudaSuccess;
  if (!inside_allocation(ptr, bytes)) return fail(cudaErrorInvalidValue);
  std::memset(ptr, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemset2DAsync(void* ptr, std::size_t pitch, int value, std::size_t width,
                              std::size_t height, cudaStream_t) {
  if (width == 0 || height == 0) return cudaSuccess;
  if (width > pitch || !inside_allocation(ptr, pitch * (height - 1) + width))
    return fail(cudaErrorInvalidValue);
  for (std::size_t r = 0; r < height; ++r)
    std::memset(static_cast<char*>(ptr) + r * pitch, value, width);
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  if (stream == nullptr) return fail(cudaErrorInvalidValue);
  *stream = reinterpret_cast<cudaStream_t>(new StreamToken());
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  delete reinterpret_cast<StreamToken*>(stream);
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }

cudaError_t cudaGetLastError() {
  const cudaError_t e = t_last_error;
  t_last_error = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() { return t_last_error; }

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unknown error";
}
