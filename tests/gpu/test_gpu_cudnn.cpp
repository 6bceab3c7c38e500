// The cuDNN wrappers (kernels/cuda/vendor_cudnn.h) against the CPU kernels (kernels/cpu/),
// the oracle. cuDNN's reduction orders are its own, so the comparison is within a rounding
// bound, not bit for bit: for a sum of n products of values in [-1, 1] both results are
// within n * u * sum|terms| <= n * n * u of the exact sum (u = 2^-24, recursive summation;
// any blocked order is no worse), so they differ by at most 2 * n * n * u (kTol below).
// Max pooling and non-overlapping windows are exact (bit equality). `repeatable` (the
// deterministic algorithms) must give the same bits twice.
// Every test that needs a device skips without one; built without cuDNN, the wrappers must
// throw "built without cuDNN" (checked without a device).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/common/philox.h"
#include "kernels/common/random.h"
#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/pool.h"
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/vendor_cudnn.h"

namespace {

using detdl::Level;
using i64 = std::int64_t;
using Vec = std::vector<float>;
namespace cpu = detdl::cpu;
namespace cuda =
    detdl::cuda;  // the kernel side; gpu:: is the engine's door (engine/cuda_backend.h)

bool has_gpu() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) cudaGetLastError();
  return status == cudaSuccess && count > 0;
}

Vec random_vec(i64 n, std::uint32_t sub, float lo = -1.0f, float hi = 1.0f) {
  Vec v(static_cast<std::size_t>(n));
  for (i64 i = 0; i < n; ++i)
    v[i] = detdl::philox_uniform_range(lo, hi, 2025, detdl::RandomStream::test, sub, i);
  return v;
}

// A device array owned by the test.
class Dev {
 public:
  explicit Dev(std::size_t n) : n_(n) {
    DETDL_CUDA_CHECK(cudaMalloc(&p_, std::max<std::size_t>(n, 1) * sizeof(float)));
  }
  explicit Dev(const Vec& host) : Dev(host.size()) {
    DETDL_CUDA_CHECK(cudaMemcpy(p_, host.data(), n_ * sizeof(float), cudaMemcpyHostToDevice));
  }
  ~Dev() { cudaFree(p_); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  float* get() const { return p_; }
  Vec host() const {
    DETDL_CUDA_CHECK(cudaDeviceSynchronize());
    Vec h(n_);
    DETDL_CUDA_CHECK(cudaMemcpy(h.data(), p_, n_ * sizeof(float), cudaMemcpyDeviceToHost));
    return h;
  }

 private:
  float* p_ = nullptr;
  std::size_t n_;
};

// The rounding bound of the file comment for sums of n terms of magnitude <= 1.
float kTol(i64 n) {
  return 2.0f * static_cast<float>(n) * static_cast<float>(n) * std::ldexp(1.0f, -24);
}

::testing::AssertionResult close(const Vec& ref, const Vec& got, float tol) {
  if (ref.size() != got.size())
    return ::testing::AssertionFailure() << "sizes " << ref.size() << " vs " << got.size();
  for (std::size_t i = 0; i < ref.size(); ++i)
    if (!(std::fabs(ref[i] - got[i]) <= tol))
      return ::testing::AssertionFailure()
             << "element " << i << ": cpu " << ref[i] << " cudnn " << got[i] << " tol " << tol;
  return ::testing::AssertionSuccess();
}

bool same_bits(const Vec& a, const Vec& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class Cudnn : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda::cudnn_available()) GTEST_SKIP() << "built without cuDNN";
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

TEST(CudnnShapes, AsymmetricPaddingIsNotSupported) {
  // Keras 'same', stride 2, H = 8, K = 3: pad_top 0, pad_bottom 1; cuDNN cannot pad 0 / 1.
  const auto same = detdl::conv2d_shape_same(1, 2, 8, 8, 3, 3, 3, 2);
  ASSERT_EQ(same.pad_top, 0);
  EXPECT_FALSE(cuda::cudnn_conv2d_supported(same));
  EXPECT_TRUE(cuda::cudnn_conv2d_supported(detdl::conv2d_shape(1, 2, 8, 8, 3, 3, 3, 2, 1)));
  EXPECT_TRUE(
      cuda::cudnn_conv2d_supported(detdl::conv2d_shape_same(1, 2, 8, 8, 3, 3, 3, 1)));  // pad 1 / 1
  EXPECT_FALSE(cuda::cudnn_pool2d_supported(detdl::pool2d_shape_same(1, 2, 8, 8, 3, 3, 2)));
  // Refused before any device work (no device needed): invalid_argument with cuDNN, the
  // "built without cuDNN" runtime_error without it.
  try {
    cuda::cudnn_conv2d_forward(Level::repeatable, same, nullptr, nullptr, nullptr, nullptr,
                               nullptr);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(cuda::cudnn_available());
    EXPECT_NE(std::string(e.what()).find("asymmetric padding"), std::string::npos) << e.what();
  } catch (const std::runtime_error& e) {
    EXPECT_FALSE(cuda::cudnn_available());
    EXPECT_NE(std::string(e.what()).find("built without cuDNN"), std::string::npos) << e.what();
  }
}

struct ConvCase {
  detdl::Conv2dShape s;
  const char* name;
};

TEST_F(Cudnn, ConvMatchesCpuWithinRoundingAndRepeatableIsRepeatable) {
  for (const ConvCase& c :
       {ConvCase{detdl::conv2d_shape(4, 3, 9, 9, 5, 3, 3, 1, 1), "3x3 pad 1"},
        ConvCase{detdl::conv2d_shape(2, 6, 12, 10, 4, 5, 3, 2, 2), "5x3 stride 2 pad 2"},
        ConvCase{detdl::conv2d_shape_valid(3, 4, 7, 7, 8, 1, 1, 1), "1x1"}}) {
    SCOPED_TRACE(c.name);
    const auto& s = c.s;
    const i64 nx = s.N * s.C * s.H * s.W, nw = s.O * s.C * s.KH * s.KW,
              ny = s.N * s.O * s.OH * s.OW;
    const Vec x = random_vec(nx, 1), w = random_vec(nw, 2), b = random_vec(s.O, 3),
              dy = random_vec(ny, 4);
    Vec y(ny), dx(nx), dw(nw), db(s.O);
    cpu::conv2d_forward(Level::portable, s, x.data(), w.data(), b.data(), y.data());
    cpu::conv2d_backward_data(Level::portable, s, dy.data(), w.data(), dx.data());
    cpu::conv2d_backward_weight(Level::portable, s, x.data(), dy.data(), dw.data());
    cpu::conv2d_backward_bias(Level::portable, s, dy.data(), db.data());
    Dev gx(x), gw(w), gb(b), gdy(dy), gy(ny), gdx(nx), gdw(nw), gdb(s.O);
    for (Level level : {Level::repeatable, Level::fast}) {
      cuda::cudnn_conv2d_forward(level, s, gx.get(), gw.get(), gb.get(), gy.get(), stream);
      cuda::cudnn_conv2d_backward_data(level, s, gdy.get(), gw.get(), gdx.get(), stream);
      cuda::cudnn_conv2d_backward_weight(level, s, gx.get(), gdy.get(), gdw.get(), stream);
      cuda::cudnn_conv2d_backward_bias(s, gdy.get(), gdb.get(), stream);
      // `fast` may use TF32 (10-bit mantissa inputs): a relative 2^-10 per product.
      const float tf32 = level == Level::fast ? std::ldexp(1.0f, -10) : 0.0f;
      const i64 n_fwd = s.C * s.KH * s.KW + 1, n_data = s.O * s.KH * s.KW, n_w = s.N * s.OH * s.OW;
      EXPECT_TRUE(close(y, gy.host(), kTol(n_fwd) + tf32 * n_fwd));
      EXPECT_TRUE(close(dx, gdx.host(), kTol(n_data) + tf32 * n_data));
      EXPECT_TRUE(close(dw, gdw.host(), kTol(n_w) + tf32 * n_w));
      EXPECT_TRUE(close(db, gdb.host(), kTol(n_w)));
    }
    // repeatable: the deterministic algorithms give the same bits run to run.
    cuda::cudnn_conv2d_forward(Level::repeatable, s, gx.get(), gw.get(), gb.get(), gy.get(),
                               stream);
    cuda::cudnn_conv2d_backward_data(Level::repeatable, s, gdy.get(), gw.get(), gdx.get(), stream);
    cuda::cudnn_conv2d_backward_weight(Level::repeatable, s, gx.get(), gdy.get(), gdw.get(),
                                       stream);
    const Vec y1 = gy.host(), dx1 = gdx.host(), dw1 = gdw.host();
    cuda::cudnn_conv2d_forward(Level::repeatable, s, gx.get(), gw.get(), gb.get(), gy.get(),
                               stream);
    cuda::cudnn_conv2d_backward_data(Level::repeatable, s, gdy.get(), gw.get(), gdx.get(), stream);
    cuda::cudnn_conv2d_backward_weight(Level::repeatable, s, gx.get(), gdy.get(), gdw.get(),
                                       stream);
    EXPECT_TRUE(same_bits(y1, gy.host()));
    EXPECT_TRUE(same_bits(dx1, gdx.host()));
    EXPECT_TRUE(same_bits(dw1, gdw.host()));
  }
}

TEST_F(Cudnn, PoolingMatchesCpu) {
  // Max 2x2 stride 2: a selection, exact. Average 3x3 stride 2 pad 1, both padding counts:
  // 9 terms and one division (or a multiplication by the reciprocal): within kTol(9).
  const auto mp = detdl::pool2d_shape(2, 3, 8, 8, 2, 2, 2, 0);
  const auto ap = detdl::pool2d_shape(2, 3, 9, 9, 3, 3, 2, 1);
  {
    const i64 nx = mp.N * mp.C * mp.H * mp.W, ny = mp.N * mp.C * mp.OH * mp.OW;
    const Vec x = random_vec(nx, 5), dy = random_vec(ny, 6);
    Vec y(ny), dx(nx);
    std::vector<std::int32_t> arg(ny);
    cpu::maxpool2d_forward(mp, x.data(), y.data(), arg.data());
    cpu::maxpool2d_backward(mp, dy.data(), arg.data(), dx.data());
    Dev gx(x), gdy(dy), gy(ny), gdx(nx);
    cuda::cudnn_pool2d_forward(true, false, mp, gx.get(), gy.get(), stream);
    cuda::cudnn_pool2d_backward(true, false, mp, gx.get(), gy.get(), gdy.get(), gdx.get(), stream);
    EXPECT_TRUE(same_bits(y, gy.host()));
    EXPECT_TRUE(same_bits(dx, gdx.host()));
  }
  for (bool include_pad : {false, true}) {
    SCOPED_TRACE(include_pad ? "count_include_pad" : "exclude pad");
    const i64 nx = ap.N * ap.C * ap.H * ap.W, ny = ap.N * ap.C * ap.OH * ap.OW;
    const Vec x = random_vec(nx, 7), dy = random_vec(ny, 8);
    Vec y(ny), dx(nx);
    cpu::avgpool2d_forward(ap, include_pad, x.data(), y.data());
    cpu::avgpool2d_backward(ap, include_pad, dy.data(), dx.data());
    Dev gx(x), gdy(dy), gy(ny), gdx(nx);
    cuda::cudnn_pool2d_forward(false, include_pad, ap, gx.get(), gy.get(), stream);
    cuda::cudnn_pool2d_backward(false, include_pad, ap, gx.get(), gy.get(), gdy.get(), gdx.get(),
                                stream);
    EXPECT_TRUE(close(y, gy.host(), kTol(9)));
    EXPECT_TRUE(close(dx, gdx.host(), kTol(9)));
  }
}

TEST_F(Cudnn, BatchNormMatchesCpuAndIsRepeatable) {
  const i64 N = 4, C = 3, HW = 50, n = N * C * HW, count = N * HW;
  const float eps = 1e-5f, momentum = 0.1f;
  const Vec x = random_vec(n, 9), dy = random_vec(n, 10), gamma = random_vec(C, 11, 0.5f, 1.5f),
            beta = random_vec(C, 12);
  Vec y(n), mean(C), inv_std(C), var(C), rm(C, 0.25f), rv(C, 2.0f), dx(n), dg(C), dbeta(C), ye(n);
  cpu::batchnorm_forward_train(Level::portable, N, C, HW, x.data(), gamma.data(), beta.data(), eps,
                               y.data(), mean.data(), inv_std.data(), var.data());
  cpu::batchnorm_update_running(C, count, momentum, mean.data(), var.data(), rm.data(), rv.data(),
                                /*unbiased=*/true);
  cpu::batchnorm_backward(Level::portable, N, C, HW, x.data(), dy.data(), gamma.data(), mean.data(),
                          inv_std.data(), dx.data(), dg.data(), dbeta.data());
  cpu::batchnorm_forward_eval(N, C, HW, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(),
                              eps, ye.data());

  Dev gx(x), gdy(dy), gg(gamma), gb(beta), gy(n), gmean(C), ginv(C), grm(Vec(C, 0.25f)),
      grv(Vec(C, 2.0f)), gdx(n), gdg(C), gdb(C), gye(n);
  cuda::cudnn_batchnorm_forward_train(N, C, HW, gx.get(), gg.get(), gb.get(), eps, momentum,
                                      gy.get(), grm.get(), grv.get(), gmean.get(), ginv.get(),
                                      stream);
  cuda::cudnn_batchnorm_backward(N, C, HW, gx.get(), gdy.get(), gg.get(), gmean.get(), ginv.get(),
                                 eps, gdx.get(), gdg.get(), gdb.get(), stream);
  cuda::cudnn_batchnorm_forward_eval(N, C, HW, gx.get(), gg.get(), gb.get(), grm.get(), grv.get(),
                                     eps, gye.get(), stream);
  // Statistics over count = 200 values: mean and variance within kTol(count); the
  // normalised outputs scale that by inv_std (<= 1 / sqrt(eps) in theory, about 1.7 here
  // for uniform [-1, 1] data), so 4 * kTol(count) bounds them with room.
  const float t = 4.0f * kTol(count);
  EXPECT_TRUE(close(mean, gmean.host(), kTol(count)));
  EXPECT_TRUE(close(inv_std, ginv.host(), t));
  EXPECT_TRUE(close(y, gy.host(), t));
  EXPECT_TRUE(close(rm, grm.host(), kTol(count)));
  EXPECT_TRUE(close(rv, grv.host(), t));  // unbiased running variance: the same convention
  EXPECT_TRUE(close(dx, gdx.host(), t));
  EXPECT_TRUE(close(dg, gdg.host(), t));
  EXPECT_TRUE(close(dbeta, gdb.host(), kTol(count)));
  EXPECT_TRUE(close(ye, gye.host(), t));

  // Deterministic: the same bits again (running buffers left out: they moved).
  const Vec y1 = gy.host(), dx1 = gdx.host(), dg1 = gdg.host();
  cuda::cudnn_batchnorm_forward_train(N, C, HW, gx.get(), gg.get(), gb.get(), eps, momentum,
                                      gy.get(), nullptr, nullptr, gmean.get(), ginv.get(), stream);
  cuda::cudnn_batchnorm_backward(N, C, HW, gx.get(), gdy.get(), gg.get(), gmean.get(), ginv.get(),
                                 eps, gdx.get(), gdg.get(), gdb.get(), stream);
  EXPECT_TRUE(same_bits(y1, gy.host()));
  EXPECT_TRUE(same_bits(dx1, gdx.host()));
  EXPECT_TRUE(same_bits(dg1, gdg.host()));
}

TEST(CudnnShapes, BadArgumentsAreRefused) {
  // Checked before any device work: no device needed.
  if (!cuda::cudnn_available()) GTEST_SKIP() << "built without cuDNN";
  cudaStream_t stream = nullptr;
  EXPECT_THROW(cuda::cudnn_batchnorm_forward_eval(1, 1, 1, nullptr, nullptr, nullptr, nullptr,
                                                  nullptr, 0.0f, nullptr, stream),
               std::invalid_argument);
  EXPECT_THROW(cuda::cudnn_batchnorm_forward_train(1, 1, 1, nullptr, nullptr, nullptr, 1e-5f, 0.1f,
                                                   nullptr, nullptr, reinterpret_cast<float*>(16),
                                                   nullptr, nullptr, stream),
               std::invalid_argument);
}

}  // namespace
