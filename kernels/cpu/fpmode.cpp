#include "kernels/cpu/fpmode.h"

#include <stdexcept>

#include "kernels/cpu/parallel.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define DETDL_HAS_MXCSR 1
#endif

namespace detdl::cpu {
namespace {
#ifdef DETDL_HAS_MXCSR
// MXCSR bit 15: flush to zero (FTZ); bit 6: denormals are zero (DAZ).
constexpr unsigned kFtz = 1u << 15, kDaz = 1u << 6;
#endif
}  // namespace

bool can_flush_subnormals() {
#ifdef DETDL_HAS_MXCSR
  return true;
#else
  return false;
#endif
}

void set_thread_flush_subnormals(bool on) {
#ifdef DETDL_HAS_MXCSR
  const unsigned csr = _mm_getcsr();
  const unsigned want = on ? (csr | kFtz | kDaz) : (csr & ~(kFtz | kDaz));
  if (want != csr) _mm_setcsr(want);
#else
  if (on)
    throw std::runtime_error(
        "flush_subnormals: this CPU's build has no FTZ/DAZ control (x86-64's MXCSR only)");
#endif
}

bool thread_flushes_subnormals() {
#ifdef DETDL_HAS_MXCSR
  return (_mm_getcsr() & (kFtz | kDaz)) == (kFtz | kDaz);
#else
  return false;
#endif
}

void set_flush_subnormals(bool on) {
  set_thread_flush_subnormals(on);  // throws first where the CPU cannot
  set_pool_flush_subnormals(on);
}

bool flush_subnormals() { return pool_flush_subnormals(); }

FlushSubnormalsScope::FlushSubnormalsScope(bool on)
    : was_global_(flush_subnormals()), was_thread_(thread_flushes_subnormals()) {
  set_flush_subnormals(on);
}

FlushSubnormalsScope::~FlushSubnormalsScope() {
  set_pool_flush_subnormals(was_global_);
  set_thread_flush_subnormals(was_thread_);
}

}  // namespace detdl::cpu
