// The scatter family's choice for a pooling backward (ImplFamily::scatter), shared by the
// CPU kernels (kernels/cpu/pool.h, which describes the orders) and the CUDA kernels
// (kernels/cuda/pool.h): both take the same draw and give the same bits.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/common/impl_choice.h"
#include "kernels/common/shapes.h"

namespace detdl {

// canonical: each input adds its outputs' contributions in (oh, ow) row-major order;
// arrival: in a per-step drawn order of the OH*OW outputs (pool_arrival_order).
enum class ScatterOrder : std::uint8_t { canonical, arrival, count_ };

// The draw -> choice mapping: decision 0 of the call's scatter draw.
inline ScatterOrder scatter_order(const ImplDraw& d) {
  return static_cast<ScatterOrder>(d.choose(0, static_cast<std::uint32_t>(ScatterOrder::count_)));
}

// Whether some input position lies in two windows (stride < kernel in a dimension).
inline bool pool_windows_overlap(const Pool2dShape& s) {
  return (s.stride_h < s.KH && s.OH > 1) || (s.stride_w < s.KW && s.OW > 1);
}

// The arrival order of the OH*OW outputs (shared by every plane): a Fisher-Yates
// permutation from decision 0's per-step words.
inline std::vector<std::int64_t> pool_arrival_order(const ImplDraw& d, const Pool2dShape& s) {
  std::vector<std::int64_t> perm(static_cast<std::size_t>(s.OH * s.OW));
  impl_permutation(d, 0, s.OH * s.OW, perm.data());
  return perm;
}

}  // namespace detdl
