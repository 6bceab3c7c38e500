// Subnormal flushing: TensorFlow's CPU arithmetic, offered as a run option.
//
// TensorFlow sets FTZ (flush-to-zero: a subnormal result becomes zero) and DAZ
// (denormals-are-zero: a subnormal operand reads as zero) in every thread that runs its
// kernels (port::ScopedFlushDenormal in Eigen's thread pool and the executor), so a Keras
// model on the CPU never computes with a subnormal float. detdl keeps IEEE subnormals by
// default: they are exact, and the GPU build (--ftz=false) keeps them too, so CPU == GPU. A
// run that asks for `flush_subnormals` computes as TensorFlow's CPU does: different bits
// wherever a subnormal arises (still the same bits on any thread count: each thread flushes
// the same operations), and no microcode assist on subnormal operands (up to 141x slower
// products on the x86 cores measured, bench/RESULTS.md "Subnormal operands").
//
// The mode lives in each thread's MXCSR (x86-64). The pool (parallel.h) applies the
// process-wide setting to a worker before each job; the thread that trains sets its own
// through FlushSubnormalsScope.
#pragma once

namespace detdl::cpu {

// Whether this build's CPU can flush subnormals (x86-64: MXCSR's FTZ and DAZ bits).
bool can_flush_subnormals();

// This thread's mode: FTZ and DAZ both on, or both off. Throws std::runtime_error where
// can_flush_subnormals() is false and `on` is asked for.
void set_thread_flush_subnormals(bool on);
bool thread_flushes_subnormals();

// The process-wide setting: this thread now, each pool worker before its next job.
void set_flush_subnormals(bool on);
bool flush_subnormals();

// Sets the process-wide mode for a scope (a training run) and restores what was there.
class FlushSubnormalsScope {
 public:
  explicit FlushSubnormalsScope(bool on);
  ~FlushSubnormalsScope();
  FlushSubnormalsScope(const FlushSubnormalsScope&) = delete;
  FlushSubnormalsScope& operator=(const FlushSubnormalsScope&) = delete;

 private:
  bool was_global_, was_thread_;
};

}  // namespace detdl::cpu
