// A caching device allocator over cudaMalloc (no managed memory). Freed blocks go to a
// free list keyed by (device, stream, size class) and are handed out again to the same
// stream: work on one stream runs in order, so a block released right after enqueuing the
// kernels that use it can be reused by the next allocation on that stream without a
// synchronisation. Blocks never move between streams; empty_cache() synchronises the
// device and returns every cached block to the driver.
//
// Size classes: requests are rounded up to a multiple of 512 bytes below 1 MiB and to a
// multiple of 2 MiB above, and a free block is reused only for the same class (no
// splitting, so no fragmentation bookkeeping). Thread-safe (one mutex).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/check.h"

namespace detdl::cuda {

struct AllocatorStats {
  std::size_t bytes_in_use = 0;  // handed out and not yet released
  std::size_t bytes_cached = 0;  // in free lists, owned by the allocator
  std::size_t peak_bytes_in_use = 0;
  std::uint64_t allocations = 0;     // allocate() calls
  std::uint64_t cache_hits = 0;      // of which served from a free list
  std::uint64_t device_mallocs = 0;  // cudaMalloc calls
  std::uint64_t device_frees = 0;    // cudaFree calls
};

class DeviceAllocator {
 public:
  DeviceAllocator() = default;
  DeviceAllocator(const DeviceAllocator&) = delete;
  DeviceAllocator& operator=(const DeviceAllocator&) = delete;
  ~DeviceAllocator();  // frees the cached blocks (blocks still in use are the owner's bug)

  // A block of at least `bytes` (>= 1 byte is handed out even for 0) on the current device,
  // for use on `stream`. Throws std::runtime_error if the device is out of memory even
  // after emptying the cache.
  void* allocate(std::size_t bytes, cudaStream_t stream);
  // Returns a block from allocate() to its free list. Throws std::invalid_argument for a
  // pointer this allocator did not hand out (or released twice).
  void release(void* ptr);
  // Synchronises the device and cudaFrees every cached (not in-use) block.
  void empty_cache();
  AllocatorStats stats() const;

  static std::size_t size_class(std::size_t bytes);

 private:
  struct Block {
    std::size_t bytes;
    int device;
    cudaStream_t stream;
  };
  using FreeKey = std::tuple<int, cudaStream_t, std::size_t>;
  mutable std::mutex mutex_;
  std::map<FreeKey, std::vector<void*>> free_;
  std::unordered_map<void*, Block> in_use_;
  AllocatorStats stats_;
};

// The process-wide allocator the kernels use for their scratch.
DeviceAllocator& device_allocator();

// RAII scratch: `count` elements of T from device_allocator() for `stream`, released on
// destruction (safe at once: the stream orders any later reuse after the kernels).
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer(std::size_t count, cudaStream_t stream)
      : ptr_(static_cast<T*>(device_allocator().allocate(count * sizeof(T), stream))) {}
  ~DeviceBuffer() {
    if (ptr_) device_allocator().release(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_) { o.ptr_ = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&&) = delete;
  T* get() const { return ptr_; }

 private:
  T* ptr_;
};

// Scratch holding a copy of `host` (a host-drawn order or rank table) for `stream`. The
// source is pageable, so cudaMemcpyAsync returns once the bytes are staged (the runtime
// API's synchronisation rules for pageable host->device copies): `host` may die at once,
// and no stream synchronisation is needed.
template <class T>
DeviceBuffer<T> upload(const std::vector<T>& host, cudaStream_t stream) {
  DeviceBuffer<T> d(host.empty() ? 1 : host.size(), stream);
  if (!host.empty())
    DETDL_CUDA_CHECK(cudaMemcpyAsync(d.get(), host.data(), host.size() * sizeof(T),
                                     cudaMemcpyHostToDevice, stream));
  return d;
}

}  // namespace detdl::cuda
