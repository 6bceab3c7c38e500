// The element-wise binary maps the engine's arithmetic ops use (engine/ops/arith.cpp), named
// once for both sides: the CUDA kernel (kernels/cuda/arith.h) switches on it, and the engine
// passes it through its device door (engine/cuda_door.def) without translating.
#pragma once
#include <cstdint>

namespace detdl {

enum class BinaryOp : std::uint8_t { add, sub, mul };  // y[i] = a[i] op b[i]

}  // namespace detdl
