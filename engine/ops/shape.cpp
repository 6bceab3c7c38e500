// Reshape, flatten and concatenation: pure data movement, exact in both directions.
#include <cstring>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/ops/ops.h"

namespace detdl::ops {

Tensor reshape(const Tensor& x, Shape shape) {
  Tensor y = x.view(std::move(shape));
  record("reshape", {x}, y, [in = x.shape()](const Tensor& g) {
    return std::vector<Tensor>{g.view(in)};
  });
  return y;
}

Tensor flatten(const Tensor& x) {
  if (x.ndim() < 1) throw std::invalid_argument("flatten: needs at least one dimension (the batch)");
  return reshape(x, {x.dim(0), -1});
}

Tensor concat(const std::vector<Tensor>& xs, int axis) {
  if (xs.empty()) throw std::invalid_argument("concat: no tensors");
  const int nd = xs[0].ndim();
  if (axis < 0) axis += nd;
  if (axis < 0 || axis >= nd) throw std::invalid_argument("concat: axis out of range");
  Shape out = xs[0].shape();
  out[axis] = 0;
  for (const auto& t : xs) {
    check_dtype(t, DType::f32, "concat");
    if (t.ndim() != nd) throw std::invalid_argument("concat: tensors of different ranks");
    for (int d = 0; d < nd; ++d)
      if (d != axis && t.dim(d) != xs[0].dim(d))
        throw std::invalid_argument("concat: shape " + shape_str(t.shape()) + " does not match " +
                                    shape_str(xs[0].shape()) + " outside axis " + std::to_string(axis));
    out[axis] += t.dim(axis);
  }
  // outer = product of dims before axis; each tensor contributes a block of dim(axis)*inner.
  std::int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= out[d];
  for (int d = axis + 1; d < nd; ++d) inner *= out[d];
  Tensor y = Tensor::empty(out);
  std::int64_t offset = 0;
  std::vector<std::int64_t> widths;
  for (const auto& t : xs) {
    const std::int64_t w = t.dim(axis) * inner;
    for (std::int64_t o = 0; o < outer; ++o)
      std::memcpy(y.f32() + o * out[axis] * inner + offset, t.f32() + o * w, w * sizeof(float));
    offset += w;
    widths.push_back(w);
  }
  std::vector<Shape> shapes;
  for (const auto& t : xs) shapes.push_back(t.shape());
  record("concat", xs, y, [shapes, widths, outer, total = out[axis] * inner](const Tensor& g) {
    std::vector<Tensor> gs;
    std::int64_t off = 0;
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      Tensor gi = Tensor::empty(shapes[i]);
      for (std::int64_t o = 0; o < outer; ++o)
        std::memcpy(gi.f32() + o * widths[i], g.f32() + o * total + off, widths[i] * sizeof(float));
      off += widths[i];
      gs.push_back(gi);
    }
    return gs;
  });
  return y;
}

}  // namespace detdl::ops
