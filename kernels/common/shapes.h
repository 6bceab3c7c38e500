// Shapes of the windowed ops (convolution, pooling) and the integer helpers they need,
// shared by the CPU kernels (kernels/cpu/conv.h, pool.h), the CUDA kernels
// (kernels/cuda/conv.h, pool.h, vendor_cudnn.h) and the engine, so the CUDA side includes
// no kernels/cpu/ header. Host code only. A window is described by its output size and its
// top/left padding; positions past the input are padding (that covers any bottom/right
// padding, e.g. Keras 'same' with stride 2 pads 0 before and 1 after).
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace detdl {

// Division rounding toward -inf / +inf; b > 0 (C++ division rounds toward zero).
inline std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}
inline std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return floor_div(a + b - 1, b); }

// Throws std::invalid_argument "<where>: <field> must be <what>, got <got>" unless ok. Plain
// C strings: a std::string parameter built one from each literal on every call, passing or
// not, a few hundred cycles per check of a shape (per sample, where a kernel runs by samples).
inline void require_field(bool ok, const char* where, const char* field, const char* what,
                          std::int64_t got) {
  if (!ok)
    throw std::invalid_argument(std::string(where) + ": " + field + " must be " + what + ", got " +
                                std::to_string(got));
}

// ---- convolution: NCHW input, (O, C, KH, KW) weights ----

struct Conv2dShape {
  std::int64_t N, C, H, W;  // input
  std::int64_t O, KH, KW;   // output channels, kernel
  std::int64_t stride_h, stride_w;
  std::int64_t pad_top, pad_left;  // zeros before row 0 / col 0
  std::int64_t OH, OW;             // output size; positions past the input read zeros
};

// Throws std::invalid_argument naming the field when a size or stride is < 1 or a padding
// is < 0. Every convolution kernel (CPU, CUDA, cuDNN) calls it.
inline void check_conv2d_shape(const Conv2dShape& s) {
  const char* where = "conv2d";
  require_field(s.N >= 1, where, "N", ">= 1", s.N);
  require_field(s.C >= 1, where, "C", ">= 1", s.C);
  require_field(s.H >= 1, where, "H", ">= 1", s.H);
  require_field(s.W >= 1, where, "W", ">= 1", s.W);
  require_field(s.O >= 1, where, "O", ">= 1", s.O);
  require_field(s.KH >= 1, where, "KH", ">= 1", s.KH);
  require_field(s.KW >= 1, where, "KW", ">= 1", s.KW);
  require_field(s.stride_h >= 1, where, "stride_h", ">= 1", s.stride_h);
  require_field(s.stride_w >= 1, where, "stride_w", ">= 1", s.stride_w);
  require_field(s.pad_top >= 0, where, "pad_top", ">= 0", s.pad_top);
  require_field(s.pad_left >= 0, where, "pad_left", ">= 0", s.pad_left);
  require_field(s.OH >= 1, where, "OH", ">= 1", s.OH);
  require_field(s.OW >= 1, where, "OW", ">= 1", s.OW);
}

// Symmetric padding, PyTorch sizes: OH = (H + 2*pad - KH) / stride + 1 (floor).
inline Conv2dShape conv2d_shape(std::int64_t N, std::int64_t C, std::int64_t H, std::int64_t W,
                                std::int64_t O, std::int64_t KH, std::int64_t KW,
                                std::int64_t stride, std::int64_t pad) {
  const char* where = "conv2d";
  require_field(stride >= 1, where, "stride", ">= 1", stride);
  require_field(pad >= 0, where, "pad", ">= 0", pad);
  require_field(KH >= 1 && H + 2 * pad >= KH, where, "KH", "in [1, H + 2*pad]", KH);
  require_field(KW >= 1 && W + 2 * pad >= KW, where, "KW", "in [1, W + 2*pad]", KW);
  const Conv2dShape s{N,
                      C,
                      H,
                      W,
                      O,
                      KH,
                      KW,
                      stride,
                      stride,
                      pad,
                      pad,
                      (H + 2 * pad - KH) / stride + 1,
                      (W + 2 * pad - KW) / stride + 1};
  check_conv2d_shape(s);
  return s;
}

// Keras/TensorFlow 'same': OH = ceil(H / stride), pad_total = max((OH-1)*stride + KH - H, 0),
// pad_top = pad_total / 2 (the odd one goes to the bottom); likewise for W.
inline Conv2dShape conv2d_shape_same(std::int64_t N, std::int64_t C, std::int64_t H, std::int64_t W,
                                     std::int64_t O, std::int64_t KH, std::int64_t KW,
                                     std::int64_t stride) {
  const char* where = "conv2d";
  require_field(stride >= 1, where, "stride", ">= 1", stride);
  require_field(H >= 1, where, "H", ">= 1", H);
  require_field(W >= 1, where, "W", ">= 1", W);
  const std::int64_t OH = (H + stride - 1) / stride, OW = (W + stride - 1) / stride;
  const std::int64_t pad_h = std::max<std::int64_t>((OH - 1) * stride + KH - H, 0);
  const std::int64_t pad_w = std::max<std::int64_t>((OW - 1) * stride + KW - W, 0);
  const Conv2dShape s{N, C, H, W, O, KH, KW, stride, stride, pad_h / 2, pad_w / 2, OH, OW};
  check_conv2d_shape(s);
  return s;
}

// Keras/TensorFlow 'valid' (no padding): OH = (H - KH) / stride + 1.
inline Conv2dShape conv2d_shape_valid(std::int64_t N, std::int64_t C, std::int64_t H,
                                      std::int64_t W, std::int64_t O, std::int64_t KH,
                                      std::int64_t KW, std::int64_t stride) {
  const char* where = "conv2d";
  require_field(stride >= 1, where, "stride", ">= 1", stride);
  require_field(KH >= 1 && KH <= H, where, "KH", "in [1, H]", KH);
  require_field(KW >= 1 && KW <= W, where, "KW", "in [1, W]", KW);
  const Conv2dShape s{
      N, C, H, W, O, KH, KW, stride, stride, 0, 0, (H - KH) / stride + 1, (W - KW) / stride + 1};
  check_conv2d_shape(s);
  return s;
}

// ---- pooling: NCHW ----

struct Pool2dShape {
  std::int64_t N, C, H, W;  // input (and output channels)
  std::int64_t KH, KW;      // window
  std::int64_t stride_h, stride_w;
  std::int64_t pad_top, pad_left;  // padding before row 0 / col 0
  std::int64_t OH, OW;             // output size; window positions past the input are padding
};

// Throws std::invalid_argument naming the field when a size or stride is < 1, a padding
// is < 0, or H*W does not fit the int32 argmax. Every pooling kernel calls it.
inline void check_pool2d_shape(const Pool2dShape& s) {
  const char* where = "pool2d";
  require_field(s.N >= 1, where, "N", ">= 1", s.N);
  require_field(s.C >= 1, where, "C", ">= 1", s.C);
  require_field(s.H >= 1, where, "H", ">= 1", s.H);
  require_field(s.W >= 1, where, "W", ">= 1", s.W);
  require_field(s.H * s.W <= std::numeric_limits<std::int32_t>::max(), where, "H*W",
                "<= 2^31-1 (int32 argmax)", s.H * s.W);
  require_field(s.KH >= 1, where, "KH", ">= 1", s.KH);
  require_field(s.KW >= 1, where, "KW", ">= 1", s.KW);
  require_field(s.stride_h >= 1, where, "stride_h", ">= 1", s.stride_h);
  require_field(s.stride_w >= 1, where, "stride_w", ">= 1", s.stride_w);
  require_field(s.pad_top >= 0, where, "pad_top", ">= 0", s.pad_top);
  require_field(s.pad_left >= 0, where, "pad_left", ">= 0", s.pad_left);
  require_field(s.OH >= 1, where, "OH", ">= 1", s.OH);
  require_field(s.OW >= 1, where, "OW", ">= 1", s.OW);
}

// Symmetric padding, PyTorch sizes (floor mode): OH = (H + 2*pad - KH) / stride + 1.
inline Pool2dShape pool2d_shape(std::int64_t N, std::int64_t C, std::int64_t H, std::int64_t W,
                                std::int64_t KH, std::int64_t KW, std::int64_t stride,
                                std::int64_t pad) {
  const char* where = "pool2d_shape";
  require_field(stride >= 1, where, "stride", ">= 1", stride);
  require_field(pad >= 0, where, "pad", ">= 0", pad);
  require_field(KH >= 1 && H + 2 * pad >= KH, where, "KH", "in [1, H + 2*pad]", KH);
  require_field(KW >= 1 && W + 2 * pad >= KW, where, "KW", "in [1, W + 2*pad]", KW);
  const Pool2dShape s{N,
                      C,
                      H,
                      W,
                      KH,
                      KW,
                      stride,
                      stride,
                      pad,
                      pad,
                      (H + 2 * pad - KH) / stride + 1,
                      (W + 2 * pad - KW) / stride + 1};
  check_pool2d_shape(s);
  return s;
}

// Keras/TensorFlow 'same': OH = ceil(H / stride), pad_total = max((OH-1)*stride + KH - H, 0),
// pad_top = pad_total / 2; likewise for W.
inline Pool2dShape pool2d_shape_same(std::int64_t N, std::int64_t C, std::int64_t H, std::int64_t W,
                                     std::int64_t KH, std::int64_t KW, std::int64_t stride) {
  const char* where = "pool2d_shape_same";
  require_field(stride >= 1, where, "stride", ">= 1", stride);
  require_field(H >= 1, where, "H", ">= 1", H);
  require_field(W >= 1, where, "W", ">= 1", W);
  const std::int64_t OH = ceil_div(H, stride), OW = ceil_div(W, stride);
  const std::int64_t pad_h = std::max<std::int64_t>((OH - 1) * stride + KH - H, 0);
  const std::int64_t pad_w = std::max<std::int64_t>((OW - 1) * stride + KW - W, 0);
  const Pool2dShape s{N, C, H, W, KH, KW, stride, stride, pad_h / 2, pad_w / 2, OH, OW};
  check_pool2d_shape(s);
  return s;
}

// Keras/TensorFlow 'valid' (no padding): OH = (H - KH) / stride + 1.
inline Pool2dShape pool2d_shape_valid(std::int64_t N, std::int64_t C, std::int64_t H,
                                      std::int64_t W, std::int64_t KH, std::int64_t KW,
                                      std::int64_t stride) {
  const char* where = "pool2d_shape_valid";
  require_field(stride >= 1, where, "stride", ">= 1", stride);
  require_field(KH >= 1 && KH <= H, where, "KH", "in [1, H]", KH);
  require_field(KW >= 1 && KW <= W, where, "KW", "in [1, W]", KW);
  const Pool2dShape s{
      N, C, H, W, KH, KW, stride, stride, 0, 0, (H - KH) / stride + 1, (W - KW) / stride + 1};
  check_pool2d_shape(s);
  return s;
}

}  // namespace detdl
