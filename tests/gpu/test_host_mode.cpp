// Host mode itself (kernels/cuda/host/, docs/gpu.md): the emulation has to give CUDA's
// semantics before the kernel tests that run on it mean anything. Barriers, shared memory
// per block, warp operations, atomics (with float atomicAdd's flush of subnormals), launch
// configuration errors, the bounds checks of copies, the errors for kernels that wait
// forever, and the seeded scheduler: a missing barrier must change the result with the
// seed, a correct kernel must not.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/check.h"
#include "kernels/cuda/host/runtime.h"
#include "kernels/cuda/launch.h"

namespace {

namespace host = detdl::cuda::host;

template <class T>
class Dev {
 public:
  explicit Dev(std::size_t n) : n_(n) { DETDL_CUDA_CHECK(cudaMalloc(&p_, n * sizeof(T))); }
  explicit Dev(const std::vector<T>& v) : Dev(v.size()) {
    DETDL_CUDA_CHECK(cudaMemcpy(p_, v.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~Dev() { cudaFree(p_); }
  T* get() const { return p_; }
  std::vector<T> host() const {
    std::vector<T> v(n_);
    DETDL_CUDA_CHECK(cudaMemcpy(v.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
  }

 private:
  T* p_ = nullptr;
  std::size_t n_;
};

// Restores the scheduler's seed at the end of a test.
class Schedule {
 public:
  explicit Schedule(std::uint64_t seed) : saved_(host::schedule_seed()) {
    host::set_schedule_seed(seed);
  }
  ~Schedule() { host::set_schedule_seed(saved_); }

 private:
  std::uint64_t saved_;
};

constexpr int kThreads = 128;

// out[b * n + t] = 2 * ((t + 1) % n) + b: each thread reads what its neighbour wrote.
template <bool kBarrier>
__global__ void neighbour_kernel(float* out) {
  DETDL_SHARED(float, s, [kThreads]);
  const unsigned t = threadIdx.x, n = blockDim.x;
  s[t] = 2.0f * static_cast<float>(t) + static_cast<float>(blockIdx.x);
  if (kBarrier) __syncthreads();
  out[blockIdx.x * n + t] = s[(t + 1) % n];
}

template <bool kBarrier>
std::vector<float> run_neighbour(std::uint64_t seed) {
  Schedule schedule(seed);
  Dev<float> out(4 * kThreads);
  DETDL_LAUNCH(4, kThreads, 0, nullptr, neighbour_kernel<kBarrier>)(out.get());
  DETDL_CUDA_CHECK_LAUNCH("neighbour_kernel");
  return out.host();
}

std::vector<float> neighbour_expected() {
  std::vector<float> v(4 * kThreads);
  for (int b = 0; b < 4; ++b)
    for (int t = 0; t < kThreads; ++t) v[b * kThreads + t] = 2.0f * ((t + 1) % kThreads) + b;
  return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(HostMode, BarrierOrdersSharedMemoryUnderEverySchedule) {
  for (std::uint64_t seed : {0, 1, 2, 3, 77})
    EXPECT_TRUE(same_bits(run_neighbour<true>(seed), neighbour_expected())) << "seed " << seed;
}

// g++ defines __SANITIZE_THREAD__ under -fsanitize=thread; clang 14 only answers
// __has_feature(thread_sanitizer).
#if defined(__SANITIZE_THREAD__)
#define DETDL_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define DETDL_TEST_TSAN 1
#endif
#endif

TEST(HostMode, AMissingBarrierShowsInTheResults) {
#if defined(DETDL_TEST_TSAN)
  // Under ThreadSanitizer the race is the point of scripts/sanitize.sh's racecheck step,
  // which runs this test alone with DETDL_TSAN_RACE_CHECK=1 and requires the report.
  if (std::getenv("DETDL_TSAN_RACE_CHECK") == nullptr)
    GTEST_SKIP() << "its race is checked by scripts/sanitize.sh (racecheck)";
#endif
  // Without the barrier a thread may read its neighbour's slot before the neighbour wrote
  // it: in index order (seed 0) every thread but the last reads the NaN fill, and seeded
  // orders give results that differ from each other.
  const std::vector<float> in_order = run_neighbour<false>(0);
  EXPECT_TRUE(std::isnan(in_order[0]));
  EXPECT_FALSE(same_bits(in_order, neighbour_expected()));
  std::set<std::vector<float>> distinct;
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    const std::vector<float> r = run_neighbour<false>(seed);
    EXPECT_FALSE(same_bits(r, neighbour_expected())) << "seed " << seed;
    std::vector<float> key = r;
    for (float& v : key)
      if (std::isnan(v)) v = -1.0f;  // NaN != NaN would make every vector distinct
    distinct.insert(key);
  }
  EXPECT_GT(distinct.size(), 1u);
}

__global__ void coords_kernel(unsigned* out) {
  const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const unsigned per_block = blockDim.x * blockDim.y * blockDim.z;
  out[block * per_block + thread] = block * 1000 + thread;
}

TEST(HostMode, EveryThreadOfAThreeDimensionalGridRunsOnceWithItsCoordinates) {
  for (std::uint64_t seed : {0, 5}) {
    Schedule schedule(seed);
    const dim3 grid(3, 2, 2), block(4, 3, 2);
    const unsigned n = 12 * 24;
    Dev<unsigned> out(n);
    DETDL_CUDA_CHECK(cudaMemset(out.get(), 0xff, n * sizeof(unsigned)));
    DETDL_LAUNCH(grid, block, 0, nullptr, coords_kernel)(out.get());
    DETDL_CUDA_CHECK_LAUNCH("coords_kernel");
    const std::vector<unsigned> v = out.host();
    for (unsigned b = 0; b < 12; ++b)
      for (unsigned t = 0; t < 24; ++t) ASSERT_EQ(v[b * 24 + t], b * 1000 + t) << "seed " << seed;
  }
}

// Lane sums by a shuffle-down tree, a butterfly (xor), an inclusive scan (up), a
// broadcast, a ballot, and shuffles within groups of 8 lanes.
__global__ void warp_kernel(const float* x, float* out /*(6, 64)*/, unsigned* ballots) {
  const unsigned t = threadIdx.x, lane = t % 32;
  const float v = x[t];
  float down = v;
  for (unsigned d = 16; d > 0; d /= 2) down += __shfl_down_sync(0xffffffffu, down, d);
  float butterfly = v;
  for (int m = 16; m > 0; m /= 2) butterfly += __shfl_xor_sync(0xffffffffu, butterfly, m);
  float scan = v;
  for (unsigned d = 1; d < 32; d *= 2) {
    const float other = __shfl_up_sync(0xffffffffu, scan, d);
    if (lane >= d) scan += other;
  }
  const float from7 = __shfl_sync(0xffffffffu, v, 7);
  float group8 = v;
  for (int m = 4; m > 0; m /= 2) group8 += __shfl_xor_sync(0xffffffffu, group8, m, 8);
  const float rotated = __shfl_sync(0xffffffffu, v, static_cast<int>(lane) + 1, 8);
  out[0 * 64 + t] = down;
  out[1 * 64 + t] = butterfly;
  out[2 * 64 + t] = scan;
  out[3 * 64 + t] = from7;
  out[4 * 64 + t] = group8;
  out[5 * 64 + t] = rotated;
  const unsigned b = __ballot_sync(0xffffffffu, v > 0.0f);
  if (lane == 0) ballots[t / 32] = b;
}

TEST(HostMode, WarpShufflesAndBallotFollowCudaSemantics) {
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i)
    x[i] = static_cast<float>((i * 7) % 13) - 6.0f;  // integers: exact sums
  for (std::uint64_t seed : {0, 9}) {
    Schedule schedule(seed);
    Dev<float> dx(x), out(6 * 64);
    Dev<unsigned> ballots(2);
    DETDL_LAUNCH(1, 64, 0, nullptr, warp_kernel)(dx.get(), out.get(), ballots.get());
    DETDL_CUDA_CHECK_LAUNCH("warp_kernel");
    const std::vector<float> r = out.host();
    const std::vector<unsigned> b = ballots.host();
    for (int w = 0; w < 2; ++w) {
      float total = 0.0f, scan = 0.0f;
      unsigned ballot = 0;
      for (int l = 0; l < 32; ++l) {
        total += x[w * 32 + l];
        if (x[w * 32 + l] > 0.0f) ballot |= 1u << l;
      }
      EXPECT_EQ(b[w], ballot);
      for (int l = 0; l < 32; ++l) {
        const int t = w * 32 + l, g0 = t - l % 8;
        scan += x[t];
        if (l == 0) {
          EXPECT_EQ(r[0 * 64 + t], total);  // only lane 0 holds the whole tree
        }
        EXPECT_EQ(r[1 * 64 + t], total) << "lane " << l;
        EXPECT_EQ(r[2 * 64 + t], scan) << "lane " << l;
        EXPECT_EQ(r[3 * 64 + t], x[w * 32 + 7]);
        float group = 0.0f;
        for (int k = 0; k < 8; ++k) group += x[g0 + k];
        EXPECT_EQ(r[4 * 64 + t], group) << "lane " << l;
        EXPECT_EQ(r[5 * 64 + t], x[g0 + (l % 8 + 1) % 8]) << "lane " << l;
      }
    }
  }
}

__global__ void atomic_kernel(float* sum, float* tiny, unsigned long long* smallest, float value) {
  const unsigned long long id = blockIdx.x * blockDim.x + threadIdx.x;
  atomicAdd(sum, value);
  atomicAdd(tiny, std::numeric_limits<float>::denorm_min());
  atomicMin(smallest, 1000 - id);
}

TEST(HostMode, AtomicsCountEveryThreadAndFloatAddFlushesSubnormals) {
  Dev<float> sum(std::vector<float>{0.0f}), tiny(std::vector<float>{0.0f});
  Dev<unsigned long long> smallest(std::vector<unsigned long long>{~0ull});
  DETDL_LAUNCH(5, 64, 0, nullptr, atomic_kernel)(sum.get(), tiny.get(), smallest.get(), 0.5f);
  DETDL_CUDA_CHECK_LAUNCH("atomic_kernel");
  EXPECT_EQ(sum.host()[0], 160.0f);
  // PTX atom.add.f32 flushes subnormal inputs and results to zero: 320 additions of the
  // smallest subnormal leave +0.
  EXPECT_EQ(tiny.host()[0], 0.0f);
  EXPECT_EQ(smallest.host()[0], 1000ull - 319);
}

// Float atomics from many blocks: the order they land in is the scheduler's.
__global__ void atomic_order_kernel(const float* x, float* acc) {
  atomicAdd(acc, x[blockIdx.x * blockDim.x + threadIdx.x]);
}

TEST(HostMode, TheScheduleSeedDecidesTheOrderOfAtomicsReproducibly) {
  const int n = 64 * 32;
  std::vector<float> x(n);
  for (int i = 0; i < n; ++i)
    x[i] = std::ldexp(1.0f + static_cast<float>(i % 97) / 97.0f, i % 23 - 11);
  Dev<float> dx(x);
  auto run = [&](std::uint64_t seed) {
    Schedule schedule(seed);
    Dev<float> acc(std::vector<float>{0.0f});
    DETDL_LAUNCH(64, 32, 0, nullptr, atomic_order_kernel)(dx.get(), acc.get());
    DETDL_CUDA_CHECK_LAUNCH("atomic_order_kernel");
    return acc.host()[0];
  };
  float in_order = 0.0f;
  for (float v : x) in_order += v;
  EXPECT_EQ(run(0), in_order);  // seed 0: blocks and threads in index order
  std::set<float> seen;
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    const float a = run(seed);
    seen.insert(a);
    double exact = 0.0;
    for (float v : x) exact += v;
    EXPECT_LE(std::fabs(a - exact), 1e-5 * std::fabs(exact));
  }
  EXPECT_GT(seen.size(), 1u);
  // The same seed gives the same bits (setting the seed restarts the per-launch sequence).
  const float first = run(3), second = run(3);
  EXPECT_EQ(std::memcmp(&first, &second, sizeof first), 0);
}

__global__ void deadlock_kernel(float* out) {
  if (threadIdx.x == 0)
    __syncwarp(0x3u);  // waits for lane 1 ...
  else
    __syncthreads();  // ... which waits for lane 0 at the barrier
  out[threadIdx.x] = 1.0f;
}

TEST(HostMode, ThreadsThatWaitForEachOtherForeverAreAnErrorNamingTheKernel) {
  Dev<float> out(32);
  try {
    DETDL_LAUNCH(1, 32, 0, nullptr, deadlock_kernel)(out.get());
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("deadlock_kernel"), std::string::npos) << what;
    EXPECT_NE(what.find("wait forever"), std::string::npos) << what;
  }
  // The next launch runs normally.
  EXPECT_TRUE(same_bits(run_neighbour<true>(0), neighbour_expected()));
}

__global__ void mismatched_shared_kernel(float* out) {
  if (threadIdx.x == 0) {
    DETDL_SHARED(float, a, [4]);
    a[0] = 1.0f;
    out[0] = a[0];
  } else {
    DETDL_SHARED(float, b, [8]);
    b[0] = 2.0f;
    out[threadIdx.x] = b[0];
  }
}

TEST(HostMode, SharedDeclarationsThatDifferBetweenThreadsAreAnError) {
  Dev<float> out(4);
  EXPECT_THROW((DETDL_LAUNCH(1, 4, 0, nullptr, mismatched_shared_kernel)(out.get())),
               std::runtime_error);
}

__global__ void never_runs(float* out) { out[0] = 1.0f; }

TEST(HostMode, BadLaunchConfigurationsAreCudaErrorsAndRunNothing) {
  Dev<float> out(std::vector<float>{0.0f});
  cudaGetLastError();
  for (const auto& [grid, block] : {std::pair<dim3, dim3>{dim3(1), dim3(2048)},
                                    {dim3(1), dim3(1, 1, 65)},
                                    {dim3(0), dim3(32)},
                                    {dim3(1, 70000), dim3(32)}}) {
    DETDL_LAUNCH(grid, block, 0, nullptr, never_runs)(out.get());
    EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  }
  DETDL_LAUNCH(1, 32, 64 << 10, nullptr, never_runs)(out.get());  // dynamic shared > 48 KiB
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(out.host()[0], 0.0f);
  try {
    DETDL_LAUNCH(1, 2048, 0, nullptr, never_runs)(out.get());
    DETDL_CUDA_CHECK_LAUNCH("never_runs");
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cudaErrorInvalidConfiguration"), std::string::npos);
  }
}

TEST(HostMode, CopiesOutsideAnAllocationAreRefused) {
  Dev<float> d(16);
  std::vector<float> h(32, 1.0f);
  EXPECT_EQ(cudaMemcpy(d.get(), h.data(), 17 * sizeof(float), cudaMemcpyHostToDevice),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(h.data(), d.get() + 8, 9 * sizeof(float), cudaMemcpyDeviceToHost),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(d.get(), h.data(), 16 * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cudaMemset(d.get() + 1, 0, 16 * sizeof(float)), cudaErrorInvalidValue);
  EXPECT_EQ(cudaFree(h.data()), cudaErrorInvalidDevicePointer);
  cudaGetLastError();
}

__global__ void uninitialised_shared_kernel(float* out) {
  DETDL_SHARED(float, s, [32]);
  if (threadIdx.x == 0 && blockIdx.x == 0) s[0] = 5.0f;  // only block 0 writes
  __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] = s[0];
}

TEST(HostMode, SharedMemoryIsPerBlockAndStartsAsNaN) {
  Dev<float> out(64);
  DETDL_LAUNCH(2, 32, 0, nullptr, uninitialised_shared_kernel)(out.get());
  DETDL_CUDA_CHECK_LAUNCH("uninitialised_shared_kernel");
  const std::vector<float> v = out.host();
  for (int t = 0; t < 32; ++t) {
    EXPECT_EQ(v[t], 5.0f);
    EXPECT_TRUE(std::isnan(v[32 + t])) << "block 1 saw block 0's shared memory";
  }
}

}  // namespace
