// The CUDA kernels (kernels/cuda/) against the CPU kernels (kernels/cpu/), the oracle:
//   `portable` must give the very same bits (memcmp) on shapes that cross chunk boundaries
//   (GEMM K > 4096, conv weight-gradient reductions > 4096, sums > 256 values, odd sizes,
//   chunk counts that are not powers of two, C tiles that split K into chunk groups);
//   `fast` must stay within a rounding bound of the CPU, and the fast conv weight gradient
//   is run 10 times to show its atomics reorder (or the test skips saying they did not).
// Every test skips when cudaGetDeviceCount reports no device, so the binary is harmless in
// CPU-only CI. Device memory is freed by RAII (compute-sanitizer clean). In a host-mode
// build (-DDETDL_CUDA_HOST=ON, docs/gpu.md) the same tests run on the CPU, in CI, against
// the emulated device: only the cuBLAS test skips there.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/common/philox.h"
#include "kernels/common/random.h"
#include "kernels/common/reduction.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/emulated_conv.h"
#include "kernels/cpu/emulated_gemm.h"
#include "kernels/cpu/emulated_reduce.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/loss.h"
#include "kernels/cpu/optim.h"
#include "kernels/cpu/pool.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cuda/allocator.h"
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

namespace {

using detdl::CrossEntropyForm;
using detdl::Level;
using i64 = std::int64_t;
using Vec = std::vector<float>;
namespace cpu = detdl::cpu;
namespace cuda =
    detdl::cuda;  // the kernel side; gpu:: is the engine's door (engine/cuda_backend.h)

bool has_gpu() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) cudaGetLastError();  // no driver / no device: clear and report none
  return status == cudaSuccess && count > 0;
}

// Uniform floats in [lo, hi) from Philox (seeded per test by `sub`): full 23-bit
// fractions, so the order of a sum shows in the last bits.
Vec random_vec(i64 n, std::uint32_t sub, float lo = -1.0f, float hi = 1.0f) {
  Vec v(static_cast<std::size_t>(n));
  for (i64 i = 0; i < n; ++i)
    v[i] = detdl::philox_uniform_range(lo, hi, 2024, detdl::RandomStream::test, sub, i);
  return v;
}

// A device array owned by the test (plain cudaMalloc, freed in the destructor).
template <class T>
class Dev {
 public:
  explicit Dev(std::size_t n) : n_(n) {
    DETDL_CUDA_CHECK(cudaMalloc(&p_, std::max<std::size_t>(n, 1) * sizeof(T)));
  }
  explicit Dev(const std::vector<T>& host) : Dev(host.size()) {
    DETDL_CUDA_CHECK(cudaMemcpy(p_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~Dev() { cudaFree(p_); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  T* get() const { return p_; }
  std::vector<T> host() const {
    DETDL_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<T> h(n_);
    DETDL_CUDA_CHECK(cudaMemcpy(h.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }

 private:
  T* p_ = nullptr;
  std::size_t n_;
};

std::uint32_t bits(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

// Bit equality of two arrays; names the first differing element.
template <class T>
::testing::AssertionResult same_bits(const std::vector<T>& cpu_v, const std::vector<T>& gpu_v) {
  if (cpu_v.size() != gpu_v.size())
    return ::testing::AssertionFailure() << "sizes " << cpu_v.size() << " vs " << gpu_v.size();
  if (std::memcmp(cpu_v.data(), gpu_v.data(), cpu_v.size() * sizeof(T)) == 0)
    return ::testing::AssertionSuccess();
  for (std::size_t i = 0; i < cpu_v.size(); ++i)
    if (std::memcmp(&cpu_v[i], &gpu_v[i], sizeof(T)) != 0)
      return ::testing::AssertionFailure()
             << "first difference at " << i << ": cpu " << cpu_v[i] << " gpu " << gpu_v[i];
  return ::testing::AssertionFailure();
}
::testing::AssertionResult same_bits(float a, float b) {
  if (bits(a) == bits(b)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "cpu " << a << " gpu " << b;
}

::testing::AssertionResult close(const Vec& ref, const Vec& got, float tol) {
  for (std::size_t i = 0; i < ref.size(); ++i)
    if (!(std::fabs(ref[i] - got[i]) <= tol))
      return ::testing::AssertionFailure()
             << "element " << i << ": cpu " << ref[i] << " gpu " << got[i] << " tol " << tol;
  return ::testing::AssertionSuccess();
}

// Every test runs on its own stream; the allocator's cache is emptied after each test.
class Gpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!has_gpu()) GTEST_SKIP() << "no CUDA device (cudaGetDeviceCount reports none)";
    DETDL_CUDA_CHECK(cudaStreamCreate(&stream));
  }
  void TearDown() override {
    if (!stream) return;
    DETDL_CUDA_CHECK(cudaStreamSynchronize(stream));
    cuda::device_allocator().empty_cache();
    DETDL_CUDA_CHECK(cudaStreamDestroy(stream));
  }
  cudaStream_t stream = nullptr;
};

// ---------------------------------------------------------------- check.h, allocator

TEST(CudaCheck, ThrowsWithFileLineAndErrorString) {
  try {
    DETDL_CUDA_CHECK(cudaErrorInvalidValue);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("test_gpu_kernels.cpp:"), std::string::npos) << what;
    EXPECT_NE(what.find(cudaGetErrorString(cudaErrorInvalidValue)), std::string::npos) << what;
  }
}

TEST(Allocator, SizeClasses) {
  EXPECT_EQ(cuda::DeviceAllocator::size_class(0), 512u);
  EXPECT_EQ(cuda::DeviceAllocator::size_class(1), 512u);
  EXPECT_EQ(cuda::DeviceAllocator::size_class(513), 1024u);
  EXPECT_EQ(cuda::DeviceAllocator::size_class((1u << 20) - 1), 1u << 20);
  EXPECT_EQ(cuda::DeviceAllocator::size_class((1u << 20) + 1), 2u << 20);
  EXPECT_EQ(cuda::DeviceAllocator::size_class((2u << 20) + 1), 4u << 20);
}

TEST_F(Gpu, AllocatorReusesReleasedBlocksPerStreamAndEmptiesItsCache) {
  cuda::DeviceAllocator alloc;
  void* a = alloc.allocate(1000, stream);
  alloc.release(a);
  void* b = alloc.allocate(900, stream);  // same class (1024 bytes), same stream: reused
  EXPECT_EQ(a, b);
  EXPECT_EQ(alloc.stats().cache_hits, 1u);
  EXPECT_EQ(alloc.stats().device_mallocs, 1u);
  void* c = alloc.allocate(900, nullptr);  // another stream never gets a block in flight elsewhere
  EXPECT_NE(c, b);
  EXPECT_EQ(alloc.stats().bytes_in_use, 2048u);
  alloc.release(b);
  alloc.release(c);
  EXPECT_THROW(alloc.release(c), std::invalid_argument);
  EXPECT_EQ(alloc.stats().bytes_cached, 2048u);
  alloc.empty_cache();
  EXPECT_EQ(alloc.stats().bytes_cached, 0u);
  EXPECT_EQ(alloc.stats().device_frees, 2u);
  EXPECT_EQ(alloc.stats().peak_bytes_in_use, 2048u);
}

// ---------------------------------------------------------------- GEMM

struct GemmCase {
  i64 M, N, K;
  bool ta, tb;
};

struct GemmProblem {
  GemmCase g;
  i64 lda, ldb, ldc;
  Vec A, B;
  // aligned: leading dimensions that are multiples of 4 (the kernels' float4 paths), else
  // odd paddings (scalar paths).
  GemmProblem(GemmCase c, std::uint32_t sub, bool aligned = false) : g(c) {
    lda = (c.ta ? c.M : c.K) + (aligned ? (4 - (c.ta ? c.M : c.K) % 4) % 4 + 4 : 3);
    ldb = (c.tb ? c.K : c.N) + (aligned ? (4 - (c.tb ? c.K : c.N) % 4) % 4 + 4 : 2);
    ldc = c.N + (aligned ? (4 - c.N % 4) % 4 + 4 : 1);
    A = random_vec((c.ta ? c.K : c.M) * lda, sub);
    B = random_vec((c.tb ? c.N : c.K) * ldb, sub + 1);
  }
  // C starts as NaN with a sentinel in the ldc padding (must be left alone).
  Vec fresh_c() const {
    Vec C(static_cast<std::size_t>(g.M * ldc), std::numeric_limits<float>::quiet_NaN());
    for (i64 m = 0; m < g.M; ++m) C[m * ldc + g.N] = 777.0f;
    return C;
  }
  Vec run_cpu(Level level) const {
    Vec C = fresh_c();
    cpu::sgemm(level, g.ta, g.tb, g.M, g.N, g.K, A.data(), lda, B.data(), ldb, C.data(), ldc);
    return C;
  }
  Vec run_gpu(Level level, cudaStream_t stream) const {
    Dev<float> a(A), b(B), c(fresh_c());
    cuda::sgemm(level, g.ta, g.tb, g.M, g.N, g.K, a.get(), lda, b.get(), ldb, c.get(), ldc, stream);
    return c.host();
  }
  // Per element: sum over k of |a||b| (double), for rounding bounds.
  std::vector<double> abs_sums() const {
    std::vector<double> s(static_cast<std::size_t>(g.M * g.N), 0.0);
    for (i64 m = 0; m < g.M; ++m)
      for (i64 k = 0; k < g.K; ++k) {
        const double a = std::fabs(g.ta ? A[k * lda + m] : A[m * lda + k]);
        for (i64 n = 0; n < g.N; ++n)
          s[m * g.N + n] += a * std::fabs(g.tb ? B[n * ldb + k] : B[k * ldb + n]);
      }
    return s;
  }
  // |got - ref| <= rel * sum|a b| on every element (the padding must still be the sentinel).
  ::testing::AssertionResult within(const Vec& ref, const Vec& got, double rel) const {
    const std::vector<double> s = abs_sums();
    for (i64 m = 0; m < g.M; ++m) {
      if (got[m * ldc + g.N] != 777.0f)
        return ::testing::AssertionFailure() << "ldc padding written, row " << m;
      for (i64 n = 0; n < g.N; ++n) {
        const double d = std::fabs(static_cast<double>(ref[m * ldc + n]) - got[m * ldc + n]);
        if (!(d <= rel * s[m * g.N + n] + 1e-30))
          return ::testing::AssertionFailure() << "C[" << m << "][" << n << "]: cpu "
                                               << ref[m * ldc + n] << " gpu " << got[m * ldc + n];
      }
    }
    return ::testing::AssertionSuccess();
  }
};

TEST_F(Gpu, GemmPortableEqualsCpuBitForBit) {
  const GemmCase cases[] = {
      {37, 53, 9000, false, false},  // 3 chunks (not a power of two); few tiles: chunk groups
      {5, 7, 20000, true, false},    // 5 chunks, tiny C: many groups of one chunk each
      {130, 70, 4097, false, true},  // one term past a chunk
      {64, 64, 4096, true, true},    // exactly one chunk
      {1, 1, 1, false, false},      {3, 2, 0, false, true},  // K = 0: +0.0f everywhere
      {66, 129, 300, true, false},                           // edge tiles in both directions
  };
  std::uint32_t sub = 10;
  for (const GemmCase& c : cases) {
    SCOPED_TRACE(::testing::Message() << "M " << c.M << " N " << c.N << " K " << c.K << " ta "
                                      << c.ta << " tb " << c.tb);
    const GemmProblem p(c, sub += 2);
    const Vec ref = p.run_cpu(Level::portable);
    EXPECT_TRUE(same_bits(ref, p.run_gpu(Level::portable, stream)));
    EXPECT_TRUE(same_bits(ref, p.run_gpu(Level::repeatable, stream)));
  }
}

TEST_F(Gpu, GemmPortableWithManyTilesUsesOneGroupAndStillEqualsCpu) {
  // Many 128 x 128 tiles over two chunks (the chunk partials and their fold).
  const GemmProblem p({1040, 1040, 4500, false, false}, 40);
  EXPECT_TRUE(same_bits(p.run_cpu(Level::portable), p.run_gpu(Level::portable, stream)));
}

TEST_F(Gpu, GemmAlignedLayoutsTakeTheFloat4PathsAndEqualCpu) {
  // Leading dimensions that are multiples of 4: float4 loads of A and B in every transpose
  // combination and float4 stores of C, in both tile sizes (128 x 128 from 96 rows and
  // columns, 64 x 64 below), with edge tiles and partial k slices.
  const GemmCase cases[] = {
      {200, 136, 5000, false, false}, {200, 136, 5000, true, false}, {131, 97, 300, false, true},
      {96, 100, 8201, true, true},    {40, 52, 4100, false, false},  {33, 20, 77, true, true},
  };
  std::uint32_t sub = 70;
  // Under both tile rules: filling the SMs sends these small products to the 64 x 64 tiles,
  // so the 128 x 128 kernel is run here with the rule off (set_gemm_fill_sms).
  const bool old_fill = cuda::set_gemm_fill_sms(true);
  for (bool fill : {true, false}) {
    cuda::set_gemm_fill_sms(fill);
    for (const GemmCase& c : cases) {
      SCOPED_TRACE(::testing::Message() << "M " << c.M << " N " << c.N << " K " << c.K << " ta "
                                        << c.ta << " tb " << c.tb << " fill_sms " << fill);
      const GemmProblem p(c, sub += 2, /*aligned=*/true);
      const Vec ref = p.run_cpu(Level::portable);
      EXPECT_TRUE(same_bits(ref, p.run_gpu(Level::portable, stream)));
      EXPECT_TRUE(p.within(ref, p.run_gpu(Level::fast, stream), c.K * 0x1p-23));
    }
  }
  cuda::set_gemm_fill_sms(old_fill);
}

TEST_F(Gpu, GemmPortableInRowPanelsUnderASmallScratchBudgetEqualsCpu) {
  // 300 rows, 3 chunks: a budget of 3 * 40 * 128 floats gives panels of 128, 128 and 44 rows.
  const GemmProblem p({300, 40, 9000, true, false}, 90);
  const std::int64_t old = cuda::set_sgemm_partial_budget(3 * 40 * 128);
  const Vec got = p.run_gpu(Level::portable, stream);
  cuda::set_sgemm_partial_budget(old);
  EXPECT_TRUE(same_bits(p.run_cpu(Level::portable), got));
  EXPECT_THROW(cuda::set_sgemm_partial_budget(0), std::invalid_argument);
}

TEST_F(Gpu, GemmFastIsCloseAndEqualsPortableForOneChunk) {
  const GemmProblem big({9, 11, 30000, false, true}, 50);  // split-K with atomics
  EXPECT_TRUE(
      big.within(big.run_cpu(Level::portable), big.run_gpu(Level::fast, stream), 30000 * 0x1p-23));
  const GemmProblem one({100, 90, 3000, true, false}, 52);  // K <= 4096: one chain either way
  EXPECT_TRUE(same_bits(one.run_cpu(Level::portable), one.run_gpu(Level::fast, stream)));
}

TEST_F(Gpu, CublasSgemmFp32AndTf32AreClose) {
#ifdef DETDL_CUDA_HOST
  GTEST_SKIP() << "host mode: cuBLAS runs only on a device";
#endif
  const GemmProblem p({70, 45, 1500, true, true}, 60);
  const Vec ref = p.run_cpu(Level::portable);
  for (bool tf32 : {false, true}) {
    SCOPED_TRACE(tf32 ? "tf32" : "fp32");
    Dev<float> a(p.A), b(p.B), c(p.fresh_c());
    cuda::cublas_sgemm(tf32, true, true, p.g.M, p.g.N, p.g.K, a.get(), p.lda, b.get(), p.ldb,
                       c.get(), p.ldc, stream);
    // fp32: the worst case of any summation order; tf32: inputs rounded to 10 fraction bits.
    EXPECT_TRUE(p.within(ref, c.host(), tf32 ? 0x1p-8 + 1500 * 0x1p-23 : 1500 * 0x1p-23));
  }
}

TEST_F(Gpu, GemmRejectsBadLeadingDimension) {
  EXPECT_THROW(cuda::sgemm(Level::portable, false, false, 4, 4, 4, nullptr, 3, nullptr, 4, nullptr,
                           4, stream),
               std::invalid_argument);
}

// ---------------------------------------------------------------- reductions

TEST_F(Gpu, ColumnSumsAndSumAllEqualCpu) {
  for (auto [rows, cols] : std::initializer_list<std::pair<i64, i64>>{
           {1000, 77}, {300, 1}, {256, 5}, {3, 300}, {1, 1}}) {
    SCOPED_TRACE(::testing::Message() << rows << " x " << cols);
    const Vec x = random_vec(rows * cols, 70);
    Vec ref(static_cast<std::size_t>(cols));
    cpu::column_sums(Level::portable, rows, cols, x.data(), ref.data());
    Dev<float> dx(x), out(static_cast<std::size_t>(cols));
    cuda::column_sums(Level::portable, rows, cols, dx.get(), out.get(), stream);
    EXPECT_TRUE(same_bits(ref, out.host()));
    cuda::column_sums(Level::fast, rows, cols, dx.get(), out.get(), stream);
    EXPECT_TRUE(close(ref, out.host(), 1e-6f * rows));
  }
  for (i64 n : {100003, 257, 256, 1, 0}) {
    SCOPED_TRACE(n);
    const Vec x = random_vec(n, 71);
    Dev<float> dx(x);
    EXPECT_TRUE(same_bits(cpu::sum_all(Level::portable, n, x.data()),
                          cuda::sum_all(Level::portable, n, dx.get(), stream)));
    EXPECT_NEAR(cpu::sum_all(Level::portable, n, x.data()),
                cuda::sum_all(Level::fast, n, dx.get(), stream), 1e-6 * n);
  }
}

TEST_F(Gpu, LongReductionsFoldTheirChunksByTreesAndEqualCpu) {
  // More than 64 chunks: the warp and block trees (reduce.h value_tree_level) instead of one
  // thread per output: 274 chunks of 3 columns (one level, a partial last group of 18), and
  // 65,836 chunks of one sum (three levels: 258 groups, then 2, then 1), against the CPU's
  // ChunkTree bit for bit.
  {
    const i64 rows = 70000, cols = 3;
    const Vec x = random_vec(rows * cols, 72);
    Vec ref(static_cast<std::size_t>(cols));
    cpu::column_sums(Level::portable, rows, cols, x.data(), ref.data());
    Dev<float> dx(x), out(static_cast<std::size_t>(cols));
    cuda::column_sums(Level::portable, rows, cols, dx.get(), out.get(), stream);
    EXPECT_TRUE(same_bits(ref, out.host()));
  }
  const i64 n = 256 * (65536 + 300) - 17;
  const Vec x = random_vec(n, 73);
  Dev<float> dx(x);
  EXPECT_TRUE(same_bits(cpu::sum_all(Level::portable, n, x.data()),
                        cuda::sum_all(Level::portable, n, dx.get(), stream)));
}

// ---------------------------------------------------------------- convolution

struct ConvRun {
  Vec y, dx, dw, db;
};

ConvRun conv_cpu(const detdl::Conv2dShape& s, const Vec& x, const Vec& w, const Vec& b,
                 const Vec& dy, Level level, bool bias) {
  ConvRun r{Vec(s.N * s.O * s.OH * s.OW), Vec(s.N * s.C * s.H * s.W), Vec(w.size()), Vec(s.O)};
  cpu::conv2d_forward(level, s, x.data(), w.data(), bias ? b.data() : nullptr, r.y.data());
  cpu::conv2d_backward_data(level, s, dy.data(), w.data(), r.dx.data());
  cpu::conv2d_backward_weight(level, s, x.data(), dy.data(), r.dw.data());
  cpu::conv2d_backward_bias(level, s, dy.data(), r.db.data());
  return r;
}

ConvRun conv_gpu(const detdl::Conv2dShape& s, const Vec& x, const Vec& w, const Vec& b,
                 const Vec& dy, Level level, bool bias, cudaStream_t stream) {
  Dev<float> dx_in(x), dw_in(w), db_in(b), ddy(dy);
  Dev<float> y(s.N * s.O * s.OH * s.OW), dx(s.N * s.C * s.H * s.W), dw(w.size()), db(s.O);
  cuda::conv2d_forward(level, s, dx_in.get(), dw_in.get(), bias ? db_in.get() : nullptr, y.get(),
                       stream);
  cuda::conv2d_backward_data(level, s, ddy.get(), dw_in.get(), dx.get(), stream);
  cuda::conv2d_backward_weight(level, s, dx_in.get(), ddy.get(), dw.get(), stream);
  cuda::conv2d_backward_bias(level, s, ddy.get(), db.get(), stream);
  return {y.host(), dx.host(), dw.host(), db.host()};
}

struct ConvCase {
  const char* name;
  detdl::Conv2dShape s;
};

std::vector<ConvCase> conv_cases() {
  return {
      {"3x3 pad 1", detdl::conv2d_shape(3, 5, 13, 13, 7, 3, 3, 1, 1)},
      {"same stride 2 (asymmetric pad)", detdl::conv2d_shape_same(4, 3, 16, 15, 6, 3, 3, 2)},
      {"wgrad over 11264 positions (3 chunks)", detdl::conv2d_shape(11, 4, 32, 32, 8, 3, 3, 1, 1)},
      {"forward K = 4140 (2 chunks)", detdl::conv2d_shape(2, 460, 6, 6, 5, 3, 3, 1, 1)},
      {"data gradient over O = 4200", detdl::conv2d_shape_valid(2, 3, 5, 5, 4200, 2, 2, 1)},
      {"5x5 same, 1 sample", detdl::conv2d_shape_same(1, 2, 9, 7, 3, 5, 5, 1)},
  };
}

void check_conv_equal(const detdl::Conv2dShape& s, std::uint32_t sub, cudaStream_t stream) {
  const Vec x = random_vec(s.N * s.C * s.H * s.W, sub),
            w = random_vec(s.O * s.C * s.KH * s.KW, sub + 1);
  const Vec b = random_vec(s.O, sub + 2), dy = random_vec(s.N * s.O * s.OH * s.OW, sub + 3);
  for (bool bias : {true, false}) {
    SCOPED_TRACE(bias ? "with bias" : "no bias");
    const ConvRun ref = conv_cpu(s, x, w, b, dy, Level::portable, bias);
    const ConvRun got = conv_gpu(s, x, w, b, dy, Level::portable, bias, stream);
    EXPECT_TRUE(same_bits(ref.y, got.y)) << "forward";
    EXPECT_TRUE(same_bits(ref.dx, got.dx)) << "backward_data";
    EXPECT_TRUE(same_bits(ref.dw, got.dw)) << "backward_weight";
    EXPECT_TRUE(same_bits(ref.db, got.db)) << "backward_bias";
  }
}

TEST_F(Gpu, ConvPortableEqualsCpuBitForBit) {
  std::uint32_t sub = 100;
  for (const ConvCase& c : conv_cases()) {
    SCOPED_TRACE(c.name);
    check_conv_equal(c.s, sub += 4, stream);
  }
}

TEST_F(Gpu, ConvPortableUnderASmallScratchBudgetStillEqualsCpu) {
  // Budget 1: forward / data tiles of one sample, weight-gradient tiles of 4096 positions
  // (3 tiles on the stack of partial results).
  const std::int64_t saved = cuda::conv_scratch_budget();
  cuda::set_conv_scratch_budget(1);
  check_conv_equal(detdl::conv2d_shape(11, 4, 32, 32, 8, 3, 3, 1, 1), 200, stream);
  check_conv_equal(detdl::conv2d_shape_same(3, 2, 40, 41, 3, 3, 3, 1), 210,
                   stream);  // 4920 positions: 2 tiles
  cuda::set_conv_scratch_budget(saved);
  EXPECT_THROW(cuda::set_conv_scratch_budget(0), std::invalid_argument);
}

TEST_F(Gpu, ConvRejectsBadShape) {
  detdl::Conv2dShape s = detdl::conv2d_shape(1, 1, 4, 4, 1, 3, 3, 1, 1);
  s.stride_h = 0;
  EXPECT_THROW(cuda::conv2d_forward(Level::portable, s, nullptr, nullptr, nullptr, nullptr, stream),
               std::invalid_argument);
}

TEST_F(Gpu, ConvFastIsClose) {
  const detdl::Conv2dShape s = detdl::conv2d_shape(11, 4, 32, 32, 8, 3, 3, 1, 1);
  const Vec x = random_vec(s.N * s.C * s.H * s.W, 300), w = random_vec(s.O * s.C * 9, 301),
            b = random_vec(s.O, 302);
  const Vec dy = random_vec(s.N * s.O * s.OH * s.OW, 303);
  const ConvRun ref = conv_cpu(s, x, w, b, dy, Level::portable, true);
  const ConvRun got = conv_gpu(s, x, w, b, dy, Level::fast, true, stream);
  EXPECT_TRUE(close(ref.y, got.y, 1e-5f));
  EXPECT_TRUE(close(ref.dx, got.dx, 1e-5f));
  const float total = static_cast<float>(s.N * s.OH * s.OW);
  EXPECT_TRUE(close(ref.dw, got.dw, total * 0x1p-22f));  // terms |dy x| < 1
  EXPECT_TRUE(close(ref.db, got.db, total * 0x1p-22f));
}

TEST_F(Gpu, ConvFastWeightGradientVariesRunToRun) {
  // 32768 positions, dw (8, 36): one C tile, so K is split into 32 pieces whose atomicAdds
  // land in arrival order.
  const detdl::Conv2dShape s = detdl::conv2d_shape(32, 4, 32, 32, 8, 3, 3, 1, 1);
  const Vec x = random_vec(s.N * s.C * s.H * s.W, 400),
            dy = random_vec(s.N * s.O * s.OH * s.OW, 401);
  Dev<float> dx(x), ddy(dy), dw(s.O * s.C * 9);
  Vec ref(s.O * s.C * 9);
  cpu::conv2d_backward_weight(Level::portable, s, x.data(), dy.data(), ref.data());
  std::set<std::vector<std::uint32_t>> distinct;
  for (int run = 0; run < 10; ++run) {
    cuda::conv2d_backward_weight(Level::fast, s, dx.get(), ddy.get(), dw.get(), stream);
    const Vec got = dw.host();
    EXPECT_TRUE(close(ref, got, 32768 * 0x1p-22f));
    std::vector<std::uint32_t> b(got.size());
    std::memcpy(b.data(), got.data(), got.size() * sizeof(float));
    distinct.insert(b);
  }
  std::printf("[ info ] fast conv weight gradient: %zu distinct results in 10 runs\n",
              distinct.size());
  if (distinct.size() == 1)
    GTEST_SKIP() << "the 10 fast runs happened to be bit-identical (atomics did not race)";
  EXPECT_GT(distinct.size(), 1u);
}

// ---------------------------------------------------------------- pooling

TEST_F(Gpu, PoolingEqualsCpuBitForBit) {
  const detdl::Pool2dShape shapes[] = {
      detdl::pool2d_shape(2, 3, 8, 8, 2, 2, 2, 0),     // the CPU's 2x2 / stride 2 fast path
      detdl::pool2d_shape(2, 3, 11, 9, 3, 3, 2, 1),    // padding on every side
      detdl::pool2d_shape_same(3, 2, 7, 10, 3, 2, 2),  // Keras 'same', asymmetric
      detdl::pool2d_shape_valid(1, 4, 9, 9, 3, 3, 1),  // overlapping windows
  };
  std::uint32_t sub = 500;
  for (const detdl::Pool2dShape& s : shapes) {
    SCOPED_TRACE(::testing::Message()
                 << s.H << "x" << s.W << " window " << s.KH << "x" << s.KW << " stride "
                 << s.stride_h << " pad " << s.pad_top << "," << s.pad_left);
    // Values on a coarse grid, so windows have ties (the first maximum must win).
    Vec x = random_vec(s.N * s.C * s.H * s.W, sub += 2);
    for (float& v : x) v = std::round(v * 3.0f) / 3.0f;
    Vec xnan = x;
    xnan[5] = std::numeric_limits<float>::quiet_NaN();  // a NaN wins its windows (max only:
    // a NaN produced by arithmetic has the device's canonical payload, not the CPU's)
    const Vec dy = random_vec(s.N * s.C * s.OH * s.OW, sub + 1);
    const std::size_t in = x.size(), out = dy.size();
    Dev<float> gxnan(xnan), gx(x), gdy(dy), gy(out), gdx(in);
    Dev<std::int32_t> garg(out);

    Vec y(out), dx(in);
    std::vector<std::int32_t> arg(out);
    cpu::maxpool2d_forward(s, xnan.data(), y.data(), arg.data());
    cpu::maxpool2d_backward(s, dy.data(), arg.data(), dx.data());
    cuda::maxpool2d_forward(s, gxnan.get(), gy.get(), garg.get(), stream);
    cuda::maxpool2d_backward(s, gdy.get(), garg.get(), gdx.get(), stream);
    EXPECT_TRUE(same_bits(y, gy.host())) << "max forward";
    EXPECT_TRUE(same_bits(arg, garg.host())) << "argmax";
    EXPECT_TRUE(same_bits(dx, gdx.host())) << "max backward";
    for (bool include_pad : {true, false}) {
      SCOPED_TRACE(include_pad ? "count_include_pad" : "count inside only");
      cpu::avgpool2d_forward(s, include_pad, x.data(), y.data());
      cpu::avgpool2d_backward(s, include_pad, dy.data(), dx.data());
      cuda::avgpool2d_forward(s, include_pad, gx.get(), gy.get(), stream);
      cuda::avgpool2d_backward(s, include_pad, gdy.get(), gdx.get(), stream);
      EXPECT_TRUE(same_bits(y, gy.host())) << "avg forward";
      EXPECT_TRUE(same_bits(dx, gdx.host())) << "avg backward";
    }
  }
  for (i64 HW : {1000, 7, 256}) {
    SCOPED_TRACE(HW);
    const i64 N = 3, C = 5;
    const Vec x = random_vec(N * C * HW, 600), dy = random_vec(N * C, 601);
    Vec y(N * C), dx(N * C * HW);
    cpu::global_avgpool_forward(N, C, HW, x.data(), y.data());
    cpu::global_avgpool_backward(N, C, HW, dy.data(), dx.data());
    Dev<float> gx(x), gdy(dy), gy(N * C), gdx(N * C * HW);
    cuda::global_avgpool_forward(N, C, HW, gx.get(), gy.get(), stream);
    cuda::global_avgpool_backward(N, C, HW, gdy.get(), gdx.get(), stream);
    EXPECT_TRUE(same_bits(y, gy.host())) << "global forward";
    EXPECT_TRUE(same_bits(dx, gdx.host())) << "global backward";
  }
}

// ---------------------------------------------------------------- batch norm

TEST_F(Gpu, BatchNormEqualsCpuBitForBitAndFastIsClose) {
  struct Case {
    i64 N, C, HW;
  };
  for (const Case& c : {Case{7, 5, 300}, Case{1000, 3, 1}, Case{2, 17, 9}}) {
    SCOPED_TRACE(::testing::Message() << "N " << c.N << " C " << c.C << " HW " << c.HW);
    const i64 n = c.N * c.C * c.HW;
    const Vec x = random_vec(n, 700, -2.0f, 3.0f), dy = random_vec(n, 701);
    const Vec gamma = random_vec(c.C, 702, 0.5f, 1.5f), beta = random_vec(c.C, 703);
    Vec rm = random_vec(c.C, 704), rv = random_vec(c.C, 705, 0.5f, 2.0f);
    Dev<float> gx(x), gdy(dy), ggamma(gamma), gbeta(beta), grm(rm), grv(rv);
    for (Level level : {Level::portable, Level::fast}) {
      SCOPED_TRACE(std::string(detdl::level_name(level)));
      Vec y(n), mean(c.C), inv(c.C), var(c.C), dx(n), dg(c.C), db(c.C);
      cpu::batchnorm_forward_train(Level::portable, c.N, c.C, c.HW, x.data(), gamma.data(),
                                   beta.data(), 1e-5f, y.data(), mean.data(), inv.data(),
                                   var.data());
      cpu::batchnorm_backward(Level::portable, c.N, c.C, c.HW, x.data(), dy.data(), gamma.data(),
                              mean.data(), inv.data(), dx.data(), dg.data(), db.data());
      Dev<float> gy(n), gmean(c.C), ginv(c.C), gvar(c.C), gdx(n), gdg(c.C), gdb(c.C);
      cuda::batchnorm_forward_train(level, c.N, c.C, c.HW, gx.get(), ggamma.get(), gbeta.get(),
                                    1e-5f, gy.get(), gmean.get(), ginv.get(), gvar.get(), stream);
      cuda::batchnorm_backward(level, c.N, c.C, c.HW, gx.get(), gdy.get(), ggamma.get(),
                               gmean.get(), ginv.get(), gdx.get(), gdg.get(), gdb.get(), stream);
      if (level == Level::portable) {
        EXPECT_TRUE(same_bits(mean, gmean.host())) << "mean";
        EXPECT_TRUE(same_bits(inv, ginv.host())) << "inv_std";
        EXPECT_TRUE(same_bits(var, gvar.host())) << "var";
        EXPECT_TRUE(same_bits(y, gy.host())) << "y";
        EXPECT_TRUE(same_bits(dx, gdx.host())) << "dx";
        EXPECT_TRUE(same_bits(dg, gdg.host())) << "dgamma";
        EXPECT_TRUE(same_bits(db, gdb.host())) << "dbeta";
      } else {
        EXPECT_TRUE(close(mean, gmean.host(), 1e-5f));
        EXPECT_TRUE(close(y, gy.host(), 1e-4f));
        EXPECT_TRUE(close(dg, gdg.host(), 1e-6f * c.N * c.HW));
        EXPECT_TRUE(close(dx, gdx.host(), 1e-4f));
      }
    }
    // Running statistics (both conventions) and the eval forward: element-wise.
    Vec mean(c.C), inv(c.C), var(c.C), y(n);
    cpu::batchnorm_forward_train(Level::portable, c.N, c.C, c.HW, x.data(), gamma.data(),
                                 beta.data(), 1e-3f, y.data(), mean.data(), inv.data(), var.data());
    Dev<float> gmean(mean), gvar(var), gy(n);
    for (bool unbiased : {true, false}) {
      cpu::batchnorm_update_running(c.C, c.N * c.HW, 0.1f, mean.data(), var.data(), rm.data(),
                                    rv.data(), unbiased);
      cuda::batchnorm_update_running(c.C, c.N * c.HW, 0.1f, gmean.get(), gvar.get(), grm.get(),
                                     grv.get(), unbiased, stream);
      EXPECT_TRUE(same_bits(rm, grm.host())) << "running mean";
      EXPECT_TRUE(same_bits(rv, grv.host())) << "running var";
    }
    {  // Keras 2.2.2's debiased moving statistics, three steps (the step count on the device)
      Vec bm(c.C, 0.0f), bv(c.C, 0.0f), steps = {0.0f};
      Dev<float> gbm(bm), gbv(bv), gsteps(steps);
      for (int t = 0; t < 3; ++t) {
        cpu::batchnorm_update_running_keras(c.C, c.N * c.HW, 0.01f, 1e-3f, mean.data(), var.data(),
                                            bm.data(), bv.data(), steps.data(), rm.data(),
                                            rv.data());
        cuda::batchnorm_update_running_keras(c.C, c.N * c.HW, 0.01f, 1e-3f, gmean.get(), gvar.get(),
                                             gbm.get(), gbv.get(), gsteps.get(), grm.get(),
                                             grv.get(), stream);
      }
      EXPECT_TRUE(same_bits(rm, grm.host())) << "keras moving mean";
      EXPECT_TRUE(same_bits(rv, grv.host())) << "keras moving var";
      EXPECT_TRUE(same_bits(steps, gsteps.host())) << "keras steps";
    }
    cpu::batchnorm_forward_eval(c.N, c.C, c.HW, x.data(), gamma.data(), beta.data(), rm.data(),
                                rv.data(), 1e-3f, y.data());
    cuda::batchnorm_forward_eval(c.N, c.C, c.HW, gx.get(), ggamma.get(), gbeta.get(), grm.get(),
                                 grv.get(), 1e-3f, gy.get(), stream);
    EXPECT_TRUE(same_bits(y, gy.host())) << "eval forward";
  }
}

// ---------------------------------------------------------------- softmax and losses

TEST_F(Gpu, SoftmaxAndCrossEntropyEqualCpu) {
  for (auto [N, K] : std::initializer_list<std::pair<i64, i64>>{{37, 300}, {1000, 10}, {3, 1}}) {
    SCOPED_TRACE(::testing::Message() << "N " << N << " K " << K);
    const Vec logits = random_vec(N * K, 800, -8.0f, 8.0f);
    std::vector<std::int32_t> labels(N);
    for (i64 i = 0; i < N; ++i) labels[i] = static_cast<std::int32_t>((i * 7) % K);
    Dev<float> glogits(logits), gprobs(N * K), gloss(N), gd(N * K);
    Dev<std::int32_t> glabels(labels);
    Vec probs(N * K), loss(N), d(N * K);
    cpu::softmax_forward(N, K, logits.data(), probs.data());
    cuda::softmax_forward(N, K, glogits.get(), gprobs.get(), stream);
    EXPECT_TRUE(same_bits(probs, gprobs.host())) << "softmax";
    const float mean = cpu::softmax_cross_entropy(Level::portable, N, K, logits.data(),
                                                  labels.data(), loss.data(), d.data());
    EXPECT_TRUE(same_bits(
        mean, cuda::softmax_cross_entropy(Level::portable, N, K, glogits.get(), glabels.get(),
                                          gloss.get(), gd.get(), CrossEntropyForm::exact, stream)));
    EXPECT_TRUE(same_bits(loss, gloss.host())) << "loss per sample";
    EXPECT_TRUE(same_bits(d, gd.host())) << "dlogits";
    EXPECT_TRUE(same_bits(
        mean, cuda::softmax_cross_entropy(Level::portable, N, K, glogits.get(), glabels.get(),
                                          nullptr, nullptr, CrossEntropyForm::exact, stream)));
    EXPECT_NEAR(mean,
                cuda::softmax_cross_entropy(Level::fast, N, K, glogits.get(), glabels.get(),
                                            nullptr, nullptr, CrossEntropyForm::exact, stream),
                1e-5);
    // Keras's clipped form (kernels/common/cross_entropy.h), with rows pushed outside the clip.
    Vec kx = logits;
    for (i64 i = 0; i < N; i += 3) kx[i * K + labels[i]] -= 40.0f;
    Dev<float> gkx(kx);
    const float kmean =
        cpu::softmax_cross_entropy(Level::portable, N, K, kx.data(), labels.data(), loss.data(),
                                   d.data(), CrossEntropyForm::keras_clipped);
    EXPECT_TRUE(same_bits(kmean, cuda::softmax_cross_entropy(
                                     Level::portable, N, K, gkx.get(), glabels.get(), gloss.get(),
                                     gd.get(), CrossEntropyForm::keras_clipped, stream)));
    EXPECT_TRUE(same_bits(loss, gloss.host())) << "keras loss per sample";
    EXPECT_TRUE(same_bits(d, gd.host())) << "keras dlogits";
  }
  std::vector<std::int32_t> bad = {0, 1, 5, 2};
  Dev<std::int32_t> gbad(bad);
  Dev<float> glogits(random_vec(4 * 3, 801));
  try {
    cuda::softmax_cross_entropy(Level::portable, 4, 3, glogits.get(), gbad.get(), nullptr, nullptr,
                                CrossEntropyForm::exact, stream);
    FAIL() << "no exception for label 5 with K = 3";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("sample 2 has label 5"), std::string::npos) << e.what();
  }
}

TEST_F(Gpu, BinaryCrossEntropyMseAndPenaltiesEqualCpu) {
  const i64 n = 5003;
  const Vec logits = random_vec(n, 900, -20.0f, 20.0f), target = random_vec(n, 901, 0.0f, 1.0f);
  Vec probs = random_vec(n, 902, 0.0f, 1.0f);
  probs[0] = 0.0f;  // outside [eps, 1 - eps]: clamped, zero gradient
  probs[1] = 1.0f;
  Dev<float> gtarget(target), gloss(n), gd(n);
  for (bool from_logits : {true, false}) {
    SCOPED_TRACE(from_logits ? "from logits" : "from probabilities");
    const Vec& in = from_logits ? logits : probs;
    Dev<float> gin(in);
    Vec loss(n), d(n);
    const float mean = cpu::binary_cross_entropy(Level::portable, n, in.data(), target.data(),
                                                 from_logits, loss.data(), d.data());
    EXPECT_TRUE(
        same_bits(mean, cuda::binary_cross_entropy(Level::portable, n, gin.get(), gtarget.get(),
                                                   from_logits, gloss.get(), gd.get(), stream)));
    EXPECT_TRUE(same_bits(loss, gloss.host()));
    EXPECT_TRUE(same_bits(d, gd.host()));
    EXPECT_NEAR(mean,
                cuda::binary_cross_entropy(Level::fast, n, gin.get(), gtarget.get(), from_logits,
                                           nullptr, nullptr, stream),
                1e-5);
  }
  {
    Vec loss(n), d(n);
    Dev<float> gpred(logits);
    const float mean = cpu::mean_squared_error(Level::portable, n, logits.data(), target.data(),
                                               loss.data(), d.data());
    EXPECT_TRUE(
        same_bits(mean, cuda::mean_squared_error(Level::portable, n, gpred.get(), gtarget.get(),
                                                 gloss.get(), gd.get(), stream)));
    EXPECT_TRUE(same_bits(loss, gloss.host()));
    EXPECT_TRUE(same_bits(d, gd.host()));
    EXPECT_TRUE(same_bits(mean, cuda::mean_squared_error(Level::portable, n, gpred.get(),
                                                         gtarget.get(), nullptr, nullptr, stream)));
  }
  const i64 m = 70001;
  Vec w = random_vec(m, 903), g = random_vec(m, 904);
  w[0] = 0.0f;
  w[1] = -0.0f;
  Dev<float> gw(w), gg(g);
  EXPECT_TRUE(same_bits(cpu::l1_penalty(Level::portable, m, w.data()),
                        cuda::l1_penalty(Level::portable, m, gw.get(), stream)));
  EXPECT_TRUE(same_bits(cpu::l2_penalty(Level::portable, m, w.data()),
                        cuda::l2_penalty(Level::portable, m, gw.get(), stream)));
  // `fast` adds the 274 chunk partials by atomics in arrival order. Every term is positive,
  // so against the float64 sum both results lie within (1 + 255 + 273) * 2^-24 of the total
  // (the square, the chain inside a chunk, the additions of the partials in any order),
  // whatever order the schedule gives the atomics.
  {
    double exact = 0.0;
    for (float v : w) exact += static_cast<double>(v) * v;
    const i64 chunks = (m + detdl::kChunkValues - 1) / detdl::kChunkValues;
    const double bound = static_cast<double>(1 + detdl::kChunkValues + chunks) * 0x1p-24 * exact;
    EXPECT_NEAR(cuda::l2_penalty(Level::fast, m, gw.get(), stream), exact, bound);
    EXPECT_NEAR(cpu::l2_penalty(Level::portable, m, w.data()), exact, bound);
  }
  cpu::l1_penalty_grad_add(m, w.data(), 0.01f, g.data());
  cpu::l2_penalty_grad_add(m, w.data(), 0.003f, g.data());
  cuda::l1_penalty_grad_add(m, gw.get(), 0.01f, gg.get(), stream);
  cuda::l2_penalty_grad_add(m, gw.get(), 0.003f, gg.get(), stream);
  EXPECT_TRUE(same_bits(g, gg.host()));
}

// ---------------------------------------------------------------- optimizers

// One optimizer run per step function, on the CPU and on the GPU from the same parameters p0
// and zeroed state, one step per gradient: the parameters and both states must end with the
// same bits. step(t, p, g, s1, s2) for t = 0, 1, ...
template <class CpuStep, class GpuStep>
void same_steps(const std::string& name, const Vec& p0, const std::vector<Vec>& grads,
                CpuStep cpu_step, GpuStep gpu_step) {
  SCOPED_TRACE(name);
  const i64 n = static_cast<i64>(p0.size());
  Vec p = p0, s1(n, 0.0f), s2(n, 0.0f);
  Dev<float> gp(p), gs1(s1), gs2(s2);
  for (int t = 0; t < static_cast<int>(grads.size()); ++t) {
    Dev<float> gg(grads[t]);
    cpu_step(t, p.data(), grads[t].data(), s1.data(), s2.data());
    gpu_step(t, gp.get(), gg.get(), gs1.get(), gs2.get());
  }
  EXPECT_TRUE(same_bits(p, gp.host())) << "parameters";
  EXPECT_TRUE(same_bits(s1, gs1.host())) << "state 1";
  EXPECT_TRUE(same_bits(s2, gs2.host())) << "state 2";
}

TEST_F(Gpu, OptimizerUpdatesEqualCpuOverSeveralSteps) {
  const i64 n = 1001;
  const Vec p0 = random_vec(n, 1000);
  std::vector<Vec> grads;
  for (int t = 0; t < 3; ++t) grads.push_back(random_vec(n, 1001 + t));
  auto run = [&](const std::string& name, auto cpu_step, auto gpu_step) {
    same_steps(name, p0, grads, cpu_step, gpu_step);
  };
  for (bool keras : {false, true})
    for (bool nesterov : {false, true}) {
      auto params = [&](int t) {
        return detdl::SgdParams{0.05f, 0.9f, 1e-4f, nesterov, t == 0, keras};
      };
      run(
          keras ? "sgd keras" : "sgd torch",
          [&](int t, float* p, const float* g, float* b, float*) {
            cpu::sgd_update(n, p, g, b, params(t));
          },
          [&](int t, float* p, const float* g, float* b, float*) {
            cuda::sgd_update(n, p, g, b, params(t), stream);
          });
    }
  for (bool keras : {false, true})
    for (bool decoupled : {false, true}) {
      auto params = [&](int t) {
        const auto [bc1, bc2] = cpu::adam_bias_corrections(0.9f, 0.999f, t + 1);
        return detdl::AdamParams{1e-3f, 0.9f, 0.999f, 1e-7f, bc1, bc2, 0.01f, decoupled, keras};
      };
      run(
          keras ? "adam keras" : "adam torch",
          [&](int t, float* p, const float* g, float* m, float* v) {
            cpu::adam_update(n, p, g, m, v, params(t));
          },
          [&](int t, float* p, const float* g, float* m, float* v) {
            cuda::adam_update(n, p, g, m, v, params(t), stream);
          });
    }
  for (bool keras : {false, true})
    for (float momentum : {0.0f, 0.8f}) {
      const detdl::RmspropParams r{1e-2f, 0.9f, 1e-7f, momentum, 1e-4f, keras};
      run(
          keras ? "rmsprop keras" : "rmsprop torch",
          [&](int, float* p, const float* g, float* v, float* b) {
            cpu::rmsprop_update(n, p, g, v, b, r);
          },
          [&](int, float* p, const float* g, float* v, float* b) {
            cuda::rmsprop_update(n, p, g, v, b, r, stream);
          });
    }
}

// ---------------------------------------------------------------- `emulated` variants
// The families the CUDA backend emulates (contraction, math, optimizer, loss): every
// choice the CPU's emulated kernels take, each alone and together, bit for bit.

TEST_F(Gpu, EmulatedActivationsEqualCpu) {
  const i64 n = 4099;
  const Vec x = random_vec(n, 1200, -6.0f, 6.0f), dy = random_vec(n, 1201);
  Dev<float> gx(x), gdy(dy), gy(n), gdx(n);
  for (int k = 0; k < detdl::kActivationCount; ++k)
    for (bool alt : {false, true})
      for (std::uint32_t fuse : {0u, 1u << detdl::kActSiteTanhGrad}) {
        const auto a = static_cast<detdl::Activation>(k);
        SCOPED_TRACE(::testing::Message()
                     << detdl::activation_name(a) << " alt " << alt << " fuse " << fuse);
        detdl::ActImpl impl;
        impl.alt_math = alt;
        impl.fuse = fuse;
        Vec y(n), dx(n);
        cpu::activation_forward(a, 0.3f, x.data(), y.data(), n, impl);
        cpu::activation_backward(a, 0.3f, x.data(), y.data(), dy.data(), dx.data(), n, impl);
        cuda::activation_forward(a, 0.3f, gx.get(), gy.get(), n, impl, stream);
        EXPECT_TRUE(same_bits(y, gy.host())) << "forward";
        Dev<float> gyc(y);  // the CPU's y, so the backward's inputs are the same
        cuda::activation_backward(a, 0.3f, gx.get(), gyc.get(), gdy.get(), gdx.get(), n, impl,
                                  stream);
        EXPECT_TRUE(same_bits(dx, gdx.host())) << "backward";
      }
}

TEST_F(Gpu, EmulatedBatchNormContractionsEqualCpu) {
  const i64 N = 6, C = 5, HW = 37, n = N * C * HW;
  const Vec x = random_vec(n, 1210, -2.0f, 3.0f), dy = random_vec(n, 1211);
  const Vec gamma = random_vec(C, 1212, 0.5f, 1.5f), beta = random_vec(C, 1213);
  const Vec rm = random_vec(C, 1214), rv = random_vec(C, 1215, 0.5f, 2.0f);
  Dev<float> gx(x), gdy(dy), ggamma(gamma), gbeta(beta), grm(rm), grv(rv);
  for (int bitsel = 0; bitsel < 8; ++bitsel) {
    SCOPED_TRACE(::testing::Message() << "fma bits " << bitsel);
    const detdl::BatchnormFma fma{(bitsel & 1) != 0, (bitsel & 2) != 0, (bitsel & 4) != 0};
    cpu::BatchnormImpl impl;
    impl.fma_affine = fma.affine, impl.fma_count_dy = fma.count_dy;
    impl.fma_xhat_dgamma = fma.xhat_dgamma;
    Vec y(n), mean(C), inv(C), var(C), dx(n), dg(C), db(C), ye(n);
    cpu::batchnorm_forward_train(impl, N, C, HW, x.data(), gamma.data(), beta.data(), 1e-5f,
                                 y.data(), mean.data(), inv.data(), var.data());
    cpu::batchnorm_backward(impl, N, C, HW, x.data(), dy.data(), gamma.data(), mean.data(),
                            inv.data(), dx.data(), dg.data(), db.data());
    cpu::batchnorm_forward_eval(impl, N, C, HW, x.data(), gamma.data(), beta.data(), rm.data(),
                                rv.data(), 1e-3f, ye.data());
    Dev<float> gy(n), gmean(C), ginv(C), gvar(C), gdx(n), gdg(C), gdb(C), gye(n);
    cuda::batchnorm_forward_train(Level::portable, N, C, HW, gx.get(), ggamma.get(), gbeta.get(),
                                  1e-5f, gy.get(), gmean.get(), ginv.get(), gvar.get(), fma,
                                  stream);
    cuda::batchnorm_backward(Level::portable, N, C, HW, gx.get(), gdy.get(), ggamma.get(),
                             gmean.get(), ginv.get(), gdx.get(), gdg.get(), gdb.get(), fma, stream);
    cuda::batchnorm_forward_eval(N, C, HW, gx.get(), ggamma.get(), gbeta.get(), grm.get(),
                                 grv.get(), 1e-3f, gye.get(), fma, stream);
    EXPECT_TRUE(same_bits(y, gy.host())) << "y";
    EXPECT_TRUE(same_bits(dx, gdx.host())) << "dx";
    EXPECT_TRUE(same_bits(dg, gdg.host())) << "dgamma";
    EXPECT_TRUE(same_bits(db, gdb.host())) << "dbeta";
    EXPECT_TRUE(same_bits(ye, gye.host())) << "eval y";
  }
}

TEST_F(Gpu, EmulatedLossFormsEqualCpu) {
  const i64 N = 41, K = 13;
  const Vec logits = random_vec(N * K, 1220, -8.0f, 8.0f);
  Vec big = logits;  // rows beyond the fast softmax's guard take the max anyway
  for (i64 i = 0; i < N; i += 4) big[i * K] = 95.0f;
  std::vector<std::int32_t> labels(N);
  for (i64 i = 0; i < N; ++i) labels[i] = static_cast<std::int32_t>((i * 5) % K);
  const i64 n = 3001;
  const Vec in = random_vec(n, 1221, -20.0f, 20.0f), target = random_vec(n, 1222, 0.0f, 1.0f);
  const Vec probs = random_vec(n, 1223, 0.0f, 1.0f);
  Dev<std::int32_t> glabels(labels);
  Dev<float> gtarget(target), gp(N * K), gl(N), gd(N * K), gle(n), gde(n);
  // Each choice alone, then all of them.
  for (int which = 0; which <= 7; ++which) {
    SCOPED_TRACE(::testing::Message() << "choice " << which);
    cpu::LossImpl impl;
    impl.subtract_max = which != 0 && which != 7 ? true : false;
    impl.log_of_softmax = which == 1 || which == 7;
    impl.reciprocal_mean = which == 2 || which == 7;
    impl.log_softmax_grad = which == 3 || which == 7;
    impl.alt_exp = which == 4 || which == 7;
    impl.alt_log = which == 5 || which == 7;
    impl.alt_log1p = which == 6 || which == 7;
    const detdl::LossForm f{impl.subtract_max,     impl.log_of_softmax, impl.reciprocal_mean,
                            impl.log_softmax_grad, impl.alt_exp,        impl.alt_log,
                            impl.alt_log1p};
    for (const Vec* lx : std::initializer_list<const Vec*>{&logits, &big}) {
      Dev<float> glx(*lx);
      Vec p(N * K);
      cpu::softmax_forward(impl, N, K, lx->data(), p.data());
      cuda::softmax_forward(N, K, glx.get(), gp.get(), f, stream);
      EXPECT_TRUE(same_bits(p, gp.host())) << "softmax";
      for (auto form : {CrossEntropyForm::exact, CrossEntropyForm::keras_clipped}) {
        Vec l(N), d(N * K);
        const float m = cpu::softmax_cross_entropy(impl, N, K, lx->data(), labels.data(), l.data(),
                                                   d.data(), form);
        EXPECT_TRUE(same_bits(
            m, cuda::softmax_cross_entropy(Level::portable, N, K, glx.get(), glabels.get(),
                                           gl.get(), gd.get(), form, f, stream)))
            << "cross-entropy mean";
        EXPECT_TRUE(same_bits(l, gl.host())) << "cross-entropy per sample";
        EXPECT_TRUE(same_bits(d, gd.host())) << "cross-entropy gradient";
      }
    }
    for (bool from_logits : {true, false}) {
      const Vec& v = from_logits ? in : probs;
      Dev<float> gv(v);
      Vec l(n), d(n);
      const float m = cpu::binary_cross_entropy(impl, n, v.data(), target.data(), from_logits,
                                                l.data(), d.data());
      EXPECT_TRUE(
          same_bits(m, cuda::binary_cross_entropy(Level::portable, n, gv.get(), gtarget.get(),
                                                  from_logits, gle.get(), gde.get(), f, stream)))
          << "bce mean";
      EXPECT_TRUE(same_bits(l, gle.host())) << "bce per element";
      EXPECT_TRUE(same_bits(d, gde.host())) << "bce gradient";
    }
    Dev<float> gin(in);
    Vec l(n), d(n);
    const float m = cpu::mean_squared_error(impl, n, in.data(), target.data(), l.data(), d.data());
    EXPECT_TRUE(same_bits(m, cuda::mean_squared_error(Level::portable, n, gin.get(), gtarget.get(),
                                                      gle.get(), gde.get(), f, stream)))
        << "mse mean";
    EXPECT_TRUE(same_bits(d, gde.host())) << "mse gradient";
  }
}

// The reduce family's shapes (kernels/common/reduce_shape.h): every CUDA value reduction in
// each shape gives the CPU's shaped sums bit for bit: dense bias gradients (column sums), a
// flat sum, the convolution bias gradient, global average pooling, batch norm's four channel
// sums (sums 0 and 1 of each call: block_atomic's arrival orders differ), the loss mean and
// the penalties. Sizes cross one block of 256 and one of 1024 terms (grid-stride rounds), so
// block_atomic lands several blocks; one column is all -0.0f (the chains start at +0.0f).
TEST_F(Gpu, EmulatedReduceShapesEqualCpu) {
  const detdl::ImplDraw d{31, detdl::ImplFamily::reduce, 2, 5};
  const i64 rows = 2600, cols = 7, n = 5000;
  Vec cx = random_vec(rows * cols, 1250);
  for (i64 i = 0; i < rows; ++i) cx[i * cols + 3] = -0.0f;
  const Vec flat = random_vec(n, 1251, -2.0f, 3.0f);
  const detdl::Conv2dShape cs = detdl::conv2d_shape(3, 2, 23, 23, 4, 3, 3, 1, 0);  // 3 x 441
  const Vec dy = random_vec(cs.N * cs.O * cs.OH * cs.OW, 1252);
  const i64 PN = 2, PC = 3, HW = 1300;  // global pooling: 6 planes of 1300
  const Vec planes = random_vec(PN * PC * HW, 1253);
  const i64 BN = 6, BC = 5, BHW = 237;  // batch norm: 1422 terms per channel
  const Vec bx = random_vec(BN * BC * BHW, 1254, -2.0f, 3.0f),
            bdy = random_vec(BN * BC * BHW, 1255);
  const Vec gamma = random_vec(BC, 1256, 0.5f, 1.5f), beta = random_vec(BC, 1257);
  const i64 LN = 700, LK = 9;  // the loss mean over 700 samples
  const Vec logits = random_vec(LN * LK, 1258, -4.0f, 4.0f);
  std::vector<std::int32_t> labels(LN);
  for (i64 i = 0; i < LN; ++i) labels[i] = static_cast<std::int32_t>((i * 7) % LK);
  Dev<float> gcx(cx), gflat(flat), gdy(dy), gplanes(planes), gbx(bx), gbdy(bdy), ggamma(gamma),
      gbeta(beta), glogits(logits);
  Dev<std::int32_t> glabels(labels);
  int differs = 0;  // shapes whose flat sum differs from the canonical one (not inert)
  const float canonical = cpu::shaped_sum(detdl::ReduceShape::canonical, d, n, flat.data());
  for (int si = 0; si < detdl::kReduceShapeCount; ++si) {
    const auto shape = static_cast<detdl::ReduceShape>(si);
    SCOPED_TRACE(::testing::Message() << "shape " << si);
    detdl::SumOrder order(Level::portable, d);
    order.shape = shape;
    // Column sums and a flat sum.
    Vec cb(cols);
    cpu::shaped_column_sums(shape, d, rows, cols, cx.data(), cb.data());
    Dev<float> gcb(cols);
    cuda::column_sums(order, rows, cols, gcx.get(), gcb.get(), stream);
    EXPECT_TRUE(same_bits(cb, gcb.host())) << "column sums";
    const float sum = cpu::shaped_sum(shape, d, n, flat.data());
    EXPECT_TRUE(same_bits(sum, cuda::sum_all(order, n, gflat.get(), stream))) << "flat sum";
    differs += bits(sum) != bits(canonical);
    // The convolution bias gradient: dy (N, O, OH*OW) -> (O).
    Vec db(cs.O);
    cpu::shaped_plane_sums(shape, d, cs.N, cs.O, cs.OH * cs.OW, dy.data(), db.data());
    Dev<float> gdb(cs.O);
    cuda::conv2d_backward_bias(order, cs, gdy.get(), gdb.get(), stream);
    EXPECT_TRUE(same_bits(db, gdb.host())) << "conv bias gradient";
    // Global average pooling.
    Vec py(PN * PC);
    cpu::global_avgpool_forward(shape, d, PN, PC, HW, planes.data(), py.data());
    Dev<float> gpy(PN * PC);
    cuda::global_avgpool_forward(order, PN, PC, HW, gplanes.get(), gpy.get(), stream);
    EXPECT_TRUE(same_bits(py, gpy.host())) << "global average pooling";
    // Batch norm's statistics and their gradients (and everything computed from them).
    cpu::BatchnormImpl bi;
    bi.reduce = shape;
    bi.reduce_draw = d;
    const i64 bn = BN * BC * BHW;
    Vec y(bn), mean(BC), inv(BC), var(BC), dx(bn), dg(BC), dbeta(BC);
    cpu::batchnorm_forward_train(bi, BN, BC, BHW, bx.data(), gamma.data(), beta.data(), 1e-5f,
                                 y.data(), mean.data(), inv.data(), var.data());
    cpu::batchnorm_backward(bi, BN, BC, BHW, bx.data(), bdy.data(), gamma.data(), mean.data(),
                            inv.data(), dx.data(), dg.data(), dbeta.data());
    Dev<float> gy(bn), gmean(BC), ginv(BC), gvar(BC), gdx(bn), gdg(BC), gdbeta(BC);
    cuda::batchnorm_forward_train(order, BN, BC, BHW, gbx.get(), ggamma.get(), gbeta.get(), 1e-5f,
                                  gy.get(), gmean.get(), ginv.get(), gvar.get(), {}, stream);
    cuda::batchnorm_backward(order, BN, BC, BHW, gbx.get(), gbdy.get(), ggamma.get(), gmean.get(),
                             ginv.get(), gdx.get(), gdg.get(), gdbeta.get(), {}, stream);
    EXPECT_TRUE(same_bits(mean, gmean.host())) << "batch mean";
    EXPECT_TRUE(same_bits(var, gvar.host())) << "batch variance";
    EXPECT_TRUE(same_bits(y, gy.host())) << "y";
    EXPECT_TRUE(same_bits(dbeta, gdbeta.host())) << "dbeta";
    EXPECT_TRUE(same_bits(dg, gdg.host())) << "dgamma";
    EXPECT_TRUE(same_bits(dx, gdx.host())) << "dx";
    // The loss mean and the penalties.
    cpu::LossImpl li;
    li.reduce = shape;
    li.reduce_draw = d;
    const float loss =
        cpu::softmax_cross_entropy(li, LN, LK, logits.data(), labels.data(), nullptr, nullptr);
    EXPECT_TRUE(same_bits(
        loss, cuda::softmax_cross_entropy(order, LN, LK, glogits.get(), glabels.get(), nullptr,
                                          nullptr, CrossEntropyForm::exact, {}, stream)))
        << "loss mean";
    EXPECT_TRUE(same_bits(cpu::l1_penalty(li, n, flat.data()),
                          cuda::l1_penalty(order, n, gflat.get(), stream)))
        << "l1 penalty";
    EXPECT_TRUE(same_bits(cpu::l2_penalty(li, n, flat.data()),
                          cuda::l2_penalty(order, n, gflat.get(), stream)))
        << "l2 penalty";
  }
  EXPECT_GE(differs, 2);
}

// The matmul family's split-K plans (kernels/common/split_k_plan.h): the CUDA GEMM with a
// plan gives the CPU's emulated_sgemm bit for bit, for every split factor and both
// combines, with the four transpose layouts, padded leading dimensions and slices of
// unequal length (K = 203 is no multiple of 3, 8 or 16); a reversed arrival order too.
TEST_F(Gpu, EmulatedGemmPlansEqualCpu) {
  const i64 M = 37, N = 70, K = 203;
  int differs = 0;  // plans whose C differs from the one-chain plan's (not inert)
  for (int layout = 0; layout < 4; ++layout) {
    const bool ta = (layout & 1) != 0, tb = (layout & 2) != 0;
    const i64 lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
    const Vec A = random_vec((ta ? K : M) * lda, 1260 + layout);
    const Vec B = random_vec((tb ? N : K) * ldb, 1270 + layout);
    Dev<float> gA(A), gB(B);
    Vec one(M * ldc, 0.0f);
    for (int f = 0; f < cpu::kSplitFactorCount; ++f)
      for (const auto combine : {cpu::SplitCombine::arrival, cpu::SplitCombine::tree}) {
        const int split = cpu::kSplitFactors[f];
        std::vector<std::int32_t> order(static_cast<std::size_t>(std::min<i64>(split, K)));
        for (std::size_t j = 0; j < order.size(); ++j)
          order[j] = static_cast<std::int32_t>(order.size() - 1 - j);
        const cpu::EmulatedGemmPlan plan = cpu::split_k_plan(K, split, combine, order);
        SCOPED_TRACE(::testing::Message() << "layout " << layout << " split " << split << " tree "
                                          << (combine == cpu::SplitCombine::tree));
        Vec C(M * ldc, 0.0f);
        cpu::emulated_sgemm(plan, ta, tb, M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc);
        Dev<float> gC(C);  // the padding columns keep their values: compared too
        cuda::sgemm(plan, ta, tb, M, N, K, gA.get(), lda, gB.get(), ldb, gC.get(), ldc, stream);
        EXPECT_TRUE(same_bits(C, gC.host()));
        if (split == 1) one = C;
        differs += std::memcmp(C.data(), one.data(), C.size() * sizeof(float)) != 0;
      }
  }
  EXPECT_GE(differs, 20);
}

// The conv family's orders (kernels/common/conv_plan.h) on the CUDA convolution give the
// CPU's emulated_conv.h bits: every forward algorithm (with and without bias; per-tap also
// in panels under a small scratch budget), the data gradient with split plans over o,
// col2im tap orders and both, the weight gradient with every batch grouping and both
// combines. Shapes: 3x3 pad 1, 5x5 stride 2 (taps that miss pixels), 1x1 (one tap).
TEST_F(Gpu, EmulatedConvOrdersEqualCpu) {
  const std::vector<detdl::Conv2dShape> shapes = {detdl::conv2d_shape(3, 5, 13, 13, 7, 3, 3, 1, 1),
                                                  detdl::conv2d_shape(5, 3, 11, 11, 6, 5, 5, 2, 2),
                                                  detdl::conv2d_shape(2, 4, 5, 5, 3, 1, 1, 1, 0)};
  int differs = 0;  // alternatives whose result differs from the canonical one (not inert)
  for (std::size_t si = 0; si < shapes.size(); ++si) {
    const detdl::Conv2dShape& cs = shapes[si];
    SCOPED_TRACE(::testing::Message() << "shape " << si);
    const i64 T = cs.KH * cs.KW, xn = cs.N * cs.C * cs.H * cs.W, wn = cs.O * cs.C * T,
              yn = cs.N * cs.O * cs.OH * cs.OW;
    const Vec x = random_vec(xn, 1300 + si), w = random_vec(wn, 1310 + si),
              b = random_vec(cs.O, 1320 + si), dy = random_vec(yn, 1330 + si);
    Dev<float> gx(x), gw(w), gb(b), gdy(dy);
    // Forward.
    Vec canonical(yn);
    cpu::conv2d_forward(Level::portable, cs, x.data(), w.data(), b.data(), canonical.data());
    for (int algo = 0; algo < cpu::kConvAlgoCount; ++algo)
      for (const i64 budget : {i64{64} << 20, i64{300}})
        for (const bool bias : {true, false}) {
          SCOPED_TRACE(::testing::Message()
                       << "forward algo " << algo << " budget " << budget << " bias " << bias);
          const auto a = static_cast<cpu::ConvAlgo>(algo);
          Vec y(yn);
          cpu::emulated_conv2d_forward(a, cs, x.data(), w.data(), bias ? b.data() : nullptr,
                                       y.data());
          Dev<float> gy(yn);
          const i64 saved = cuda::conv_scratch_budget();
          cuda::set_conv_scratch_budget(budget);
          cuda::conv2d_forward(a, cs, gx.get(), gw.get(), bias ? gb.get() : nullptr, gy.get(),
                               stream);
          const Vec got = gy.host();
          cuda::set_conv_scratch_budget(saved);
          EXPECT_TRUE(same_bits(y, got));
          differs += bias && std::memcmp(y.data(), canonical.data(), yn * sizeof(float)) != 0;
        }
    // Data gradient: plans over o, tap orders, both.
    std::vector<std::int32_t> reversed(static_cast<std::size_t>(T));
    for (i64 t = 0; t < T; ++t) reversed[t] = static_cast<std::int32_t>(T - 1 - t);
    for (const int split : {0, 1, 2, 3, 16})
      for (const auto combine : {cpu::SplitCombine::arrival, cpu::SplitCombine::tree})
        for (const bool taps : {false, true}) {
          if (split == 0 && (!taps || combine == cpu::SplitCombine::tree)) continue;
          SCOPED_TRACE(::testing::Message()
                       << "data split " << split << " tree " << (combine == cpu::SplitCombine::tree)
                       << " taps " << taps);
          std::vector<std::int32_t> order(static_cast<std::size_t>(std::min<i64>(split, cs.O)));
          for (std::size_t j = 0; j < order.size(); ++j)
            order[j] = static_cast<std::int32_t>((j * 5 + 1) % order.size());
          const cpu::EmulatedGemmPlan plan =
              split ? cpu::split_k_plan(cs.O, split, combine, order) : cpu::EmulatedGemmPlan{};
          const cpu::EmulatedGemmPlan* pp = split ? &plan : nullptr;
          const std::int32_t* tp = taps ? reversed.data() : nullptr;
          Vec dx(xn);
          cpu::emulated_conv2d_backward_data(cs, pp, tp, dy.data(), w.data(), dx.data());
          Dev<float> gdx(xn);
          cuda::conv2d_backward_data(pp, tp, cs, gdy.get(), gw.get(), gdx.get(), stream);
          EXPECT_TRUE(same_bits(dx, gdx.host()));
        }
    // Weight gradient: groups of samples, both combines, a non-identity arrival order.
    for (const int groups : {1, 2, 4, 8})
      for (const auto combine : {cpu::SplitCombine::arrival, cpu::SplitCombine::tree}) {
        SCOPED_TRACE(::testing::Message() << "weight groups " << groups << " tree "
                                          << (combine == cpu::SplitCombine::tree));
        const i64 g = std::min<i64>(groups, cs.N);
        std::vector<std::int32_t> order(static_cast<std::size_t>(g));
        for (i64 j = 0; j < g; ++j) order[j] = static_cast<std::int32_t>(g - 1 - j);
        const cpu::WeightGradPlan plan = cpu::weight_grad_plan(cs, groups, combine, order);
        Vec dw(wn);
        cpu::emulated_conv2d_backward_weight(plan, cs, x.data(), dy.data(), dw.data());
        Dev<float> gdw(wn);
        cuda::conv2d_backward_weight(plan, cs, gx.get(), gdy.get(), gdw.get(), stream);
        EXPECT_TRUE(same_bits(dw, gdw.host()));
      }
  }
  EXPECT_GE(differs, 2);
}

// The scatter family on pooling backward (kernels/common/pool_scatter.h): overlapping 3x3 /
// stride 2 windows, max and average (both count rules), each dx pixel adding its outputs in
// the drawn arrival order, give the CPU's scatter in that order; canonical too.
TEST_F(Gpu, EmulatedPoolScatterEqualCpu) {
  const detdl::Pool2dShape ps = detdl::pool2d_shape(2, 3, 9, 9, 3, 3, 2, 1);
  const i64 xn = ps.N * ps.C * ps.H * ps.W, yn = ps.N * ps.C * ps.OH * ps.OW;
  Vec x = random_vec(xn, 1340);
  const Vec dy = random_vec(yn, 1341);
  // Peaks at odd (row, col) pixels 4 apart: each is the maximum of the 4 windows that hold
  // it, so its gradient adds 4 contributions and their order shows.
  for (i64 p = 0; p < ps.N * ps.C; ++p)
    for (i64 i = 1; i < ps.H; i += 4)
      for (i64 j = 1; j < ps.W; j += 4)
        x[(p * ps.H + i) * ps.W + j] = 10.0f + static_cast<float>(p);
  Vec y(yn);
  std::vector<std::int32_t> argmax(yn);
  cpu::maxpool2d_forward(ps, x.data(), y.data(), argmax.data());
  Dev<float> gdy(dy);
  Dev<std::int32_t> gargmax(argmax);
  int differs = 0;
  for (std::uint32_t step = 0; step < 3; ++step)
    for (const auto order : {cpu::ScatterOrder::canonical, cpu::ScatterOrder::arrival}) {
      SCOPED_TRACE(::testing::Message()
                   << "step " << step << " arrival " << (order == cpu::ScatterOrder::arrival));
      const detdl::ImplDraw d{41, detdl::ImplFamily::scatter, 1, step};
      Vec dx(xn), canonical(xn);
      cpu::maxpool2d_backward(order, d, ps, dy.data(), argmax.data(), dx.data());
      cpu::maxpool2d_backward(ps, dy.data(), argmax.data(), canonical.data());
      Dev<float> gdx(xn);
      cuda::maxpool2d_backward(order, d, ps, gdy.get(), gargmax.get(), gdx.get(), stream);
      EXPECT_TRUE(same_bits(dx, gdx.host())) << "max";
      differs += std::memcmp(dx.data(), canonical.data(), xn * sizeof(float)) != 0;
      for (const bool include_pad : {false, true}) {
        Vec adx(xn);
        cpu::avgpool2d_backward(order, d, ps, include_pad, dy.data(), adx.data());
        Dev<float> gadx(xn);
        cuda::avgpool2d_backward(order, d, ps, include_pad, gdy.get(), gadx.get(), stream);
        EXPECT_TRUE(same_bits(adx, gadx.host())) << "avg, count_include_pad " << include_pad;
        Vec acanonical(xn);
        cpu::avgpool2d_backward(ps, include_pad, dy.data(), acanonical.data());
        differs += std::memcmp(adx.data(), acanonical.data(), xn * sizeof(float)) != 0;
      }
    }
  EXPECT_GE(differs, 6);  // max and both averages at each of the three steps
}

TEST_F(Gpu, EmulatedOptimizerVariantsEqualCpu) {
  const i64 n = 1001;
  const Vec p0 = random_vec(n, 1230);
  std::vector<Vec> grads;
  for (int t = 0; t < 3; ++t) grads.push_back(random_vec(n, 1231 + t));
  auto run = [&](const std::string& name, auto cpu_step, auto gpu_step) {
    same_steps(name, p0, grads, cpu_step, gpu_step);
  };
  for (std::uint32_t fuse : {0u, 0x15u, 0x2au, 0x3fu}) {
    const std::string f = " fuse " + std::to_string(fuse);
    for (bool keras : {false, true}) {
      auto params = [&](int t) {
        return detdl::SgdParams{0.05f, 0.9f, 1e-4f, true, t == 0, keras};
      };
      run((keras ? "sgd keras" : "sgd torch") + f,
          [&](int t, float* p, const float* g, float* b, float*) {
            cpu::sgd_update(n, p, g, b, params(t), fuse);
          },
          [&](int t, float* p, const float* g, float* b, float*) {
            cuda::sgd_update(n, p, g, b, params(t), fuse, stream);
          });
      const detdl::RmspropParams r{1e-2f, 0.9f, 1e-7f, 0.8f, 1e-4f, keras};
      run((keras ? "rmsprop keras" : "rmsprop torch") + f,
          [&](int, float* p, const float* g, float* v, float* b) {
            cpu::rmsprop_update(n, p, g, v, b, r, fuse);
          },
          [&](int, float* p, const float* g, float* v, float* b) {
            cuda::rmsprop_update(n, p, g, v, b, r, fuse, stream);
          });
    }
    for (auto form : {detdl::AdamForm::textbook, detdl::AdamForm::torch, detdl::AdamForm::keras})
      for (bool decoupled : {false, true}) {
        auto params = [&](int t) {
          const auto [bc1, bc2] = cpu::adam_bias_corrections(0.9f, 0.999f, t + 1);
          return detdl::AdamParams{1e-3f, 0.9f, 0.999f, 1e-7f, bc1, bc2, 0.01f, decoupled, false};
        };
        run(
            "adam form " + std::to_string(static_cast<int>(form)) + f,
            [&](int t, float* p, const float* g, float* m, float* v) {
              cpu::adam_update(n, p, g, m, v, params(t), form, fuse);
            },
            [&](int t, float* p, const float* g, float* m, float* v) {
              cuda::adam_update(n, p, g, m, v, params(t), form, fuse, stream);
            });
      }
  }
}

}  // namespace
