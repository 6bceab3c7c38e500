// Pieces of ops that the fused ops (engine/ops/conv_pool.cpp) share with the ops they fuse:
// each op's checks and shape, and the autograd node it records. A fused op computes its
// outputs its own way and records exactly the nodes of the ops in turn, so its gradients,
// their draws at `emulated` and the tape are theirs.
#pragma once
#include "engine/ops/ops.h"
#include "kernels/common/shapes.h"

namespace detdl::ops::parts {

// conv2d's checks (ranks, devices into *dev, channels, bias shape) and its shape.
Conv2dShape conv2d_shape_of(const Tensor& x, const Tensor& w, const Tensor& b,
                            const Conv2dOptions& o, Device* dev);
// conv2d's node: y = conv2d(x, w, b) with shape s on dev.
void record_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dShape& s,
                   Device dev, const Tensor& y);

// The pools' checks (rank, dtype; `what` names the input) and shape.
Pool2dShape pool_shape(const Tensor& x, const Pool2dOptions& o, const char* what);
// relu_max_pool2d's node (CPU): y and argmax of relu_max_pool2d(x) with shape s.
void record_relu_max_pool2d(const Pool2dShape& s, const Tensor& x, const Tensor& y,
                            const Tensor& argmax);

}  // namespace detdl::ops::parts
