// Tensor: a row-major, contiguous array of float32 or int32 on a device, with the autograd
// fields the tape needs. A Tensor is a cheap handle (shared_ptr) to its TensorImpl; copies
// alias the same storage. reshape() aliases too; clone() copies.
//
// The device is the storage's allocator's (Allocator::device()). Host accessors (f32(),
// i32()) throw for a CUDA tensor; item() and to_vector() copy to the host, which is their
// meaning; data_f32() / data_i32() give the raw pointer on any device (for kernels).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "engine/allocator.h"

namespace detdl {

enum class DType : std::uint8_t { f32, i32 };
std::string_view dtype_name(DType t);
inline std::size_t dtype_size(DType) { return 4; }

using Shape = std::vector<std::int64_t>;
std::string shape_str(const Shape& s);
std::int64_t shape_numel(const Shape& s);

// Raw memory of one allocation; freed through the allocator that made it.
struct Storage {
  void* data = nullptr;
  std::size_t bytes = 0;
  Allocator* allocator = nullptr;
  Storage(std::size_t nbytes, Allocator& alloc);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

class Tensor;
struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  DType dtype = DType::f32;
  bool requires_grad = false;  // a leaf the user asked gradients for, or an op output on the tape
  std::shared_ptr<TensorImpl> grad;  // filled by backward (see engine/autograd.h for the rule)
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Creation. All are contiguous, row-major, on the CPU unless an allocator is given.
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Allocator& a = cpu_allocator());
  static Tensor empty_on(Device d, const Shape& shape, DType dtype = DType::f32) {
    return empty(shape, dtype, allocator_for(d));
  }
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32);
  static Tensor full(const Shape& shape, float value);
  static Tensor from_vector(const Shape& shape, const std::vector<float>& values);
  static Tensor from_vector_i32(const Shape& shape, const std::vector<std::int32_t>& values);
  static Tensor scalar(float value) { return full({}, value); }

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int ndim() const { return static_cast<int>(impl().shape.size()); }
  std::int64_t dim(int i) const;  // negative i counts from the end
  std::int64_t numel() const { return shape_numel(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->allocator->device(); }

  // Host pointers: std::invalid_argument for a tensor that is not on the CPU.
  float* f32();
  const float* f32() const;
  std::int32_t* i32();
  const std::int32_t* i32() const;
  // The raw pointer on the tensor's own device (a device pointer for a CUDA tensor).
  float* data_f32() const;
  std::int32_t* data_i32() const;
  float item() const;  // the value of a one-element float tensor (copied to the host)

  // A copy on `d` (not on the tape, needs no gradient); the tensor itself when it is there.
  Tensor to(Device d) const;
  // Moves this tensor's storage to `d` in place, so every handle to it (a module's fields,
  // the optimizer's list) sees the moved data; views made before the move keep the old
  // storage. The gradient is dropped. For parameters, buffers and optimizer state.
  void move_to(Device d);

  // A view with another shape over the same storage (numel must match; one -1 allowed).
  // Not recorded on the tape: use ops::reshape for a differentiable reshape.
  Tensor view(Shape shape) const;
  Tensor clone() const;  // a copy on the same device that is not on the tape and needs no gradient
  std::vector<float> to_vector() const;  // copied to the host

  // Autograd.
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& set_requires_grad(bool on = true);
  Tensor grad() const { return Tensor(impl().grad); }
  void zero_grad() { impl().grad.reset(); }

  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Throws std::invalid_argument("<what>: expected shape [..], got [..]") on mismatch.
void check_shape(const Tensor& t, const Shape& expected, const char* what);
void check_ndim(const Tensor& t, int ndim, const char* what);
void check_dtype(const Tensor& t, DType dtype, const char* what);
// The device all defined tensors in `ts` share; std::invalid_argument naming `what` when
// they differ (ops never copy between devices implicitly). Device::cpu if none is defined.
Device same_device(std::initializer_list<Tensor> ts, const char* what);

}  // namespace detdl
