// Host mode's fibers (docs/gpu.md): one per CUDA thread of the running block, switched
// cooperatively at barriers and warp operations. x86-64 switches with a few instructions
// (callee-saved registers, MXCSR and the x87 control word); other targets use ucontext.
// Under AddressSanitizer and ThreadSanitizer every switch is announced to the sanitizer, and
// ThreadSanitizer sees each fiber as its own thread (no synchronisation implied by a switch),
// so a race between two CUDA threads of a block is reported as a race.
#pragma once
#include <cstddef>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace detdl::cuda::host {

class Fiber {
 public:
  Fiber();
  ~Fiber();
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  // Makes the next resume() run entry(arg). A fiber runs its entries in a loop: when an
  // entry returns, the fiber parks (back to resume()) at the top of the loop, so its frames
  // stay balanced (ThreadSanitizer keeps a shadow stack per fiber). A fiber left inside an
  // entry (an abandoned block) starts again from a fresh first frame.
  void reset(void (*entry)(void*), void* arg);
  // Runs the fiber until it calls yield() or its entry returns; returns on the caller's
  // stack.
  void resume();
  // From inside the fiber: back to the resume() that ran it.
  void yield();

  static constexpr std::size_t kStackBytes = std::size_t{256} << 10;

 private:
  static void start();  // the first frame of every fiber: the loop over entries
  void build_first_frame();

  void* stack_ = nullptr;  // kStackBytes plus a guard page below it
  void (*entry_)(void*) = nullptr;
  void* arg_ = nullptr;
  bool parked_ = false;   // at the top of the loop, its last entry returned
  bool started_ = false;  // has a first frame (the resuming side's own flag)
#if defined(__x86_64__)
  void* sp_ = nullptr;         // the fiber's saved stack pointer
  void* caller_sp_ = nullptr;  // resume()'s
#else
  ucontext_t context_{}, caller_{};
#endif
  void* tsan_fiber_ = nullptr;
  void* tsan_caller_ = nullptr;
  void* asan_fake_stack_ = nullptr;
  const void* caller_stack_bottom_ = nullptr;
  std::size_t caller_stack_size_ = 0;
};

}  // namespace detdl::cuda::host
