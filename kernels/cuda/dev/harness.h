// What every kernels/cuda/dev/ program shares: Philox inputs, a device buffer, the timer
// and main()'s arguments (--validate, --reps N). Host code; included by the dev .cu files.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "kernels/common/random.h"
#include "kernels/cuda/check.h"

namespace detdl::cuda::dev {

// Uniform floats in [-1, 1) with full fractions (a changed order shows in the last bits).
inline std::vector<float> random_vec(std::int64_t n, std::uint32_t sub, std::uint64_t seed) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    v[i] = philox_uniform_range(-1.0f, 1.0f, seed, RandomStream::test, sub,
                                static_cast<std::uint64_t>(i));
  return v;
}

// A device copy of a host vector (cudaMalloc, freed by the destructor).
struct DevBuf {
  float* p = nullptr;
  std::size_t n;
  explicit DevBuf(const std::vector<float>& h) : n(h.size()) {
    DETDL_CUDA_CHECK(cudaMalloc(&p, std::max<std::size_t>(n, 1) * sizeof(float)));
    if (n) DETDL_CUDA_CHECK(cudaMemcpy(p, h.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  ~DevBuf() { cudaFree(p); }
  std::vector<float> host() const {
    std::vector<float> h(n);
    if (n) DETDL_CUDA_CHECK(cudaMemcpy(h.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost));
    return h;
  }
};

// Seconds per call of f: one warm-up call, then reps calls between two device syncs.
template <class F>
double seconds_per_call(int reps, F f) {
  f();
  DETDL_CUDA_CHECK(cudaDeviceSynchronize());
  const auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < reps; ++r) f();
  DETDL_CUDA_CHECK(cudaDeviceSynchronize());
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
}

// main() of a dev program: parses --validate and --reps N, says so and returns 0 without a
// device, runs run(validate_only, reps) and turns an exception into exit code 1.
inline int harness_main(int argc, char** argv, const char* name, int (*run)(bool, int)) {
  bool validate_only = false;
  int reps = 10;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--validate") {
      validate_only = true;
    } else if (arg == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
      if (reps < 1) {
        std::fprintf(stderr, "%s: --reps must be >= 1\n", name);
        return 2;
      }
    } else {
      std::fprintf(stderr, "%s: unknown argument '%s' (use --validate, --reps N)\n", name, argv[i]);
      return 2;
    }
  }
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    cudaGetLastError();
    std::printf("%s: no CUDA device: nothing to do\n", name);
    return 0;
  }
  try {
    return run(validate_only, reps);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
}

}  // namespace detdl::cuda::dev
