// engine/cuda_backend.h in a build without CUDA: available() is false, require() and
// allocator() throw "built without CUDA", and every kernel entry of engine/cuda_door.def
// throws the same (they are unreachable: no tensor can be on a CUDA device without
// allocator()). Compiled empty when DETDL_HAVE_CUDA is defined (engine/cuda/backend.cpp
// defines them then).
#ifndef DETDL_HAVE_CUDA
#include <stdexcept>
#include <string>

#include "engine/cuda_backend.h"

namespace detdl::gpu {
namespace {
[[noreturn]] void no_cuda(const char* what) {
  throw std::runtime_error(
      std::string(what) +
      ": detdl was built without CUDA (reconfigure with -DDETDL_CUDA=ON where nvcc is installed)");
}
}  // namespace

bool available() { return false; }
void require(const char* what) { no_cuda(what); }
Allocator& allocator() { no_cuda("a CUDA tensor"); }

void copy_to_device(void*, const void*, std::size_t) { no_cuda("copy_to_device"); }
void copy_to_host(void*, const void*, std::size_t) { no_cuda("copy_to_host"); }
void copy_on_device(void*, const void*, std::size_t) { no_cuda("copy_on_device"); }
// Every kernel entry of the list throws; none returns (so the non-void ones need no value).
#define DETDL_CUDA_DOOR(ret, name, params, args) \
  ret name params { no_cuda(#name); }
#include "engine/cuda_door.def"
#undef DETDL_CUDA_DOOR

}  // namespace detdl::gpu
#endif  // DETDL_HAVE_CUDA
