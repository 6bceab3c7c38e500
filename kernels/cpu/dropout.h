// Inverted dropout on the CPU.
//
// Draws (kernels/common/philox.h): element i is kept iff
//   u_i = philox_uniform(seed, RandomStream::dropout, sub, index_base + i) >= p,
// so P(keep) = 1 - ceil(p * 2^24) / 2^24 (u is a multiple of 2^-24 in [0, 1)). The
// Philox counter is (word0, word1) = (index_base + i) / 4 as 64 bits, word2 = sub,
// word3 = RandomStream::dropout; the key is the 64-bit seed; draw j is word j % 4 of its
// block. The engine passes sub = the dropout layer's number within the step and
// index_base = step << 36 (engine/ops/dropout.cpp). A mask therefore depends only on
// (seed, sub, index): never on threads, batch composition or device. The kernel computes
// each Philox block once and uses its four words (same bits as philox_uniform per index).
//
// Values: scale = 1.0f / (1.0f - p), computed once; kept y = x * scale, dropped y = +0.0f
// (not x * 0: an inf or NaN in a dropped element does not leak into y). p == 0 copies x
// (no multiply) and keeps every element. Element-wise: no Level, no thread dependence.
#pragma once
#include <cstdint>

namespace detdl::cpu {

// p must be in [0, 1): std::invalid_argument otherwise. mask may be nullptr.
void dropout_forward(std::uint64_t seed, std::uint32_t sub, std::uint64_t index_base, float p,
                     std::int64_t n,
                     const float* x,       // (n)
                     float* y,             // (n)
                     std::uint8_t* mask);  // (n) 1 kept, 0 dropped; or nullptr

// dx = mask ? dy * scale : +0.0f (p == 0: dx = dy), scale as in the forward.
void dropout_backward(float p, std::int64_t n,
                      const float* dy,           // (n)
                      const std::uint8_t* mask,  // (n) from dropout_forward
                      float* dx);                // (n)

}  // namespace detdl::cpu
