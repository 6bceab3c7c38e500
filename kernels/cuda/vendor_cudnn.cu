#include "kernels/cuda/vendor_cudnn.h"

#include <climits>
#include <stdexcept>
#include <string>

#include "kernels/cuda/allocator.h"
#include "kernels/cuda/check.h"

#ifdef DETDL_HAVE_CUDNN
#include <cudnn.h>

#include <map>
#endif

namespace detdl::cuda {

namespace {
// cuDNN pads pad_top / pad_left on both sides: usable when that gives the requested output
// size (an extra bottom/right zero row that no output reads changes nothing). Convolution
// and pooling windows are described alike (H, W, KH, KW, strides, pads, OH, OW).
template <class WindowShape>
bool symmetric_padding_fits(const WindowShape& s) {
  return (s.H + 2 * s.pad_top - s.KH) / s.stride_h + 1 == s.OH &&
         (s.W + 2 * s.pad_left - s.KW) / s.stride_w + 1 == s.OW;
}
}  // namespace

bool cudnn_conv2d_supported(const Conv2dShape& s) { return symmetric_padding_fits(s); }
bool cudnn_pool2d_supported(const Pool2dShape& s) { return symmetric_padding_fits(s); }

#ifndef DETDL_HAVE_CUDNN

namespace {
[[noreturn]] void no_cudnn(const char* what) {
  throw std::runtime_error(std::string(what) + ": detdl was built without cuDNN");
}
}  // namespace

bool cudnn_available() { return false; }
#define DETDL_CUDNN_ENTRY(name, params) \
  void name params { no_cudnn(#name); }
#include "kernels/cuda/vendor_cudnn.def"
#undef DETDL_CUDNN_ENTRY

#else  // DETDL_HAVE_CUDNN

namespace {

void check_cudnn(cudnnStatus_t status, const char* what, const char* file, int line) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + what +
                           " failed: " + cudnnGetErrorString(status));
}

}  // namespace
}  // namespace detdl::cuda

// Wraps a cudnnStatus_t-returning call: DETDL_CUDNN_CHECK(cudnnCreate(&h)).
#define DETDL_CUDNN_CHECK(call) ::detdl::cuda::check_cudnn((call), #call, __FILE__, __LINE__)

namespace detdl::cuda {
namespace {

int narrow(std::int64_t v, const char* name) {
  if (v < 0 || v > INT_MAX)
    throw std::invalid_argument(std::string("cudnn: ") + name +
                                " out of int range: " + std::to_string(v));
  return static_cast<int>(v);
}

// One handle per (device, thread): a cuDNN handle must not be used by two threads at once,
// and a study runs several runs in threads. Never destroyed (as the cuBLAS handles): the
// process may outlive the driver's teardown order otherwise.
cudnnHandle_t handle_for(cudaStream_t stream) {
  int device = 0;
  DETDL_CUDA_CHECK(cudaGetDevice(&device));
  thread_local std::map<int, cudnnHandle_t> handles;
  cudnnHandle_t& h = handles[device];
  if (!h) DETDL_CUDNN_CHECK(cudnnCreate(&h));
  DETDL_CUDNN_CHECK(cudnnSetStream(h, stream));
  return h;
}

// RAII descriptors.
struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc(std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w) {
    DETDL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d));
    DETDL_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                                 narrow(n, "N"), narrow(c, "C"), narrow(h, "H"),
                                                 narrow(w, "W")));
  }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};

struct FilterDesc {
  cudnnFilterDescriptor_t d = nullptr;
  explicit FilterDesc(const Conv2dShape& s) {
    DETDL_CUDNN_CHECK(cudnnCreateFilterDescriptor(&d));
    DETDL_CUDNN_CHECK(cudnnSetFilter4dDescriptor(d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                                 narrow(s.O, "O"), narrow(s.C, "C"),
                                                 narrow(s.KH, "KH"), narrow(s.KW, "KW")));
  }
  ~FilterDesc() { cudnnDestroyFilterDescriptor(d); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
};

struct ConvDesc {
  cudnnConvolutionDescriptor_t d = nullptr;
  ConvDesc(Level level, const Conv2dShape& s) {
    DETDL_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d));
    DETDL_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
        d, narrow(s.pad_top, "pad_top"), narrow(s.pad_left, "pad_left"),
        narrow(s.stride_h, "stride_h"), narrow(s.stride_w, "stride_w"), 1, 1,
        CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    // CUDNN_DEFAULT_MATH lets cuDNN use TF32 tensor cores for FP32 on Ampere and later;
    // CUDNN_FMA_MATH is plain FP32. TF32 only at `fast`.
    DETDL_CUDNN_CHECK(
        cudnnSetConvolutionMathType(d, level == Level::fast ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
  }
  ~ConvDesc() { cudnnDestroyConvolutionDescriptor(d); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
};

struct Workspace {
  void* ptr = nullptr;
  Workspace(std::size_t bytes, cudaStream_t stream) {
    if (bytes > 0) ptr = device_allocator().allocate(bytes, stream);
  }
  ~Workspace() {
    if (ptr) device_allocator().release(ptr);
  }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
};

void require_supported(const Conv2dShape& s, const char* what) {
  check_conv2d_shape(s);
  if (!cudnn_conv2d_supported(s))
    throw std::invalid_argument(
        std::string(what) +
        ": asymmetric padding (pad_bottom != pad_top or pad_right != pad_left); cuDNN "
        "supports only symmetric padding, use the own kernel");
}

// The first returned algorithm that succeeded (results come sorted fastest first); the
// descriptor takes the math type the heuristic rated it with (cuDNN's recommended use).
template <class Perf>
auto fastest(const Perf* perf, int count, cudnnConvolutionDescriptor_t cd, const char* what) {
  for (int i = 0; i < count; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS) {
      DETDL_CUDNN_CHECK(cudnnSetConvolutionMathType(cd, perf[i].mathType));
      return perf[i].algo;
    }
  throw std::runtime_error(std::string(what) + ": cuDNN offers no algorithm for this shape");
}

}  // namespace

bool cudnn_available() { return true; }

void cudnn_conv2d_forward(Level level, const Conv2dShape& s, const float* x, const float* w,
                          const float* bias, float* y, cudaStream_t stream) {
  require_supported(s, "cudnn_conv2d_forward");
  if (s.N == 0) return;
  cudnnHandle_t h = handle_for(stream);
  TensorDesc xd(s.N, s.C, s.H, s.W), yd(s.N, s.O, s.OH, s.OW);
  FilterDesc wd(s);
  ConvDesc cd(level, s);
  cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
  if (level == Level::fast) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int count = 0;
    DETDL_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(
        h, xd.d, wd.d, cd.d, yd.d, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf));
    algo = fastest(perf, count, cd.d, "cudnn_conv2d_forward");
  }
  std::size_t bytes = 0;
  if (level != Level::fast && cudnnGetConvolutionForwardWorkspaceSize(
                                  h, xd.d, wd.d, cd.d, yd.d, algo, &bytes) != CUDNN_STATUS_SUCCESS)
    algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;  // also deterministic; supports every shape
  DETDL_CUDNN_CHECK(
      cudnnGetConvolutionForwardWorkspaceSize(h, xd.d, wd.d, cd.d, yd.d, algo, &bytes));
  Workspace ws(bytes, stream);
  const float one = 1.0f, zero = 0.0f;
  DETDL_CUDNN_CHECK(cudnnConvolutionForward(h, &one, xd.d, x, wd.d, w, cd.d, algo, ws.ptr, bytes,
                                            &zero, yd.d, y));
  if (bias) {
    TensorDesc bd(1, s.O, 1, 1);
    DETDL_CUDNN_CHECK(cudnnAddTensor(h, &one, bd.d, bias, &one, yd.d, y));
  }
}

void cudnn_conv2d_backward_data(Level level, const Conv2dShape& s, const float* dy, const float* w,
                                float* dx, cudaStream_t stream) {
  require_supported(s, "cudnn_conv2d_backward_data");
  if (s.N == 0) return;
  cudnnHandle_t h = handle_for(stream);
  TensorDesc dxd(s.N, s.C, s.H, s.W), dyd(s.N, s.O, s.OH, s.OW);
  FilterDesc wd(s);
  ConvDesc cd(level, s);
  cudnnConvolutionBwdDataAlgo_t algo = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;  // deterministic
  if (level == Level::fast) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int count = 0;
    DETDL_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
        h, wd.d, dyd.d, cd.d, dxd.d, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf));
    algo = fastest(perf, count, cd.d, "cudnn_conv2d_backward_data");
  }
  std::size_t bytes = 0;
  DETDL_CUDNN_CHECK(
      cudnnGetConvolutionBackwardDataWorkspaceSize(h, wd.d, dyd.d, cd.d, dxd.d, algo, &bytes));
  Workspace ws(bytes, stream);
  const float one = 1.0f, zero = 0.0f;
  DETDL_CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, wd.d, w, dyd.d, dy, cd.d, algo, ws.ptr,
                                                 bytes, &zero, dxd.d, dx));
}

void cudnn_conv2d_backward_weight(Level level, const Conv2dShape& s, const float* x,
                                  const float* dy, float* dw, cudaStream_t stream) {
  require_supported(s, "cudnn_conv2d_backward_weight");
  if (s.N == 0) {
    DETDL_CUDA_CHECK(cudaMemsetAsync(dw, 0, sizeof(float) * s.O * s.C * s.KH * s.KW, stream));
    return;
  }
  cudnnHandle_t h = handle_for(stream);
  TensorDesc xd(s.N, s.C, s.H, s.W), dyd(s.N, s.O, s.OH, s.OW);
  FilterDesc wd(s);
  ConvDesc cd(level, s);
  cudnnConvolutionBwdFilterAlgo_t algo = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;  // deterministic
  if (level == Level::fast) {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int count = 0;
    DETDL_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        h, xd.d, dyd.d, cd.d, wd.d, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf));
    algo = fastest(perf, count, cd.d, "cudnn_conv2d_backward_weight");
  }
  std::size_t bytes = 0;
  DETDL_CUDNN_CHECK(
      cudnnGetConvolutionBackwardFilterWorkspaceSize(h, xd.d, dyd.d, cd.d, wd.d, algo, &bytes));
  Workspace ws(bytes, stream);
  const float one = 1.0f, zero = 0.0f;
  DETDL_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, xd.d, x, dyd.d, dy, cd.d, algo, ws.ptr,
                                                   bytes, &zero, wd.d, dw));
}

void cudnn_conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* db,
                                cudaStream_t stream) {
  check_conv2d_shape(s);
  if (s.N == 0) {
    DETDL_CUDA_CHECK(cudaMemsetAsync(db, 0, sizeof(float) * s.O, stream));
    return;
  }
  cudnnHandle_t h = handle_for(stream);
  TensorDesc dyd(s.N, s.O, s.OH, s.OW), bd(1, s.O, 1, 1);
  const float one = 1.0f, zero = 0.0f;
  DETDL_CUDNN_CHECK(cudnnConvolutionBackwardBias(h, &one, dyd.d, dy, &zero, bd.d, db));
}

namespace {

struct PoolDesc {
  cudnnPoolingDescriptor_t d = nullptr;
  PoolDesc(bool max, bool count_include_pad, const Pool2dShape& s) {
    check_pool2d_shape(s);
    if (!cudnn_pool2d_supported(s))
      throw std::invalid_argument(
          "cudnn pooling: asymmetric padding; cuDNN supports only symmetric padding");
    DETDL_CUDNN_CHECK(cudnnCreatePoolingDescriptor(&d));
    const cudnnPoolingMode_t mode =
        max ? CUDNN_POOLING_MAX_DETERMINISTIC
            : (count_include_pad ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
                                 : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING);
    DETDL_CUDNN_CHECK(cudnnSetPooling2dDescriptor(
        d, mode, CUDNN_NOT_PROPAGATE_NAN, narrow(s.KH, "KH"), narrow(s.KW, "KW"),
        narrow(s.pad_top, "pad_top"), narrow(s.pad_left, "pad_left"),
        narrow(s.stride_h, "stride_h"), narrow(s.stride_w, "stride_w")));
  }
  ~PoolDesc() { cudnnDestroyPoolingDescriptor(d); }
  PoolDesc(const PoolDesc&) = delete;
  PoolDesc& operator=(const PoolDesc&) = delete;
};

}  // namespace

void cudnn_pool2d_forward(bool max, bool count_include_pad, const Pool2dShape& s, const float* x,
                          float* y, cudaStream_t stream) {
  PoolDesc pd(max, count_include_pad, s);
  if (s.N == 0) return;
  cudnnHandle_t h = handle_for(stream);
  TensorDesc xd(s.N, s.C, s.H, s.W), yd(s.N, s.C, s.OH, s.OW);
  const float one = 1.0f, zero = 0.0f;
  DETDL_CUDNN_CHECK(cudnnPoolingForward(h, pd.d, &one, xd.d, x, &zero, yd.d, y));
}

void cudnn_pool2d_backward(bool max, bool count_include_pad, const Pool2dShape& s, const float* x,
                           const float* y, const float* dy, float* dx, cudaStream_t stream) {
  PoolDesc pd(max, count_include_pad, s);
  if (s.N == 0) return;
  cudnnHandle_t h = handle_for(stream);
  TensorDesc xd(s.N, s.C, s.H, s.W), yd(s.N, s.C, s.OH, s.OW);
  const float one = 1.0f, zero = 0.0f;
  DETDL_CUDNN_CHECK(
      cudnnPoolingBackward(h, pd.d, &one, yd.d, y, yd.d, dy, xd.d, x, &zero, xd.d, dx));
}

namespace {

void check_bn(std::int64_t N, std::int64_t C, std::int64_t HW, float eps, const char* what) {
  if (N < 1 || C < 1 || HW < 1)
    throw std::invalid_argument(std::string(what) + ": N, C and HW must be >= 1");
  if (!(eps > 0.0f) || !(static_cast<double>(eps) >= CUDNN_BN_MIN_EPSILON))
    throw std::invalid_argument(std::string(what) +
                                ": eps must be > 0 and >= CUDNN_BN_MIN_EPSILON, got " +
                                std::to_string(eps));
}

}  // namespace

void cudnn_batchnorm_forward_train(std::int64_t N, std::int64_t C, std::int64_t HW, const float* x,
                                   const float* gamma, const float* beta, float eps, float momentum,
                                   float* y, float* running_mean, float* running_var,
                                   float* save_mean, float* save_inv_std, cudaStream_t stream) {
  check_bn(N, C, HW, eps, "cudnn_batchnorm_forward_train");
  if ((running_mean == nullptr) != (running_var == nullptr))
    throw std::invalid_argument(
        "cudnn_batchnorm_forward_train: running_mean and running_var must both be given or both "
        "nullptr");
  cudnnHandle_t h = handle_for(stream);
  TensorDesc xd(N, C, HW, 1), pd(1, C, 1, 1);
  const float one = 1.0f, zero = 0.0f;
  DETDL_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
      h, CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd.d, x, xd.d, y, pd.d, gamma, beta,
      static_cast<double>(momentum), running_mean, running_var, static_cast<double>(eps), save_mean,
      save_inv_std));
}

void cudnn_batchnorm_forward_eval(std::int64_t N, std::int64_t C, std::int64_t HW, const float* x,
                                  const float* gamma, const float* beta, const float* running_mean,
                                  const float* running_var, float eps, float* y,
                                  cudaStream_t stream) {
  check_bn(N, C, HW, eps, "cudnn_batchnorm_forward_eval");
  cudnnHandle_t h = handle_for(stream);
  TensorDesc xd(N, C, HW, 1), pd(1, C, 1, 1);
  const float one = 1.0f, zero = 0.0f;
  DETDL_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(
      h, CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd.d, x, xd.d, y, pd.d, gamma, beta, running_mean,
      running_var, static_cast<double>(eps)));
}

void cudnn_batchnorm_backward(std::int64_t N, std::int64_t C, std::int64_t HW, const float* x,
                              const float* dy, const float* gamma, const float* save_mean,
                              const float* save_inv_std, float eps, float* dx, float* dgamma,
                              float* dbeta, cudaStream_t stream) {
  check_bn(N, C, HW, eps, "cudnn_batchnorm_backward");
  cudnnHandle_t h = handle_for(stream);
  TensorDesc xd(N, C, HW, 1), pd(1, C, 1, 1);
  const float one = 1.0f, zero = 0.0f;
  DETDL_CUDNN_CHECK(cudnnBatchNormalizationBackward(
      h, CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, xd.d, x, xd.d, dy, xd.d, dx, pd.d,
      gamma, dgamma, dbeta, static_cast<double>(eps), save_mean, save_inv_std));
}

#endif  // DETDL_HAVE_CUDNN

}  // namespace detdl::cuda
