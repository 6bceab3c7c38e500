// Host mode (docs/gpu.md, "Host mode"): the CUDA runtime API and the kernel language for
// the C++ compiler, so that kernels/cuda/*.cu run on the CPU bit for bit as they will on a
// device. A -DDETDL_CUDA_HOST=ON build compiles the same .cu sources with g++ / clang++
// against this header (through kernels/cuda/host/include/cuda_runtime.h).
//
// What it models:
//   - a launch (DETDL_LAUNCH in kernels/cuda/launch.h) runs its grid block by block; every
//     CUDA thread of a block is a fiber with its own stack (kernels/cuda/host/fiber.h);
//   - __syncthreads is a barrier of the block's live threads; the warp operations
//     (__shfl*_sync, __ballot_sync, __any_sync, __all_sync, __syncwarp) wait for the lanes
//     of their mask and exchange values as CUDA defines them;
//   - shared memory (DETDL_SHARED) is one region per block, filled with NaN bytes at the
//     start of each block so that a read before any write shows;
//   - atomics are real atomics with CUDA's rounding (float atomicAdd flushes subnormals,
//     as PTX atom.add.f32 does);
//   - a seeded scheduler (DETDL_HOST_SCHEDULE, set_schedule_seed) permutes the order of
//     the blocks and the order in which a block's threads run between two barriers, so a
//     missing barrier or a race on shared memory changes the result with the seed;
//   - device memory is host memory from cudaMalloc; copies and memsets check that their
//     device side lies inside one allocation; every call is synchronous (streams are
//     accepted and ordered trivially).
// What it cannot model (weak memory ordering, timing, lockstep) is listed in docs/gpu.md.
#pragma once
#include <atomic>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- the kernel language ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)

struct uint3 {
  unsigned x, y, z;
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}  // NOLINT: CUDA's implicit conversion
};

// The built-in variables threadIdx, blockIdx, blockDim and gridDim: read through the
// running fiber's coordinates (kernels/cuda/host/scheduler.cpp sets the pointer before each
// switch; an atomic access so that ThreadSanitizer sees no race on it between fibers).
namespace detdl::cuda::host {
struct ThreadCoords {
  uint3 thread, block, block_dim, grid_dim;
};
extern thread_local const ThreadCoords* t_coords;
inline const ThreadCoords& coords() { return *__atomic_load_n(&t_coords, __ATOMIC_RELAXED); }
}  // namespace detdl::cuda::host
#define threadIdx (::detdl::cuda::host::coords().thread)
#define blockIdx (::detdl::cuda::host::coords().block)
#define blockDim (::detdl::cuda::host::coords().block_dim)
#define gridDim (::detdl::cuda::host::coords().grid_dim)
constexpr int warpSize = 32;

// ---- the runtime API (the subset detdl uses) ----
enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInvalidDevice = 101,
  cudaErrorNoDevice = 100,
  cudaErrorLaunchFailure = 719,
};
using cudaError_t = cudaError;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
};

struct CUstream_st;
using cudaStream_t = CUstream_st*;

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaMalloc(void** ptr, std::size_t bytes);
template <class T>
cudaError_t cudaMalloc(T** ptr, std::size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemcpy2DAsync(void* dst, std::size_t dpitch, const void* src, std::size_t spitch,
                              std::size_t width, std::size_t height, cudaMemcpyKind kind,
                              cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* ptr, int value, std::size_t bytes);
cudaError_t cudaMemsetAsync(void* ptr, int value, std::size_t bytes, cudaStream_t stream = nullptr);
cudaError_t cudaMemset2DAsync(void* ptr, std::size_t pitch, int value, std::size_t width,
                              std::size_t height, cudaStream_t stream = nullptr);
cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t error);
const char* cudaGetErrorString(cudaError_t error);

namespace detdl::cuda::host {

// ---- launches ----
struct Launch {
  dim3 grid, block;
  std::size_t dynamic_shared;
  cudaStream_t stream;
  const char* kernel;  // the kernel's name as written at the launch site, for messages
  Launch(dim3 g, dim3 b, std::size_t shared, cudaStream_t s, const char* name)
      : grid(g), block(b), dynamic_shared(shared), stream(s), kernel(name) {}
};

// Runs body(ctx) as every thread of every block of `launch`. A bad configuration (as CUDA
// checks it: empty or too large a grid or block, too much dynamic shared memory) runs
// nothing and becomes the last error (cudaErrorInvalidConfiguration). A kernel bug that
// the scheduler sees (threads that wait for each other forever, shared memory declared in
// different orders or beyond the limit, an exception inside the kernel) throws
// std::runtime_error naming the kernel and the block.
void run_grid(const Launch& launch, void (*body)(void*), void* ctx);

// The launch object DETDL_LAUNCH builds: call(args...) copies the arguments once (as the
// CUDA runtime copies them into the parameter buffer), then each CUDA thread calls the
// kernel with them.
template <class Call>
class Launcher {
 public:
  Launcher(Launch launch, Call call) : launch_(launch), call_(call) {}
  template <class... A>
  void operator()(A&&... args) const {
    struct Ctx {
      Call call;
      std::tuple<std::decay_t<A>...> params;
    } ctx{call_, std::tuple<std::decay_t<A>...>(std::forward<A>(args)...)};
    run_grid(
        launch_,
        [](void* c) { std::apply(static_cast<Ctx*>(c)->call, static_cast<Ctx*>(c)->params); },
        &ctx);
  }

 private:
  Launch launch_;
  Call call_;
};

template <class Call>
Launcher<Call> make_launcher(Launch launch, Call call) {
  return Launcher<Call>(launch, call);
}

// ---- inside a kernel ----
void syncthreads();
// Waits for the lanes of `mask` (those still running) of the calling warp, each giving
// `value`; returns the values of all 32 lanes (lanes outside the mask: unspecified).
struct WarpValues {
  std::uint64_t lane[32];
};
WarpValues warp_exchange(unsigned mask, std::uint64_t value);
unsigned lane_id();
// The block's shared region for the calling thread's next DETDL_SHARED declaration
// (bytes, alignment 16); every thread of the block gets the same address for its n-th one.
void* shared_declaration(std::size_t bytes);

// The scheduler's seed: 0 runs blocks and threads in index order; any other value permutes
// both (seeded, reproducible: the n-th launch after set_schedule_seed(s) always runs in the
// same order). The default is DETDL_HOST_SCHEDULE from the environment, or 0.
void set_schedule_seed(std::uint64_t seed);
std::uint64_t schedule_seed();

template <class T>
std::uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>);
  std::uint64_t u = 0;
  std::memcpy(&u, &v, sizeof(T));
  return u;
}
template <class T>
T from_bits(std::uint64_t u) {
  T v;
  std::memcpy(&v, &u, sizeof(T));
  return v;
}

// Flush a subnormal to a zero of its sign (PTX .ftz).
inline float flush_subnormal(float v) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(v);
  return (u & 0x7f800000u) == 0 ? std::bit_cast<float>(u & 0x80000000u) : v;
}

}  // namespace detdl::cuda::host

// __shared__ T name[dims]: DETDL_SHARED(T, name, [dims]) (kernels/cuda/launch.h).
#define DETDL_HOST_SHARED(type, name, dims)                           \
  using name##_detdl_shared_t = type dims;                            \
  name##_detdl_shared_t& name = *static_cast<name##_detdl_shared_t*>( \
      ::detdl::cuda::host::shared_declaration(sizeof(name##_detdl_shared_t)))

// ---- device functions ----
inline void __syncthreads() { ::detdl::cuda::host::syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { ::detdl::cuda::host::warp_exchange(mask, 0); }

template <class T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize) {
  using namespace ::detdl::cuda::host;
  const unsigned lane = lane_id();
  const unsigned src = (lane & ~static_cast<unsigned>(width - 1)) +
                       static_cast<unsigned>(src_lane) % static_cast<unsigned>(width);
  return from_bits<T>(warp_exchange(mask, to_bits(var)).lane[src]);
}
template <class T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  using namespace ::detdl::cuda::host;
  const unsigned lane = lane_id();
  const WarpValues all = warp_exchange(mask, to_bits(var));
  const unsigned in_group = lane % static_cast<unsigned>(width);
  return in_group < delta ? var : from_bits<T>(all.lane[lane - delta]);
}
template <class T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  using namespace ::detdl::cuda::host;
  const unsigned lane = lane_id();
  const WarpValues all = warp_exchange(mask, to_bits(var));
  const unsigned in_group = lane % static_cast<unsigned>(width);
  return in_group + delta >= static_cast<unsigned>(width) ? var
                                                          : from_bits<T>(all.lane[lane + delta]);
}
template <class T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize) {
  using namespace ::detdl::cuda::host;
  const unsigned lane = lane_id();
  const WarpValues all = warp_exchange(mask, to_bits(var));
  const unsigned src = lane ^ static_cast<unsigned>(lane_mask);
  // A source in a later group of `width` lanes gives the caller its own value.
  const unsigned group = lane / static_cast<unsigned>(width);
  return src / static_cast<unsigned>(width) > group || src >= 32 ? var
                                                                 : from_bits<T>(all.lane[src]);
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  const auto all = ::detdl::cuda::host::warp_exchange(mask, predicate != 0);
  unsigned bits = 0;
  for (unsigned l = 0; l < 32; ++l)
    if ((mask >> l & 1u) && all.lane[l]) bits |= 1u << l;
  return bits;
}
inline int __any_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) != 0; }
inline int __all_sync(unsigned mask, int predicate) {
  return __ballot_sync(mask, predicate) == mask;
}

inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
inline float __uint_as_float(unsigned u) { return std::bit_cast<float>(u); }
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline float __int_as_float(int u) { return std::bit_cast<float>(u); }

// Atomics: relaxed, as CUDA's (no ordering beyond the one location).
inline float atomicAdd(float* address, float value) {
  std::atomic_ref<std::uint32_t> word(*reinterpret_cast<std::uint32_t*>(address));
  std::uint32_t old = word.load(std::memory_order_relaxed);
  for (;;) {
    const float sum = ::detdl::cuda::host::flush_subnormal(
        ::detdl::cuda::host::flush_subnormal(std::bit_cast<float>(old)) +
        ::detdl::cuda::host::flush_subnormal(value));
    if (word.compare_exchange_weak(old, std::bit_cast<std::uint32_t>(sum),
                                   std::memory_order_relaxed))
      return std::bit_cast<float>(old);
  }
}
inline double atomicAdd(double* address, double value) {
  return std::atomic_ref<double>(*address).fetch_add(value, std::memory_order_relaxed);
}
template <class T, class = std::enable_if_t<std::is_integral_v<T>>>
T atomicAdd(T* address, T value) {
  return std::atomic_ref<T>(*address).fetch_add(value, std::memory_order_relaxed);
}
template <class T, class = std::enable_if_t<std::is_integral_v<T>>>
T atomicMin(T* address, T value) {
  std::atomic_ref<T> a(*address);
  T old = a.load(std::memory_order_relaxed);
  while (value < old && !a.compare_exchange_weak(old, value, std::memory_order_relaxed)) {
  }
  return old;
}
template <class T, class = std::enable_if_t<std::is_integral_v<T>>>
T atomicMax(T* address, T value) {
  std::atomic_ref<T> a(*address);
  T old = a.load(std::memory_order_relaxed);
  while (value > old && !a.compare_exchange_weak(old, value, std::memory_order_relaxed)) {
  }
  return old;
}
template <class T, class = std::enable_if_t<std::is_integral_v<T>>>
T atomicExch(T* address, T value) {
  return std::atomic_ref<T>(*address).exchange(value, std::memory_order_relaxed);
}
template <class T, class = std::enable_if_t<std::is_integral_v<T>>>
T atomicCAS(T* address, T compare, T value) {
  std::atomic_ref<T>(*address).compare_exchange_strong(compare, value, std::memory_order_relaxed);
  return compare;
}
