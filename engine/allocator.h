// Device memory allocators. The CPU allocator returns 64-byte aligned blocks; the CUDA
// backend implements the same interface with a caching allocator over cudaMalloc.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace detdl {

enum class Device : std::uint8_t { cpu, cuda };
std::string_view device_name(Device d);

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(std::size_t bytes) = 0;
  virtual void deallocate(void* p, std::size_t bytes) = 0;
  virtual Device device() const = 0;
};

// The process's CPU allocator. It is never destroyed, so a tensor freed during static
// destruction (e.g. one held by a function-local static cache) still has it.
Allocator& cpu_allocator();
// cpu_allocator(), or the CUDA allocator (engine/cuda_backend.h), which throws a clear
// std::runtime_error when detdl was built without CUDA or no device is usable.
Allocator& allocator_for(Device d);
// Parses "cpu" / "cuda"; std::invalid_argument naming `what` (e.g. "--device") otherwise.
Device parse_device(std::string_view s, const char* what);

}  // namespace detdl
