// Relaxed atomic loads and stores of plain variables, for host mode's own bookkeeping that
// fibers and the scheduler share (kernels/cuda/host/): ThreadSanitizer sees each fiber as a
// thread of its own, and these accesses are the switch's and the scheduler's, not the
// kernel's, so they must not be reported as races nor create happens-before edges.
#pragma once

#include <type_traits>

namespace detdl::cuda::host {

// Enums go through their underlying integer: clang's __atomic builtins take only integers
// and pointers (g++'s take enums too).
template <class T>
T load(const T& v) {
  if constexpr (std::is_enum_v<T>) {
    using U = std::underlying_type_t<T>;
    return static_cast<T>(__atomic_load_n(reinterpret_cast<const U*>(&v), __ATOMIC_RELAXED));
  } else {
    return __atomic_load_n(&v, __ATOMIC_RELAXED);
  }
}

template <class T>
void store(T& v, T value) {
  if constexpr (std::is_enum_v<T>) {
    using U = std::underlying_type_t<T>;
    __atomic_store_n(reinterpret_cast<U*>(&v), static_cast<U>(value), __ATOMIC_RELAXED);
  } else {
    __atomic_store_n(&v, value, __ATOMIC_RELAXED);
  }
}

}  // namespace detdl::cuda::host
