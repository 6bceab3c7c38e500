// The engine's door to the CUDA kernels (kernels/cuda/). Ops, the optimizer and autograd
// call these when their tensors live on Device::cuda; every function has the signature of
// its kernels/cuda/ (or kernels/cpu/) counterpart minus the stream: the engine runs all
// device work, copies included, in order on the default stream, so a host read after a
// copy sees every earlier kernel's result and a freed block can be reused at once.
//
// Defined in engine/cuda/backend.cpp when detdl is built with CUDA (DETDL_HAVE_CUDA);
// otherwise engine/cuda_backend_stub.cpp defines them all to throw "built without CUDA",
// so this header (and every op) compiles the same in both builds. No CUDA header is
// included here. Pointers are device pointers.
#pragma once
#include <cstddef>
#include <cstdint>

#include "engine/allocator.h"
#include "kernels/common/activation.h"
#include "kernels/common/level.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/optim.h"
#include "kernels/cpu/pool.h"

namespace detdl::gpu {

// True when detdl was built with CUDA and a CUDA device can be used; never throws.
bool available();
// Throws std::runtime_error naming `what` (e.g. "--device cuda") when !available(): built
// without CUDA, or no usable device (with the driver's reason).
void require(const char* what);

// The engine's CUDA allocator: an Allocator over cuda::device_allocator() (default stream).
Allocator& allocator();

// Synchronous copies (they order after all earlier device work).
void copy_to_device(void* dst, const void* src, std::size_t bytes);
void copy_to_host(void* dst, const void* src, std::size_t bytes);
void copy_on_device(void* dst, const void* src, std::size_t bytes);

// ---- element-wise (kernels/cuda/arith.h, elementwise.h) ----
enum class Binary : std::uint8_t { add, sub, mul };
void binary_map(Binary op, std::int64_t n, const float* a, const float* b, float* y);  // (n) each
void scale(std::int64_t n, const float* a, float s, float* y);                         // (n) each
void add_inplace(std::int64_t n, float* acc, const float* g);                          // (n) each
void add_row_bias(std::int64_t rows, std::int64_t cols, float* y /*(rows, cols)*/, const float* b /*(cols)*/);
void fill(std::int64_t n, float value, float* y /*(n)*/);
void copy_rows(std::int64_t rows, std::size_t width, const void* src, std::size_t src_pitch, void* dst,
               std::size_t dst_pitch);
void activation_forward(Activation a, float alpha, const float* x, float* y, std::int64_t n);  // (n) each
void activation_backward(Activation a, float alpha, const float* x, const float* y, const float* dy, float* dx,
                         std::int64_t n);  // (n) each
void dropout_forward(std::uint64_t seed, std::uint32_t sub, std::uint64_t index_base, float p, std::int64_t n,
                     const float* x, float* y, std::uint8_t* mask);  // (n) each
void dropout_backward(float p, std::int64_t n, const float* dy, const std::uint8_t* mask, float* dx);  // (n) each

// ---- reductions and dense (kernels/cuda/reduce.h, gemm.h) ----
void sgemm(Level level, bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, const float* A,
           std::int64_t lda, const float* B, std::int64_t ldb, float* C, std::int64_t ldc);
void column_sums(Level level, std::int64_t rows, std::int64_t cols, const float* x /*(rows, cols)*/,
                 float* out /*(cols)*/);
float sum_all(Level level, std::int64_t n, const float* x /*(n)*/);

// ---- convolution and pooling (kernels/cuda/conv.h, pool.h) ----
void conv2d_forward(Level level, const cpu::Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y);
void conv2d_backward_data(Level level, const cpu::Conv2dShape& s, const float* dy, const float* w, float* dx);
void conv2d_backward_weight(Level level, const cpu::Conv2dShape& s, const float* x, const float* dy, float* dw);
void conv2d_backward_bias(Level level, const cpu::Conv2dShape& s, const float* dy, float* db);
void maxpool2d_forward(const cpu::Pool2dShape& s, const float* x, float* y, std::int32_t* argmax);
void maxpool2d_backward(const cpu::Pool2dShape& s, const float* dy, const std::int32_t* argmax, float* dx);
void avgpool2d_forward(const cpu::Pool2dShape& s, bool count_include_pad, const float* x, float* y);
void avgpool2d_backward(const cpu::Pool2dShape& s, bool count_include_pad, const float* dy, float* dx);
void global_avgpool_forward(std::int64_t N, std::int64_t C, std::int64_t HW, const float* x, float* y);
void global_avgpool_backward(std::int64_t N, std::int64_t C, std::int64_t HW, const float* dy, float* dx);

// ---- batch normalisation (kernels/cuda/batchnorm.h) ----
void batchnorm_forward_train(Level level, std::int64_t N, std::int64_t C, std::int64_t HW, const float* x,
                             const float* gamma, const float* beta, float eps, float* y, float* save_mean,
                             float* save_inv_std, float* batch_var);
void batchnorm_update_running(std::int64_t C, std::int64_t count, float momentum, const float* batch_mean,
                              const float* batch_var, float* running_mean, float* running_var, bool unbiased);
void batchnorm_forward_eval(std::int64_t N, std::int64_t C, std::int64_t HW, const float* x, const float* gamma,
                            const float* beta, const float* running_mean, const float* running_var, float eps,
                            float* y);
void batchnorm_backward(Level level, std::int64_t N, std::int64_t C, std::int64_t HW, const float* x, const float* dy,
                        const float* gamma, const float* save_mean, const float* save_inv_std, float* dx,
                        float* dgamma, float* dbeta);
// Under --impl vendor (RunContext::implementation) batch norm goes to cuDNN
// (kernels/cuda/vendor_cudnn.h). Each returns false, doing nothing, when the run is not
// vendor or cuDNN cannot match the engine's convention; the caller then uses the own
// kernels above. The training forward updates the running statistics itself (cuDNN's
// exponentialAverageFactor is the engine's PyTorch momentum) and so needs `unbiased`:
// cuDNN's running variance is always the unbiased one, so the Keras (biased) convention
// falls back. The backward and eval forward have no convention to match.
bool vendor_batchnorm_forward_train(std::int64_t N, std::int64_t C, std::int64_t HW, const float* x /*(N, C, HW)*/,
                                    const float* gamma /*(C)*/, const float* beta /*(C)*/, float eps,
                                    float momentum, bool unbiased, float* y /*(N, C, HW)*/,
                                    float* save_mean /*(C)*/, float* save_inv_std /*(C)*/,
                                    float* running_mean /*(C)*/, float* running_var /*(C)*/);
bool vendor_batchnorm_backward(std::int64_t N, std::int64_t C, std::int64_t HW, const float* x /*(N, C, HW)*/,
                               const float* dy /*(N, C, HW)*/, const float* gamma /*(C)*/,
                               const float* save_mean /*(C)*/, const float* save_inv_std /*(C)*/, float eps,
                               float* dx /*(N, C, HW)*/, float* dgamma /*(C)*/, float* dbeta /*(C)*/);
bool vendor_batchnorm_forward_eval(std::int64_t N, std::int64_t C, std::int64_t HW, const float* x /*(N, C, HW)*/,
                                   const float* gamma /*(C)*/, const float* beta /*(C)*/,
                                   const float* running_mean /*(C)*/, const float* running_var /*(C)*/, float eps,
                                   float* y /*(N, C, HW)*/);

// ---- losses (kernels/cuda/loss.h); the float results come back to the host ----
void softmax_forward(std::int64_t N, std::int64_t K, const float* logits, float* probs);
float softmax_cross_entropy(Level level, std::int64_t N, std::int64_t K, const float* logits,
                            const std::int32_t* labels, float* loss_per_sample, float* dlogits);
float binary_cross_entropy(Level level, std::int64_t n, const float* input, const float* target, bool from_logits,
                           float* loss_per_element, float* dinput);
float mean_squared_error(Level level, std::int64_t n, const float* pred, const float* target,
                         float* loss_per_element, float* dpred);
float l1_penalty(Level level, std::int64_t n, const float* w);
float l2_penalty(Level level, std::int64_t n, const float* w);
void l1_penalty_grad_add(std::int64_t n, const float* w, float lambda, float* g);
void l2_penalty_grad_add(std::int64_t n, const float* w, float lambda, float* g);

// ---- optimizers (kernels/cuda/optim.h) ----
void sgd_update(std::int64_t n, float* p, const float* g, float* buf, const cpu::SgdParams& s);
void adam_update(std::int64_t n, float* p, const float* g, float* m, float* v, const cpu::AdamParams& a);
void rmsprop_update(std::int64_t n, float* p, const float* g, float* v, float* buf, const cpu::RmspropParams& r);

}  // namespace detdl::gpu
