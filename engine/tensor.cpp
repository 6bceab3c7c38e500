#include "engine/tensor.h"

#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>
#include <cstring>
#include <new>
#include <sstream>
#include <stdexcept>

#include "engine/cuda_backend.h"

namespace detdl {

std::string_view device_name(Device d) { return d == Device::cpu ? "cpu" : "cuda"; }
std::string_view dtype_name(DType t) { return t == DType::f32 ? "float32" : "int32"; }

namespace {
// Keeps freed blocks by size and hands them out again: a training step allocates the same
// sizes every step, so after the first step no block comes from the system. Large fresh
// blocks would otherwise be new mmap'ed pages, which the kernel zeroes on first touch (a
// tenth of a LeNet-5 step's time before this cache). Contents of a reused block are
// whatever it held: every kernel writes its whole output (Tensor::empty's contract).
class CpuAllocator final : public Allocator {
 public:
  void* allocate(std::size_t bytes) override {
    // 64-byte alignment: whole cache lines, aligned AVX loads.
    const std::size_t rounded = bytes == 0 ? 64 : (bytes + 63) / 64 * 64;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(rounded);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= rounded;
        return p;
      }
    }
    void* p = std::aligned_alloc(64, rounded);
    if (!p) {
      release_cache();  // memory held in the cache is better given back than failing
      p = std::aligned_alloc(64, rounded);
      if (!p) throw std::bad_alloc();
    }
    return p;
  }
  void deallocate(void* p, std::size_t bytes) override {
    if (!p) return;
    const std::size_t rounded = bytes == 0 ? 64 : (bytes + 63) / 64 * 64;
    std::lock_guard<std::mutex> lock(mu_);
    if (cached_ + rounded > kMaxCached) {
      std::free(p);
      return;
    }
    free_[rounded].push_back(p);
    cached_ += rounded;
  }
  Device device() const override { return Device::cpu; }

 private:
  static constexpr std::size_t kMaxCached = std::size_t{1} << 30;  // 1 GiB of idle blocks at most
  void release_cache() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [size, blocks] : free_)
      for (void* b : blocks) std::free(b);
    free_.clear();
    cached_ = 0;
  }
  std::mutex mu_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  std::size_t cached_ = 0;
};
}  // namespace

Allocator& cpu_allocator() {
  // Never destroyed: tensors held by other statics (the data set cache of
  // nets/data/registry.cpp, kernels' scratch) are freed from the exit handlers, in an order
  // across translation units that nothing fixes, and each Storage hands its block back to
  // this allocator. A leaked singleton outlives every one of them; the blocks it still
  // caches go back to the system with the process.
  static CpuAllocator* const a = new CpuAllocator;
  return *a;
}

Allocator& allocator_for(Device d) { return d == Device::cpu ? cpu_allocator() : gpu::allocator(); }

Device parse_device(std::string_view s, const char* what) {
  if (s == "cpu") return Device::cpu;
  if (s == "cuda") return Device::cuda;
  throw std::invalid_argument(std::string(what) + ": unknown device '" + std::string(s) +
                              "' (expected cpu or cuda)");
}

namespace {
// Copies `bytes` from src (on device `from`) to dst (on device `to`).
void copy_between(void* dst, Device to, const void* src, Device from, std::size_t bytes) {
  if (bytes == 0) return;
  if (from == Device::cpu && to == Device::cpu)
    std::memcpy(dst, src, bytes);
  else if (from == Device::cpu)
    gpu::copy_to_device(dst, src, bytes);
  else if (to == Device::cpu)
    gpu::copy_to_host(dst, src, bytes);
  else
    gpu::copy_on_device(dst, src, bytes);
}

void check_host(const Tensor& t, const char* what) {
  if (t.device() != Device::cpu)
    throw std::invalid_argument(
        std::string(what) + " of a tensor on " + std::string(device_name(t.device())) +
        ": copy it to the host with to(Device::cpu), or use data_f32() / data_i32() for "
        "the device pointer");
}
}  // namespace

Storage::Storage(std::size_t nbytes, Allocator& alloc)
    : data(alloc.allocate(nbytes)), bytes(nbytes), allocator(&alloc) {}
Storage::~Storage() { allocator->deallocate(data, bytes); }

std::string shape_str(const Shape& s) {
  std::ostringstream o;
  o << '[';
  for (std::size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << ']';
  return o.str();
}

std::int64_t shape_numel(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Allocator& a) {
  for (auto d : shape)
    if (d < 0)
      throw std::invalid_argument("tensor shape " + shape_str(shape) + " has a negative size");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(shape_numel(shape) * dtype_size(dtype), a);
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {  // on the host
  Tensor t = empty(shape, dtype);
  std::memset(t.impl().storage->data, 0, t.impl().storage->bytes);
  return t;
}

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape);
  float* p = t.f32();
  for (std::int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = value;
  return t;
}

Tensor Tensor::from_vector(const Shape& shape, const std::vector<float>& values) {
  if (shape_numel(shape) != static_cast<std::int64_t>(values.size()))
    throw std::invalid_argument("from_vector: shape " + shape_str(shape) + " needs " +
                                std::to_string(shape_numel(shape)) + " values, got " +
                                std::to_string(values.size()));
  Tensor t = empty(shape);
  if (!values.empty()) std::memcpy(t.f32(), values.data(), values.size() * sizeof(float));
  return t;
}

Tensor Tensor::from_vector_i32(const Shape& shape, const std::vector<std::int32_t>& values) {
  if (shape_numel(shape) != static_cast<std::int64_t>(values.size()))
    throw std::invalid_argument("from_vector_i32: shape " + shape_str(shape) + " needs " +
                                std::to_string(shape_numel(shape)) + " values, got " +
                                std::to_string(values.size()));
  Tensor t = empty(shape, DType::i32);
  if (!values.empty()) std::memcpy(t.i32(), values.data(), values.size() * sizeof(std::int32_t));
  return t;
}

TensorImpl& Tensor::impl() const {
  if (!impl_) throw std::logic_error("use of an undefined tensor");
  return *impl_;
}

std::int64_t Tensor::dim(int i) const {
  const int n = ndim();
  const int j = i < 0 ? i + n : i;
  if (j < 0 || j >= n)
    throw std::out_of_range("dim " + std::to_string(i) + " of a tensor of shape " +
                            shape_str(shape()));
  return shape()[j];
}

float* Tensor::f32() {
  check_dtype(*this, DType::f32, "f32()");
  check_host(*this, "f32()");
  return static_cast<float*>(impl().storage->data);
}
const float* Tensor::f32() const {
  check_dtype(*this, DType::f32, "f32()");
  check_host(*this, "f32()");
  return static_cast<const float*>(impl().storage->data);
}
std::int32_t* Tensor::i32() {
  check_dtype(*this, DType::i32, "i32()");
  check_host(*this, "i32()");
  return static_cast<std::int32_t*>(impl().storage->data);
}
const std::int32_t* Tensor::i32() const {
  check_dtype(*this, DType::i32, "i32()");
  check_host(*this, "i32()");
  return static_cast<const std::int32_t*>(impl().storage->data);
}
float* Tensor::data_f32() const {
  check_dtype(*this, DType::f32, "data_f32()");
  return static_cast<float*>(impl().storage->data);
}
std::int32_t* Tensor::data_i32() const {
  check_dtype(*this, DType::i32, "data_i32()");
  return static_cast<std::int32_t*>(impl().storage->data);
}

float Tensor::item() const {
  if (numel() != 1)
    throw std::invalid_argument("item() of a tensor of shape " + shape_str(shape()));
  check_dtype(*this, DType::f32, "item()");
  float v = 0.0f;
  copy_between(&v, Device::cpu, impl().storage->data, device(), sizeof v);
  return v;
}

Tensor Tensor::to(Device d) const {
  if (device() == d) return *this;
  Tensor t = empty(shape(), dtype(), allocator_for(d));
  copy_between(t.impl().storage->data, d, impl().storage->data, device(),
               numel() * dtype_size(dtype()));
  return t;
}

void Tensor::move_to(Device d) {
  if (device() == d) return;
  auto storage = std::make_shared<Storage>(numel() * dtype_size(dtype()), allocator_for(d));
  copy_between(storage->data, d, impl().storage->data, device(), numel() * dtype_size(dtype()));
  impl().storage = std::move(storage);
  impl().grad.reset();
}

Tensor Tensor::view(Shape shape) const {
  std::int64_t known = 1;
  int infer = -1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0)
        throw std::invalid_argument("view " + shape_str(shape) + ": more than one -1");
      infer = static_cast<int>(i);
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0 && known > 0) shape[infer] = numel() / known;
  if (shape_numel(shape) != numel())
    throw std::invalid_argument("view: cannot view shape " + shape_str(this->shape()) + " as " +
                                shape_str(shape));
  auto impl2 = std::make_shared<TensorImpl>();
  impl2->storage = impl().storage;
  impl2->shape = std::move(shape);
  impl2->dtype = dtype();
  return Tensor(std::move(impl2));
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape(), dtype(), allocator_for(device()));
  copy_between(t.impl().storage->data, device(), impl().storage->data, device(),
               numel() * dtype_size(dtype()));
  return t;
}

std::vector<float> Tensor::to_vector() const {
  check_dtype(*this, DType::f32, "to_vector()");
  std::vector<float> v(static_cast<std::size_t>(numel()));
  copy_between(v.data(), Device::cpu, impl().storage->data, device(), v.size() * sizeof(float));
  return v;
}

Tensor& Tensor::set_requires_grad(bool on) {
  impl().requires_grad = on;
  return *this;
}

void check_shape(const Tensor& t, const Shape& expected, const char* what) {
  if (t.shape() != expected)
    throw std::invalid_argument(std::string(what) + ": expected shape " + shape_str(expected) +
                                ", got " + shape_str(t.shape()));
}
void check_ndim(const Tensor& t, int ndim, const char* what) {
  if (t.ndim() != ndim)
    throw std::invalid_argument(std::string(what) + ": expected a " + std::to_string(ndim) +
                                "-d tensor, got shape " + shape_str(t.shape()));
}
void check_dtype(const Tensor& t, DType dtype, const char* what) {
  if (t.dtype() != dtype)
    throw std::invalid_argument(std::string(what) + ": expected " + std::string(dtype_name(dtype)) +
                                ", got " + std::string(dtype_name(t.dtype())));
}

Device same_device(std::initializer_list<Tensor> ts, const char* what) {
  bool seen = false;
  Device d = Device::cpu;
  for (const Tensor& t : ts) {
    if (!t.defined()) continue;
    if (seen && t.device() != d)
      throw std::invalid_argument(std::string(what) + ": inputs on different devices (" +
                                  std::string(device_name(d)) + " and " +
                                  std::string(device_name(t.device())) + "); move them with to()");
    d = t.device();
    seen = true;
  }
  return d;
}

}  // namespace detdl
