// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11),
// the counter-based generator behind every random draw of the engine. Same code on the
// host and the device; tests check the Random123 known answers (../shared/vectors).
#pragma once
#include <cstdint>

#include "kernels/common/hd.h"

namespace detdl {

struct Philox4 {
  std::uint32_t v[4];
};

DETDL_HD void philox_mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi,
                             std::uint32_t& lo) {
  const std::uint64_t p = static_cast<std::uint64_t>(a) * b;
  hi = static_cast<std::uint32_t>(p >> 32);
  lo = static_cast<std::uint32_t>(p);
}

// One block of four 32-bit outputs for a 128-bit counter and a 64-bit key.
DETDL_HD Philox4 philox4x32_10(Philox4 ctr, std::uint32_t k0, std::uint32_t k1) {
  constexpr std::uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  constexpr std::uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += W0;
      k1 += W1;
    }
    std::uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(M0, ctr.v[0], hi0, lo0);
    philox_mulhilo(M1, ctr.v[2], hi1, lo1);
    ctr = Philox4{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
  }
  return ctr;
}

// The sources of randomness; each has its own stream so a study can fix or vary each one
// alone (docs/determinism.md, "Randomness").
enum class RandomStream : std::uint32_t {
  init = 1,         // sub = parameter index,         index = element index
  data_order = 2,   // sub = epoch,                   index = position in the permutation
  augment = 3,      // sub = epoch,                   index = sample * 4 + draw
  dropout = 4,      // sub = layer within the step,   index = (step << 36) + element index
  label_noise = 5,  // sub = 0,                       index = sample * 4 + draw
  synthetic = 6,    // generated data sets
  split = 7,        // sub = 0,                       index = position in the split permutation
  impl = 8,         // sub = family << 24 | place,    index = see impl_choice.h (emulated level)
  input_noise = 9,  // sub = epoch,                   index = sample * row elements + element
  repair = 10,      // sub = solution * 16 + try,     index = draw (the doctor's choices)
  test = 15,
};

// Counter layout: word0/word1 = index / 4 (64 bits), word2 = sub, word3 = stream;
// key = the source's 64-bit seed. Draw `index` is word (index % 4) of its block, so a draw
// depends only on (seed, stream, sub, index): never on threads, batch or device.
// The block of four draws that holds draws 4 * block .. 4 * block + 3 (for loops that take
// consecutive draws: one block computed per four).
DETDL_HD Philox4 philox_block(std::uint64_t seed, RandomStream stream, std::uint32_t sub,
                              std::uint64_t block) {
  return philox4x32_10(
      Philox4{{static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32), sub,
               static_cast<std::uint32_t>(stream)}},
      static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
}

DETDL_HD std::uint32_t philox_u32(std::uint64_t seed, RandomStream stream, std::uint32_t sub,
                                  std::uint64_t index) {
  return philox_block(seed, stream, sub, index >> 2).v[index & 3];
}

// Uniform in [0, 1): the top 24 bits, exactly representable.
DETDL_HD float philox_uniform(std::uint64_t seed, RandomStream stream, std::uint32_t sub,
                              std::uint64_t index) {
  return static_cast<float>(philox_u32(seed, stream, sub, index) >> 8) * 0x1p-24f;
}

// Uniform in (0, 1]: for logarithms.
DETDL_HD float philox_uniform_open0(std::uint64_t seed, RandomStream stream, std::uint32_t sub,
                                    std::uint64_t index) {
  return static_cast<float>((philox_u32(seed, stream, sub, index) >> 8) + 1u) * 0x1p-24f;
}

}  // namespace detdl
