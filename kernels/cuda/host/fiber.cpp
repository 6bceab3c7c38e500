#include "kernels/cuda/host/fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <new>

#include "kernels/cuda/host/relaxed.h"

#if defined(__SANITIZE_ADDRESS__)
#define DETDL_FIBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DETDL_FIBER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define DETDL_FIBER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define DETDL_FIBER_TSAN 1
#endif
#endif
#if defined(DETDL_FIBER_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(DETDL_FIBER_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

#if defined(__x86_64__)
// detdl_fiber_switch(save, load): pushes the callee-saved registers and the floating-point
// control words, stores the stack pointer in *save, loads `load` and pops the other side's.
extern "C" void detdl_fiber_switch(void** save, void* load);
asm(R"(
  .pushsection .text
  .globl detdl_fiber_switch
  .type detdl_fiber_switch, @function
detdl_fiber_switch:
  .cfi_startproc
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .cfi_endproc
  .size detdl_fiber_switch, .-detdl_fiber_switch
  .popsection
)");
#endif

namespace detdl::cuda::host {
namespace {

thread_local Fiber* t_starting = nullptr;  // the fiber whose start() is about to run

// The fields that the resuming side writes and the fiber reads (and back) go through
// relaxed.h's load / store.

std::size_t page_size() {
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

}  // namespace

Fiber::Fiber() {
  const std::size_t bytes = kStackBytes + page_size();
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  mprotect(p, page_size(), PROT_NONE);  // a guard page: a stack overflow faults at once
  stack_ = p;
#if defined(DETDL_FIBER_TSAN)
  tsan_fiber_ = __tsan_create_fiber(0);
#endif
}

Fiber::~Fiber() {
#if defined(DETDL_FIBER_TSAN)
  __tsan_destroy_fiber(tsan_fiber_);
#endif
  munmap(stack_, kStackBytes + page_size());
}

void Fiber::reset(void (*entry)(void*), void* arg) {
  store(entry_, entry);
  store(arg_, arg);
  if (load(parked_)) return;
  if (started_) {
    // Abandoned inside an entry: its stack and (for ThreadSanitizer) its shadow stack
    // hold frames that will never return. Start over from a fresh first frame.
#if defined(DETDL_FIBER_TSAN)
    __tsan_destroy_fiber(tsan_fiber_);
    tsan_fiber_ = __tsan_create_fiber(0);
#endif
  }
  build_first_frame();
  started_ = true;
}

// Not instrumented for ThreadSanitizer: the first frame written here is the fiber's own
// stack, which the fiber overwrites later without any synchronisation with this writer.
__attribute__((no_sanitize("thread"))) void Fiber::build_first_frame() {
  char* bottom = static_cast<char*>(stack_) + page_size();
#if defined(__x86_64__)
  auto top = reinterpret_cast<std::uintptr_t>(bottom + kStackBytes) & ~std::uintptr_t{15};
  auto* sp = reinterpret_cast<std::uint64_t*>(top);
  *--sp = 0;  // start()'s return address: it never returns
  *--sp = reinterpret_cast<std::uint64_t>(&Fiber::start);
  for (int r = 0; r < 6; ++r) *--sp = 0;  // rbp rbx r12 r13 r14 r15
  std::uint32_t mxcsr = 0;
  std::uint16_t fpucw = 0;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fpucw));
  *--sp = static_cast<std::uint64_t>(mxcsr) | static_cast<std::uint64_t>(fpucw) << 32;
  sp_ = sp;
#else
  getcontext(&context_);
  context_.uc_stack.ss_sp = bottom;
  context_.uc_stack.ss_size = kStackBytes;
  context_.uc_link = nullptr;
  makecontext(&context_, &Fiber::start, 0);
#endif
}

void Fiber::resume() {
  store(t_starting, this);
  void* fake_stack = nullptr;
#if defined(DETDL_FIBER_ASAN)
  __sanitizer_start_switch_fiber(&fake_stack, static_cast<char*>(stack_) + page_size(),
                                 kStackBytes);
#endif
#if defined(DETDL_FIBER_TSAN)
  store(tsan_caller_, __tsan_get_current_fiber());
  __tsan_switch_to_fiber(tsan_fiber_, __tsan_switch_to_fiber_no_sync);
#endif
#if defined(__x86_64__)
  detdl_fiber_switch(&caller_sp_, sp_);
#else
  swapcontext(&caller_, &context_);
#endif
#if defined(DETDL_FIBER_ASAN)
  __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#endif
  (void)fake_stack;
}

void Fiber::yield() {
#if defined(DETDL_FIBER_ASAN)
  __sanitizer_start_switch_fiber(&asan_fake_stack_, caller_stack_bottom_, caller_stack_size_);
#endif
#if defined(DETDL_FIBER_TSAN)
  __tsan_switch_to_fiber(load(tsan_caller_), __tsan_switch_to_fiber_no_sync);
#endif
#if defined(__x86_64__)
  detdl_fiber_switch(&sp_, caller_sp_);
#else
  swapcontext(&context_, &caller_);
#endif
#if defined(DETDL_FIBER_ASAN)
  __sanitizer_finish_switch_fiber(asan_fake_stack_, &caller_stack_bottom_, &caller_stack_size_);
#endif
}

void Fiber::start() {
  Fiber* self = load(t_starting);
#if defined(DETDL_FIBER_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &self->caller_stack_bottom_, &self->caller_stack_size_);
#endif
  for (;;) {
    store(self->parked_, false);
    load(self->entry_)(load(self->arg_));
    store(self->parked_, true);
    self->yield();
  }
}

}  // namespace detdl::cuda::host
