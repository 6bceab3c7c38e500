// engine/cuda_backend.h in a build without CUDA: available() is false, require() and
// allocator() throw "built without CUDA", and every kernel entry throws the same (they are
// unreachable: no tensor can be on a CUDA device without allocator()). Compiled empty
// when DETDL_HAVE_CUDA is defined (engine/cuda/backend.cpp defines them then).
#ifndef DETDL_HAVE_CUDA
#include <stdexcept>
#include <string>

#include "engine/cuda_backend.h"

namespace detdl::gpu {
namespace {
[[noreturn]] void no_cuda(const char* what) {
  throw std::runtime_error(std::string(what) +
                           ": detdl was built without CUDA (reconfigure with -DDETDL_CUDA=ON where nvcc is installed)");
}
}  // namespace

bool available() { return false; }
void require(const char* what) { no_cuda(what); }
Allocator& allocator() { no_cuda("a CUDA tensor"); }

void copy_to_device(void*, const void*, std::size_t) { no_cuda("copy_to_device"); }
void copy_to_host(void*, const void*, std::size_t) { no_cuda("copy_to_host"); }
void copy_on_device(void*, const void*, std::size_t) { no_cuda("copy_on_device"); }
void binary_map(Binary, std::int64_t, const float*, const float*, float*) { no_cuda("binary_map"); }
void scale(std::int64_t, const float*, float, float*) { no_cuda("scale"); }
void add_inplace(std::int64_t, float*, const float*) { no_cuda("add_inplace"); }
void add_row_bias(std::int64_t, std::int64_t, float*, const float*) { no_cuda("add_row_bias"); }
void fill(std::int64_t, float, float*) { no_cuda("fill"); }
void copy_rows(std::int64_t, std::size_t, const void*, std::size_t, void*, std::size_t) { no_cuda("copy_rows"); }
void activation_forward(Activation, float, const float*, float*, std::int64_t) { no_cuda("activation_forward"); }
void activation_backward(Activation, float, const float*, const float*, const float*, float*, std::int64_t) {
  no_cuda("activation_backward");
}
void dropout_forward(std::uint64_t, std::uint32_t, std::uint64_t, float, std::int64_t, const float*, float*,
                     std::uint8_t*) {
  no_cuda("dropout_forward");
}
void dropout_backward(float, std::int64_t, const float*, const std::uint8_t*, float*) { no_cuda("dropout_backward"); }
void sgemm(Level, bool, bool, std::int64_t, std::int64_t, std::int64_t, const float*, std::int64_t, const float*,
           std::int64_t, float*, std::int64_t) {
  no_cuda("sgemm");
}
void column_sums(Level, std::int64_t, std::int64_t, const float*, float*) { no_cuda("column_sums"); }
float sum_all(Level, std::int64_t, const float*) { no_cuda("sum_all"); }
void conv2d_forward(Level, const cpu::Conv2dShape&, const float*, const float*, const float*, float*) {
  no_cuda("conv2d_forward");
}
void conv2d_backward_data(Level, const cpu::Conv2dShape&, const float*, const float*, float*) {
  no_cuda("conv2d_backward_data");
}
void conv2d_backward_weight(Level, const cpu::Conv2dShape&, const float*, const float*, float*) {
  no_cuda("conv2d_backward_weight");
}
void conv2d_backward_bias(Level, const cpu::Conv2dShape&, const float*, float*) { no_cuda("conv2d_backward_bias"); }
void maxpool2d_forward(const cpu::Pool2dShape&, const float*, float*, std::int32_t*) { no_cuda("maxpool2d_forward"); }
void maxpool2d_backward(const cpu::Pool2dShape&, const float*, const std::int32_t*, float*) {
  no_cuda("maxpool2d_backward");
}
void avgpool2d_forward(const cpu::Pool2dShape&, bool, const float*, float*) { no_cuda("avgpool2d_forward"); }
void avgpool2d_backward(const cpu::Pool2dShape&, bool, const float*, float*) { no_cuda("avgpool2d_backward"); }
void global_avgpool_forward(std::int64_t, std::int64_t, std::int64_t, const float*, float*) {
  no_cuda("global_avgpool_forward");
}
void global_avgpool_backward(std::int64_t, std::int64_t, std::int64_t, const float*, float*) {
  no_cuda("global_avgpool_backward");
}
void batchnorm_forward_train(Level, std::int64_t, std::int64_t, std::int64_t, const float*, const float*,
                             const float*, float, float*, float*, float*, float*) {
  no_cuda("batchnorm_forward_train");
}
void batchnorm_update_running(std::int64_t, std::int64_t, float, const float*, const float*, float*, float*, bool) {
  no_cuda("batchnorm_update_running");
}
void batchnorm_forward_eval(std::int64_t, std::int64_t, std::int64_t, const float*, const float*, const float*,
                            const float*, const float*, float, float*) {
  no_cuda("batchnorm_forward_eval");
}
void batchnorm_backward(Level, std::int64_t, std::int64_t, std::int64_t, const float*, const float*, const float*,
                        const float*, const float*, float*, float*, float*) {
  no_cuda("batchnorm_backward");
}
// Without CUDA no tensor is on the GPU, so these are never reached; "not done" is the truth.
bool vendor_batchnorm_forward_train(std::int64_t, std::int64_t, std::int64_t, const float*, const float*,
                                    const float*, float, float, bool, float*, float*, float*, float*, float*) {
  return false;
}
bool vendor_batchnorm_backward(std::int64_t, std::int64_t, std::int64_t, const float*, const float*, const float*,
                               const float*, const float*, float, float*, float*, float*) {
  return false;
}
bool vendor_batchnorm_forward_eval(std::int64_t, std::int64_t, std::int64_t, const float*, const float*,
                                   const float*, const float*, const float*, float, float*) {
  return false;
}
void softmax_forward(std::int64_t, std::int64_t, const float*, float*) { no_cuda("softmax_forward"); }
float softmax_cross_entropy(Level, std::int64_t, std::int64_t, const float*, const std::int32_t*, float*, float*) {
  no_cuda("softmax_cross_entropy");
}
float binary_cross_entropy(Level, std::int64_t, const float*, const float*, bool, float*, float*) {
  no_cuda("binary_cross_entropy");
}
float mean_squared_error(Level, std::int64_t, const float*, const float*, float*, float*) {
  no_cuda("mean_squared_error");
}
float l1_penalty(Level, std::int64_t, const float*) { no_cuda("l1_penalty"); }
float l2_penalty(Level, std::int64_t, const float*) { no_cuda("l2_penalty"); }
void l1_penalty_grad_add(std::int64_t, const float*, float, float*) { no_cuda("l1_penalty_grad_add"); }
void l2_penalty_grad_add(std::int64_t, const float*, float, float*) { no_cuda("l2_penalty_grad_add"); }
void sgd_update(std::int64_t, float*, const float*, float*, const cpu::SgdParams&) { no_cuda("sgd_update"); }
void adam_update(std::int64_t, float*, const float*, float*, float*, const cpu::AdamParams&) {
  no_cuda("adam_update");
}
void rmsprop_update(std::int64_t, float*, const float*, float*, float*, const cpu::RmspropParams&) {
  no_cuda("rmsprop_update");
}

}  // namespace detdl::gpu
#endif  // DETDL_HAVE_CUDA
