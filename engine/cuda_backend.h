// The engine's door to the CUDA kernels (kernels/cuda/). Ops, the optimizer and autograd
// call these when their tensors live on Device::cuda (an op picks own kernel or vendor in
// engine/ops/dispatch.h); every kernel entry is one line of engine/cuda_door.def with the
// signature of its kernels/cuda/ counterpart minus the stream: the engine runs all
// device work, copies included, in order on the default stream, so a host read after a
// copy sees every earlier kernel's result and a freed block can be reused at once.
//
// Defined in engine/cuda/backend.cpp when detdl is built with CUDA (DETDL_HAVE_CUDA);
// otherwise engine/cuda_backend_stub.cpp defines them all to throw "built without CUDA"
// (both expand the same list), so this header (and every op) compiles the same in both
// builds. No CUDA header is
// included here. Pointers are device pointers.
#pragma once
#include <cstddef>
#include <cstdint>

#include "engine/allocator.h"
#include "kernels/common/activation.h"
#include "kernels/common/batchnorm_fma.h"
#include "kernels/common/binary_op.h"
#include "kernels/common/conv_plan.h"
#include "kernels/common/cross_entropy.h"
#include "kernels/common/level.h"
#include "kernels/common/loss_form.h"
#include "kernels/common/reduce_shape.h"
#include "kernels/common/optim_formulas.h"
#include "kernels/common/optim_params.h"
#include "kernels/common/pool_scatter.h"
#include "kernels/common/shapes.h"
#include "kernels/common/split_k_plan.h"

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

// Every kernel entry, declared from the one list (engine/cuda_door.def: signature, shapes,
// which kernels/cuda/ header holds the kernel).
#define DETDL_CUDA_DOOR(ret, name, params, args) ret name params;
#include "engine/cuda_door.def"
#undef DETDL_CUDA_DOOR

}  // namespace detdl::gpu
