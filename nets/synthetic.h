// Generated data sets, drawn from Philox (RandomStream::synthetic) so that every machine
// builds the same bytes: Gaussian blobs for MLPs and small class-patterned images for CNNs.
#pragma once
#include <cstdint>

#include "engine/dataset.h"

namespace detdl::nets {

// n points in `features` dimensions around `classes` centres (centres uniform in
// [-2, 2]^features, unit-variance noise scaled by `spread`). y: int32 labels (n).
Dataset make_blobs(std::int64_t n, std::int64_t features, std::int64_t classes, float spread,
                   std::uint64_t seed);

// n images (n, channels, size, size): class c is a bright bar at a class-dependent
// position/orientation plus noise. y: int32 labels (n). Up to 2*size classes every class has
// its own bar; beyond that (up to 4*size, e.g. 100 classes on 32x32 for CIFAR-100-shaped
// data) neighbouring classes share a bar: still a valid data set, just not fully learnable.
Dataset make_bar_images(std::int64_t n, std::int64_t channels, std::int64_t size,
                        std::int64_t classes, std::uint64_t seed);

}  // namespace detdl::nets
