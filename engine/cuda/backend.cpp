// engine/cuda_backend.h over kernels/cuda/: each function forwards to its kernel on the
// default stream (kStream). Built only with CUDA (CMakeLists.txt adds engine/cuda/ then).
#include <cuda_runtime.h>

#include <mutex>
#include <stdexcept>
#include <string>

#include "engine/context.h"
#include "engine/cuda_backend.h"
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/arith.h"
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
#include "kernels/cuda/vendor_cudnn.h"

namespace detdl::gpu {
namespace {

// The legacy default stream: it orders every kernel and copy of the process, so the
// engine needs no events and the caching allocator's per-stream reuse is always safe.
const cudaStream_t kStream = nullptr;

class CudaAllocator final : public Allocator {
 public:
  void* allocate(std::size_t bytes) override { return cuda::device_allocator().allocate(bytes, kStream); }
  void deallocate(void* p, std::size_t) override {
    if (p) cuda::device_allocator().release(p);
  }
  Device device() const override { return Device::cuda; }
};

// Empty when a device is usable, else why not (the driver's words).
const std::string& unavailable_reason() {
  static const std::string reason = [] {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
      cudaGetLastError();  // clear the error so that it does not surface at a later call
      return std::string("no usable CUDA device: ") + cudaGetErrorString(e);
    }
    if (count == 0) return std::string("no CUDA device found");
    return std::string();
  }();
  return reason;
}

void check(cudaError_t e, const char* what) { cuda::check_cuda(e, what, __FILE__, __LINE__); }

}  // namespace

bool available() { return unavailable_reason().empty(); }

void require(const char* what) {
  if (!available()) throw std::runtime_error(std::string(what) + ": " + unavailable_reason());
}

Allocator& allocator() {
  require("a CUDA tensor");
  static CudaAllocator a;
  return a;
}

void copy_to_device(void* dst, const void* src, std::size_t bytes) {
  if (bytes) DETDL_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}
void copy_to_host(void* dst, const void* src, std::size_t bytes) {
  if (bytes) DETDL_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}
void copy_on_device(void* dst, const void* src, std::size_t bytes) {
  if (bytes) DETDL_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, kStream));
}

void binary_map(Binary op, std::int64_t n, const float* a, const float* b, float* y) {
  const cuda::BinaryOp k = op == Binary::add ? cuda::BinaryOp::add : op == Binary::sub ? cuda::BinaryOp::sub
                                                                                       : cuda::BinaryOp::mul;
  cuda::binary_map(k, n, a, b, y, kStream);
}
void scale(std::int64_t n, const float* a, float s, float* y) { cuda::scale(n, a, s, y, kStream); }
void add_inplace(std::int64_t n, float* acc, const float* g) { cuda::add_inplace(n, acc, g, kStream); }
void add_row_bias(std::int64_t rows, std::int64_t cols, float* y, const float* b) {
  cuda::add_row_bias(rows, cols, y, b, kStream);
}
void fill(std::int64_t n, float value, float* y) { cuda::fill(n, value, y, kStream); }
void copy_rows(std::int64_t rows, std::size_t width, const void* src, std::size_t src_pitch, void* dst,
               std::size_t dst_pitch) {
  cuda::copy_rows(rows, width, src, src_pitch, dst, dst_pitch, kStream);
}
void activation_forward(Activation a, float alpha, const float* x, float* y, std::int64_t n) {
  check(cuda::activation_forward(a, alpha, x, y, n, kStream), "activation_forward");
}
void activation_backward(Activation a, float alpha, const float* x, const float* y, const float* dy, float* dx,
                         std::int64_t n) {
  check(cuda::activation_backward(a, alpha, x, y, dy, dx, n, kStream), "activation_backward");
}
void dropout_forward(std::uint64_t seed, std::uint32_t sub, std::uint64_t index_base, float p, std::int64_t n,
                     const float* x, float* y, std::uint8_t* mask) {
  check(cuda::dropout_forward(seed, sub, index_base, p, n, x, y, mask, kStream), "dropout_forward");
}
void dropout_backward(float p, std::int64_t n, const float* dy, const std::uint8_t* mask, float* dx) {
  cuda::dropout_backward(p, n, dy, mask, dx, kStream);
}

namespace {
// --impl vendor (RunContext::implementation): matmul goes to cuBLAS, convolution and batch
// norm to cuDNN. A convolution cuDNN cannot express (asymmetric Keras 'same' padding) and
// pooling (the engine's max-pool backward takes an argmax, cuDNN's wants x and y) stay on
// the own kernels; docs/gpu.md.
bool use_vendor() { return context().implementation == Implementation::vendor; }
bool use_cudnn(const cpu::Conv2dShape& s) {
  if (!use_vendor()) return false;
  if (!cuda::cudnn_available()) throw std::runtime_error("--impl vendor: detdl was built without cuDNN");
  return cuda::cudnn_conv2d_supported(s);
}
}  // namespace

void sgemm(Level level, bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, const float* A,
           std::int64_t lda, const float* B, std::int64_t ldb, float* C, std::int64_t ldc) {
  // --impl vendor: cuBLAS, plain FP32 unless the family runs at `fast` (then TF32).
  if (use_vendor()) {
    cuda::cublas_sgemm(level == Level::fast, trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc, kStream);
    return;
  }
  cuda::sgemm(level, trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc, kStream);
}
void column_sums(Level level, std::int64_t rows, std::int64_t cols, const float* x, float* out) {
  cuda::column_sums(level, rows, cols, x, out, kStream);
}
float sum_all(Level level, std::int64_t n, const float* x) { return cuda::sum_all(level, n, x, kStream); }

void conv2d_forward(Level level, const cpu::Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y) {
  if (use_cudnn(s)) return cuda::cudnn_conv2d_forward(level, s, x, w, bias, y, kStream);
  cuda::conv2d_forward(level, s, x, w, bias, y, kStream);
}
void conv2d_backward_data(Level level, const cpu::Conv2dShape& s, const float* dy, const float* w, float* dx) {
  if (use_cudnn(s)) return cuda::cudnn_conv2d_backward_data(level, s, dy, w, dx, kStream);
  cuda::conv2d_backward_data(level, s, dy, w, dx, kStream);
}
void conv2d_backward_weight(Level level, const cpu::Conv2dShape& s, const float* x, const float* dy, float* dw) {
  if (use_cudnn(s)) return cuda::cudnn_conv2d_backward_weight(level, s, x, dy, dw, kStream);
  cuda::conv2d_backward_weight(level, s, x, dy, dw, kStream);
}
void conv2d_backward_bias(Level level, const cpu::Conv2dShape& s, const float* dy, float* db) {
  if (use_cudnn(s)) return cuda::cudnn_conv2d_backward_bias(s, dy, db, kStream);
  cuda::conv2d_backward_bias(level, s, dy, db, kStream);
}
void maxpool2d_forward(const cpu::Pool2dShape& s, const float* x, float* y, std::int32_t* argmax) {
  cuda::maxpool2d_forward(s, x, y, argmax, kStream);
}
void maxpool2d_backward(const cpu::Pool2dShape& s, const float* dy, const std::int32_t* argmax, float* dx) {
  cuda::maxpool2d_backward(s, dy, argmax, dx, kStream);
}
void avgpool2d_forward(const cpu::Pool2dShape& s, bool count_include_pad, const float* x, float* y) {
  cuda::avgpool2d_forward(s, count_include_pad, x, y, kStream);
}
void avgpool2d_backward(const cpu::Pool2dShape& s, bool count_include_pad, const float* dy, float* dx) {
  cuda::avgpool2d_backward(s, count_include_pad, dy, dx, kStream);
}
void global_avgpool_forward(std::int64_t N, std::int64_t C, std::int64_t HW, const float* x, float* y) {
  cuda::global_avgpool_forward(N, C, HW, x, y, kStream);
}
void global_avgpool_backward(std::int64_t N, std::int64_t C, std::int64_t HW, const float* dy, float* dx) {
  cuda::global_avgpool_backward(N, C, HW, dy, dx, kStream);
}

void batchnorm_forward_train(Level level, std::int64_t N, std::int64_t C, std::int64_t HW, const float* x,
                             const float* gamma, const float* beta, float eps, float* y, float* save_mean,
                             float* save_inv_std, float* batch_var) {
  cuda::batchnorm_forward_train(level, N, C, HW, x, gamma, beta, eps, y, save_mean, save_inv_std, batch_var, kStream);
}
void batchnorm_update_running(std::int64_t C, std::int64_t count, float momentum, const float* batch_mean,
                              const float* batch_var, float* running_mean, float* running_var, bool unbiased) {
  cuda::batchnorm_update_running(C, count, momentum, batch_mean, batch_var, running_mean, running_var, unbiased,
                                 kStream);
}
void batchnorm_forward_eval(std::int64_t N, std::int64_t C, std::int64_t HW, const float* x, const float* gamma,
                            const float* beta, const float* running_mean, const float* running_var, float eps,
                            float* y) {
  cuda::batchnorm_forward_eval(N, C, HW, x, gamma, beta, running_mean, running_var, eps, y, kStream);
}
void batchnorm_backward(Level level, std::int64_t N, std::int64_t C, std::int64_t HW, const float* x, const float* dy,
                        const float* gamma, const float* save_mean, const float* save_inv_std, float* dx,
                        float* dgamma, float* dbeta) {
  cuda::batchnorm_backward(level, N, C, HW, x, dy, gamma, save_mean, save_inv_std, dx, dgamma, dbeta, kStream);
}

namespace {
bool use_cudnn_batchnorm(float eps) {
  if (!use_vendor()) return false;
  if (!cuda::cudnn_available()) throw std::runtime_error("--impl vendor: detdl was built without cuDNN");
  return eps > 0.0f;  // cuDNN needs eps > 0 (CUDNN_BN_MIN_EPSILON); eps 0 stays on the own kernels
}
}  // namespace

bool vendor_batchnorm_forward_train(std::int64_t N, std::int64_t C, std::int64_t HW, const float* x,
                                    const float* gamma, const float* beta, float eps, float momentum, bool unbiased,
                                    float* y, float* save_mean, float* save_inv_std, float* running_mean,
                                    float* running_var) {
  if (!use_cudnn_batchnorm(eps) || !unbiased) return false;
  cuda::cudnn_batchnorm_forward_train(N, C, HW, x, gamma, beta, eps, momentum, y, running_mean, running_var, save_mean,
                                      save_inv_std, kStream);
  return true;
}
bool vendor_batchnorm_backward(std::int64_t N, std::int64_t C, std::int64_t HW, const float* x, const float* dy,
                               const float* gamma, const float* save_mean, const float* save_inv_std, float eps,
                               float* dx, float* dgamma, float* dbeta) {
  if (!use_cudnn_batchnorm(eps)) return false;
  cuda::cudnn_batchnorm_backward(N, C, HW, x, dy, gamma, save_mean, save_inv_std, eps, dx, dgamma, dbeta, kStream);
  return true;
}
bool vendor_batchnorm_forward_eval(std::int64_t N, std::int64_t C, std::int64_t HW, const float* x,
                                   const float* gamma, const float* beta, const float* running_mean,
                                   const float* running_var, float eps, float* y) {
  if (!use_cudnn_batchnorm(eps)) return false;
  cuda::cudnn_batchnorm_forward_eval(N, C, HW, x, gamma, beta, running_mean, running_var, eps, y, kStream);
  return true;
}

void softmax_forward(std::int64_t N, std::int64_t K, const float* logits, float* probs) {
  cuda::softmax_forward(N, K, logits, probs, kStream);
}
float softmax_cross_entropy(Level level, std::int64_t N, std::int64_t K, const float* logits,
                            const std::int32_t* labels, float* loss_per_sample, float* dlogits) {
  return cuda::softmax_cross_entropy(level, N, K, logits, labels, loss_per_sample, dlogits, kStream);
}
float binary_cross_entropy(Level level, std::int64_t n, const float* input, const float* target, bool from_logits,
                           float* loss_per_element, float* dinput) {
  return cuda::binary_cross_entropy(level, n, input, target, from_logits, loss_per_element, dinput, kStream);
}
float mean_squared_error(Level level, std::int64_t n, const float* pred, const float* target,
                         float* loss_per_element, float* dpred) {
  return cuda::mean_squared_error(level, n, pred, target, loss_per_element, dpred, kStream);
}
float l1_penalty(Level level, std::int64_t n, const float* w) { return cuda::l1_penalty(level, n, w, kStream); }
float l2_penalty(Level level, std::int64_t n, const float* w) { return cuda::l2_penalty(level, n, w, kStream); }
void l1_penalty_grad_add(std::int64_t n, const float* w, float lambda, float* g) {
  cuda::l1_penalty_grad_add(n, w, lambda, g, kStream);
}
void l2_penalty_grad_add(std::int64_t n, const float* w, float lambda, float* g) {
  cuda::l2_penalty_grad_add(n, w, lambda, g, kStream);
}

void sgd_update(std::int64_t n, float* p, const float* g, float* buf, const cpu::SgdParams& s) {
  cuda::sgd_update(n, p, g, buf, s, kStream);
}
void adam_update(std::int64_t n, float* p, const float* g, float* m, float* v, const cpu::AdamParams& a) {
  cuda::adam_update(n, p, g, m, v, a, kStream);
}
void rmsprop_update(std::int64_t n, float* p, const float* g, float* v, float* buf, const cpu::RmspropParams& r) {
  cuda::rmsprop_update(n, p, g, v, buf, r, kStream);
}

}  // namespace detdl::gpu
