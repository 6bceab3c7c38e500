// Reshape, flatten and concatenation: pure data movement, exact in both directions.
#include <cstring>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/cuda_backend.h"
#include "engine/ops/ops.h"

namespace detdl::ops {
namespace {

// `rows` blocks of `width` floats from src (row stride src_stride floats) to dst (row
// stride dst_stride floats), on `dev`.
void copy_blocks(Device dev, std::int64_t rows, std::int64_t width, const float* src,
                 std::int64_t src_stride, float* dst, std::int64_t dst_stride) {
  if (dev == Device::cuda) {
    gpu::copy_rows(rows, static_cast<std::size_t>(width) * sizeof(float), src,
                   static_cast<std::size_t>(src_stride) * sizeof(float), dst,
                   static_cast<std::size_t>(dst_stride) * sizeof(float));
    return;
  }
  for (std::int64_t r = 0; r < rows; ++r)
    std::memcpy(dst + r * dst_stride, src + r * src_stride,
                static_cast<std::size_t>(width) * sizeof(float));
}

}  // namespace

Tensor reshape(const Tensor& x, Shape shape) {
  Tensor y = x.view(std::move(shape));
  record(OpKind::reshape, {x}, y,
         [in = x.shape()](const Tensor& g) { return std::vector<Tensor>{g.view(in)}; });
  return y;
}

Tensor flatten(const Tensor& x) {
  if (x.ndim() < 1)
    throw std::invalid_argument("flatten: needs at least one dimension (the batch)");
  return reshape(x, {x.dim(0), -1});
}

Tensor concat(const std::vector<Tensor>& xs, int axis) {
  if (xs.empty()) throw std::invalid_argument("concat: no tensors");
  const int nd = xs[0].ndim();
  if (axis < 0) axis += nd;
  if (axis < 0 || axis >= nd) throw std::invalid_argument("concat: axis out of range");
  const Device dev = xs[0].device();
  Shape out = xs[0].shape();
  out[axis] = 0;
  for (const auto& t : xs) {
    check_dtype(t, DType::f32, "concat");
    if (t.device() != dev)
      throw std::invalid_argument("concat: inputs on different devices; move them with to()");
    if (t.ndim() != nd) throw std::invalid_argument("concat: tensors of different ranks");
    for (int d = 0; d < nd; ++d)
      if (d != axis && t.dim(d) != xs[0].dim(d))
        throw std::invalid_argument("concat: shape " + shape_str(t.shape()) + " does not match " +
                                    shape_str(xs[0].shape()) + " outside axis " +
                                    std::to_string(axis));
    out[axis] += t.dim(axis);
  }
  // outer = product of dims before axis; each tensor contributes a block of dim(axis)*inner.
  std::int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= out[d];
  for (int d = axis + 1; d < nd; ++d) inner *= out[d];
  Tensor y = Tensor::empty_on(dev, out);
  std::int64_t offset = 0;
  std::vector<std::int64_t> widths;
  for (const auto& t : xs) {
    const std::int64_t w = t.dim(axis) * inner;
    copy_blocks(dev, outer, w, t.data_f32(), w, y.data_f32() + offset, out[axis] * inner);
    offset += w;
    widths.push_back(w);
  }
  std::vector<Shape> shapes;
  for (const auto& t : xs) shapes.push_back(t.shape());
  record(OpKind::concat, xs, y,
         [shapes, widths, outer, total = out[axis] * inner, dev](const Tensor& g) {
           std::vector<Tensor> gs;
           std::int64_t off = 0;
           for (std::size_t i = 0; i < shapes.size(); ++i) {
             Tensor gi = Tensor::empty_on(dev, shapes[i]);
             copy_blocks(dev, outer, widths[i], g.data_f32() + off, total, gi.data_f32(),
                         widths[i]);
             off += widths[i];
             gs.push_back(gi);
           }
           return gs;
         });
  return y;
}

}  // namespace detdl::ops
