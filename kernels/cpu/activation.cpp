#include "kernels/cpu/activation.h"

#include "kernels/cpu/parallel.h"

namespace detdl::cpu {
namespace {

// Elements per task: tensors below this stay on one thread (waking the pool costs more
// than the work). Each element is computed by the shared formula alone, so any split
// gives the same bits.
constexpr std::int64_t kGrain = 1 << 14;

template <class Body>
void for_elements(std::int64_t n, const Body& body) {
  if (n <= 0) return;
  parallel_ranges((n + kGrain - 1) / kGrain, [&](std::int64_t t0, std::int64_t t1, int) {
    const std::int64_t end = t1 * kGrain < n ? t1 * kGrain : n;
    for (std::int64_t i = t0 * kGrain; i < end; ++i) body(i);
  });
}

}  // namespace

void activation_forward(Activation a, float alpha, const float* x, float* y, std::int64_t n) {
  for_elements(n, [&](std::int64_t i) { y[i] = act_forward(a, x[i], alpha); });
}

void activation_backward(Activation a, float alpha, const float* x, const float* y,
                         const float* dy, float* dx, std::int64_t n) {
  for_elements(n, [&](std::int64_t i) { dx[i] = act_backward(a, x[i], y[i], dy[i], alpha); });
}

}  // namespace detdl::cpu
