// Host mode (docs/gpu.md): the CUDA runtime header as the C++ compiler sees it. This
// directory is on the include path only in a -DDETDL_CUDA_HOST=ON build, where every
// `#include <cuda_runtime.h>` of kernels/cuda/, engine/cuda/ and tests/gpu/ lands here.
#pragma once
#include "kernels/cuda/host/runtime.h"
