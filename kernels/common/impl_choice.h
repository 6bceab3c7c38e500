// The `emulated` level's draws: which legitimate implementation an op runs, drawn from the
// impl seed (docs/determinism.md, "emulated").
//
// Real implementations of the same op differ in their arithmetic: another GPU, library
// version or framework picks another split-K factor, convolution algorithm, reduction tree,
// FMA contraction, math library or form of a formula. At `emulated`, each implementation
// family below makes each such choice from a Philox stream keyed by (impl seed, family, the
// op's place in the step), so the same impl seed gives the same bits on any thread count,
// and different impl seeds give different bits through legitimate implementations only:
// every alternative is a real way to compute the op, within the float64 error bound that
// the canonical order meets (tests/kernels/test_emulated_*.cpp), never injected noise.
//
// Families are switched on one at a time (--emulated-op F) or all together (--level
// emulated), so a study can attribute the spread to the family that causes it. A family
// that is off runs portable's canonical kernels, bit for bit.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kernels/common/hd.h"
#include "kernels/common/philox.h"

namespace detdl {

// New families go at the end: the index is part of the Philox key and of a checkpoint's
// identity.
enum class ImplFamily : std::uint8_t {
  matmul,       // GEMM: split-K factor, combine order of the split partials (atomics' arrival)
  conv,         // convolution algorithm (im2col order, (kh, kw, c) order, per-tap partial
                // sums, Winograd), weight gradient split over the batch
  scatter,      // accumulation order of scatter-adds: col2im, overlapping pooling backward
  reduce,       // value reductions' tree shape: bias gradients, batch-norm statistics,
                // global average pooling, loss means
  contraction,  // a*b+c in the element-wise formulas fused into an FMA or not, per site
  math,         // exp / log / tanh / sigmoid from a second implementation (detmath_alt.h)
  optimizer,    // each framework's form of the update (Adam's bias correction, eps place)
  loss,         // softmax with or without the max subtracted; log-softmax or log(softmax)
  count_,
};
inline constexpr int kImplFamilyCount = static_cast<int>(ImplFamily::count_);

constexpr std::string_view impl_family_name(ImplFamily f) {
  switch (f) {
    case ImplFamily::matmul: return "matmul";
    case ImplFamily::conv: return "conv";
    case ImplFamily::scatter: return "scatter";
    case ImplFamily::reduce: return "reduce";
    case ImplFamily::contraction: return "contraction";
    case ImplFamily::math: return "math";
    case ImplFamily::optimizer: return "optimizer";
    case ImplFamily::loss: return "loss";
    case ImplFamily::count_: break;
  }
  return "?";
}

inline std::string impl_family_names() {
  std::string out;
  for (int i = 0; i < kImplFamilyCount; ++i)
    out += (i ? ", " : "") + std::string(impl_family_name(static_cast<ImplFamily>(i)));
  return out;
}

inline std::optional<ImplFamily> parse_impl_family(std::string_view s) {
  for (int i = 0; i < kImplFamilyCount; ++i)
    if (impl_family_name(static_cast<ImplFamily>(i)) == s) return static_cast<ImplFamily>(i);
  return std::nullopt;
}

// One op call's draws. `choose` is fixed for the op's place (an implementation picks its
// algorithm per layer and keeps it: cuDNN's algorithm per shape, a compiler's contraction
// per formula); `per_step` changes with the optimizer step too (the order in which atomics
// land is remade on every call). `what` names the decision (an op's own small enum), so two
// decisions of one call are independent draws.
struct ImplDraw {
  std::uint64_t seed = 0;
  ImplFamily family = ImplFamily::matmul;
  std::uint32_t place = 0;  // this family's calls before this one in the step (< 2^24)
  std::uint32_t step = 0;   // the optimizer step (context().step)

  DETDL_HD std::uint32_t sub() const {
    return (static_cast<std::uint32_t>(family) << 24) | (place & 0xffffffu);
  }
  // Uniform in [0, n), n >= 1: (u * n) >> 32, integer arithmetic only.
  DETDL_HD static std::uint32_t below(std::uint32_t u, std::uint32_t n) {
    return static_cast<std::uint32_t>((static_cast<std::uint64_t>(u) * n) >> 32);
  }
  // A choice among n alternatives for decision `what` (index = what).
  DETDL_HD std::uint32_t choose(std::uint32_t what, std::uint32_t n) const {
    return below(philox_u32(seed, RandomStream::impl, sub(), what), n);
  }
  // Bit `what` of the fixed choices as a yes/no (index = what).
  DETDL_HD bool coin(std::uint32_t what) const { return choose(what, 2) == 1; }
  // Word `index` (< 2^32) of decision `what` (< 256) at this step:
  // index = ((step + 1) << 40) | (what << 32) | index.
  DETDL_HD std::uint32_t per_step(std::uint32_t what, std::uint32_t index) const {
    const std::uint64_t i = ((static_cast<std::uint64_t>(step) + 1) << 40) |
                            (static_cast<std::uint64_t>(what & 0xffu) << 32) | index;
    return philox_u32(seed, RandomStream::impl, sub(), i);
  }
};

// A Fisher-Yates permutation of 0..n-1 (n <= 2^32) from the per-step words of decision
// `what`: the arrival order of n partials. out: (n).
template <class Int>
inline void impl_permutation(const ImplDraw& d, std::uint32_t what, std::int64_t n, Int* out) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<Int>(i);
  for (std::int64_t i = n - 1; i > 0; --i) {
    const std::uint32_t j = ImplDraw::below(d.per_step(what, static_cast<std::uint32_t>(i)),
                                            static_cast<std::uint32_t>(i + 1));
    const Int t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
}

}  // namespace detdl
