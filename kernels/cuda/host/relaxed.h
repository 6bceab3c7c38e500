// Relaxed atomic loads and stores of plain variables, for host mode's own bookkeeping that
// fibers and the scheduler share (kernels/cuda/host/): ThreadSanitizer sees each fiber as a
// thread of its own, and these accesses are the switch's and the scheduler's, not the
// kernel's, so they must not be reported as races nor create happens-before edges.
#pragma once

namespace detdl::cuda::host {

template <class T>
T load(const T& v) {
  return __atomic_load_n(&v, __ATOMIC_RELAXED);
}

template <class T>
void store(T& v, T value) {
  __atomic_store_n(&v, value, __ATOMIC_RELAXED);
}

}  // namespace detdl::cuda::host
