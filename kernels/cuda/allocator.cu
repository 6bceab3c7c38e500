#include "kernels/cuda/allocator.h"

#include <stdexcept>
#include <string>

#include "kernels/cuda/check.h"

namespace detdl::cuda {

std::size_t DeviceAllocator::size_class(std::size_t bytes) {
  constexpr std::size_t kSmallStep = 512, kLargeStep = std::size_t{2} << 20,
                        kLarge = std::size_t{1} << 20;
  if (bytes == 0) bytes = 1;
  const std::size_t step = bytes < kLarge ? kSmallStep : kLargeStep;
  return (bytes + step - 1) / step * step;
}

DeviceAllocator::~DeviceAllocator() {
  // No throwing from a destructor: at process exit the runtime may already be gone.
  for (auto& [key, list] : free_)
    for (void* p : list) cudaFree(p);
}

void* DeviceAllocator::allocate(std::size_t bytes, cudaStream_t stream) {
  const std::size_t cls = size_class(bytes);
  int device = 0;
  DETDL_CUDA_CHECK(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.allocations;
  void* ptr = nullptr;
  auto it = free_.find(FreeKey{device, stream, cls});
  if (it != free_.end() && !it->second.empty()) {
    ptr = it->second.back();
    it->second.pop_back();
    stats_.bytes_cached -= cls;
    ++stats_.cache_hits;
  } else {
    cudaError_t status = cudaMalloc(&ptr, cls);
    if (status == cudaErrorMemoryAllocation) {
      // Give the cached blocks back and try once more.
      cudaGetLastError();  // clear the error the failed call left for the next launch check
      DETDL_CUDA_CHECK(cudaDeviceSynchronize());
      for (auto& [key, list] : free_) {
        for (void* p : list) {
          DETDL_CUDA_CHECK(cudaFree(p));
          ++stats_.device_frees;
        }
        list.clear();
      }
      stats_.bytes_cached = 0;
      status = cudaMalloc(&ptr, cls);
    }
    if (status != cudaSuccess)
      throw std::runtime_error("DeviceAllocator::allocate: cudaMalloc of " + std::to_string(cls) +
                               " bytes failed: " + cudaGetErrorString(status));
    ++stats_.device_mallocs;
  }
  in_use_.emplace(ptr, Block{cls, device, stream});
  stats_.bytes_in_use += cls;
  if (stats_.bytes_in_use > stats_.peak_bytes_in_use)
    stats_.peak_bytes_in_use = stats_.bytes_in_use;
  return ptr;
}

void DeviceAllocator::release(void* ptr) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = in_use_.find(ptr);
  if (it == in_use_.end())
    throw std::invalid_argument(
        "DeviceAllocator::release: pointer was not handed out by this allocator "
        "(or was released twice)");
  const Block b = it->second;
  in_use_.erase(it);
  free_[FreeKey{b.device, b.stream, b.bytes}].push_back(ptr);
  stats_.bytes_in_use -= b.bytes;
  stats_.bytes_cached += b.bytes;
}

void DeviceAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (free_.empty()) return;
  // A cached block may still be read by kernels enqueued before its release.
  DETDL_CUDA_CHECK(cudaDeviceSynchronize());
  for (auto& [key, list] : free_)
    for (void* p : list) {
      DETDL_CUDA_CHECK(cudaFree(p));
      ++stats_.device_frees;
    }
  free_.clear();
  stats_.bytes_cached = 0;
}

AllocatorStats DeviceAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

DeviceAllocator& device_allocator() {
  // Never destroyed: static destruction order against the CUDA runtime's own teardown is
  // unspecified, so cached blocks are left to the driver at exit (call empty_cache() first
  // for a clean compute-sanitizer leak report).
  static DeviceAllocator* const instance = new DeviceAllocator();
  return *instance;
}

}  // namespace detdl::cuda
