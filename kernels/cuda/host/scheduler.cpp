// Host mode's grid scheduler (kernels/cuda/host/runtime.h, docs/gpu.md): runs a launch's
// blocks one after another on the launching OS thread, each block's CUDA threads as
// fibers. A block runs in rounds: every runnable thread runs (in index order, or in a
// seeded permutation) until it finishes or waits at __syncthreads or a warp operation;
// then the waits that can be met are released: a warp operation when every running lane
// of its mask waits in one, the barrier when every running thread of the block waits at
// it. When nothing can be released the threads wait forever on a device too: that is
// reported as an error naming the kernel and the block.
//
// ThreadSanitizer: each fiber is its own thread to it (no synchronisation on a switch);
// the scheduler adds exactly the happens-before edges CUDA guarantees: the host before
// the block, the block before the host, and every thread's work before a barrier (or a
// warp operation of its warp) before every thread's work after it. The bookkeeping the
// fibers and the scheduler share is read and written with relaxed atomics.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/host/fiber.h"
#include "kernels/cuda/host/relaxed.h"
#include "kernels/cuda/host/runtime.h"

#if defined(__SANITIZE_THREAD__)
#define DETDL_SCHED_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define DETDL_SCHED_TSAN 1
#endif
#endif
#if defined(DETDL_SCHED_TSAN)
#include <sanitizer/tsan_interface.h>
#define DETDL_HB_RELEASE(addr) __tsan_release(addr)
#define DETDL_HB_ACQUIRE(addr) __tsan_acquire(addr)
#else
#define DETDL_HB_RELEASE(addr) (void)(addr)
#define DETDL_HB_ACQUIRE(addr) (void)(addr)
#endif

namespace detdl::cuda::host {

thread_local const ThreadCoords* t_coords = nullptr;

namespace {

constexpr std::size_t kStaticSharedLimit = std::size_t{48} << 10;   // __shared__ per block
constexpr std::size_t kDynamicSharedLimit = std::size_t{48} << 10;  // without an opt-in
constexpr int kMaxDeclarations = 64;

enum class State : int { runnable, barrier, warp, done };

struct Block;

struct Thread {
  ThreadCoords coords;
  unsigned linear = 0;
  State state = State::runnable;
  unsigned warp_mask = 0;  // while state == warp: the lanes it waits for
  int declarations = 0;    // DETDL_SHARED declarations passed so far
  std::uint64_t warp_seq = 0;
  Fiber* fiber = nullptr;
  Block* block = nullptr;
};

struct WarpSlots {
  std::uint64_t slot[2][32];
  char sync;  // ThreadSanitizer's synchronisation address for this warp
};

struct Block {
  const Launch* launch = nullptr;
  void (*body)(void*) = nullptr;
  void* ctx = nullptr;
  std::vector<Thread> threads;
  std::vector<WarpSlots> warps;
  unsigned char* shared = nullptr;            // the DETDL_SHARED declarations, in order
  std::size_t shared_static = 0;              // bytes of static declarations so far
  std::size_t declared[kMaxDeclarations][2];  // offset, bytes of the n-th declaration
  int declarations = 0;
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  unsigned error_thread = 0;
  char end_sync, barrier_sync;  // ThreadSanitizer's synchronisation addresses
};

thread_local Thread* t_thread = nullptr;  // accessed atomically (fibers and scheduler)
// ThreadSanitizer's address for "the host's work before this block": released by the
// scheduler before a block, acquired by each of its threads first thing.
char g_block_start;

struct Runtime {
  std::mutex mutex;  // one launch at a time in the process
  std::vector<std::unique_ptr<Fiber>> fibers;
  // Every block's shared memory (blocks run one at a time), NaN bytes wherever the last
  // block did not write: shared_dirty bytes from the start may hold its values.
  std::vector<unsigned char> shared_arena = std::vector<unsigned char>(kStaticSharedLimit, 0xff);
  std::size_t shared_dirty = 0;
  std::uint64_t seed = 0;
  std::uint64_t launches_since_seed = 0;  // each launch's order comes from (seed, this)
  Runtime() {
    if (const char* s = std::getenv("DETDL_HOST_SCHEDULE")) {
      char* end = nullptr;
      const unsigned long long v = std::strtoull(s, &end, 10);
      if (end == s || *end != '\0')
        throw std::invalid_argument(std::string("DETDL_HOST_SCHEDULE: expected an integer, got '") +
                                    s + "'");
      seed = v;
    }
  }
};

Runtime& runtime() {
  static Runtime* const r = new Runtime();  // never destroyed: launches may run at exit
  return *r;
}

std::uint64_t splitmix(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

template <class T>
void shuffle(std::vector<T>& v, std::uint64_t& rng) {
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[splitmix(rng) % i]);
}

std::string dim_text(uint3 d) {
  return "(" + std::to_string(d.x) + ", " + std::to_string(d.y) + ", " + std::to_string(d.z) + ")";
}

[[noreturn]] void kernel_error(Block& b, const std::string& what) {
  // The block is abandoned: order everything its threads did before the host frees it.
  DETDL_HB_ACQUIRE(&b.end_sync);
  DETDL_HB_ACQUIRE(&b.barrier_sync);
  for (WarpSlots& w : b.warps) DETDL_HB_ACQUIRE(&w.sync);
  throw std::runtime_error("host mode: kernel " + std::string(b.launch->kernel) + ", block " +
                           dim_text(b.threads.empty() ? uint3{} : b.threads[0].coords.block) +
                           ": " + what);
}

Thread& current(const char* what) {
  Thread* t = load(t_thread);
  if (t == nullptr)
    throw std::logic_error(std::string("host mode: ") + what + " called outside a kernel");
  return *t;
}

// The first frame of every CUDA thread's fiber.
void thread_main(void* arg) {
  DETDL_HB_ACQUIRE(&g_block_start);
  Thread& t = *static_cast<Thread*>(arg);
  Block& b = *t.block;
  try {
    b.body(b.ctx);
  } catch (...) {
    if (!b.failed.load(std::memory_order_relaxed)) {
      b.error = std::current_exception();
      b.error_thread = t.linear;
      DETDL_HB_RELEASE(&b.end_sync);
      b.failed.store(true, std::memory_order_relaxed);
    }
  }
  store(t.state, State::done);
  DETDL_HB_RELEASE(&b.end_sync);
}

// Every running lane of t's mask waits in a warp operation.
bool warp_ready(const Block& b, const Thread& t) {
  const unsigned warp = t.linear / 32, mask = load(t.warp_mask);
  for (unsigned lane = 0; lane < 32; ++lane) {
    if (!(mask >> lane & 1u)) continue;
    const std::size_t i = warp * 32 + lane;
    if (i >= b.threads.size()) continue;  // no such thread: the block's last warp is partial
    const State s = load(b.threads[i].state);
    if (s != State::warp && s != State::done) return false;
  }
  return true;
}

void run_block(Block& b, std::uint64_t seed, std::uint64_t block_key) {
  const std::size_t n = b.threads.size();
  Runtime& rt = runtime();
  for (std::size_t i = 0; i < n; ++i) {
    Thread& t = b.threads[i];
    t.fiber = rt.fibers[i].get();
    t.block = &b;
    t.declarations = 0;
    t.warp_seq = 0;
    store(t.state, State::runnable);
    t.fiber->reset(&thread_main, &t);
  }
  // Shared memory starts as NaN bytes: a read before any write shows in the results. Until
  // this block ends normally, all of the arena counts as written (a block abandoned by
  // kernel_error leaves whatever it wrote).
  std::memset(b.shared, 0xff, rt.shared_dirty);
  rt.shared_dirty = kStaticSharedLimit;
  b.shared_static = 0;
  b.declarations = 0;
  DETDL_HB_RELEASE(&g_block_start);

  std::uint64_t rng = seed ^ (block_key * 0xd1342543de82ef95ull);
  std::vector<unsigned> order;
  std::vector<Thread*> ready;
  order.reserve(n);
  std::size_t live = n;
  while (live > 0) {
    order.clear();
    for (std::size_t i = 0; i < n; ++i)
      if (load(b.threads[i].state) == State::runnable) order.push_back(static_cast<unsigned>(i));
    if (order.empty()) {
      // Release what can be released: warp operations first (a lane in one may be all that
      // keeps the barrier from its count), then the barrier.
      std::size_t at_barrier = 0, in_warp = 0;
      ready.clear();
      for (Thread& t : b.threads) {
        const State s = load(t.state);
        if (s == State::barrier) ++at_barrier;
        if (s == State::warp) {
          ++in_warp;
          if (warp_ready(b, t)) ready.push_back(&t);
        }
      }
      bool released = !ready.empty();
      for (Thread* t : ready) store(t->state, State::runnable);
      if (!released && at_barrier == live) {
        for (Thread& t : b.threads)
          if (load(t.state) == State::barrier) store(t.state, State::runnable);
        released = true;
      }
      if (!released)
        kernel_error(b, std::to_string(live) + " threads wait forever (" +
                            std::to_string(at_barrier) + " at __syncthreads, " +
                            std::to_string(in_warp) +
                            " in warp operations whose lanes do not all arrive)");
      continue;
    }
    if (seed != 0) shuffle(order, rng);
    for (unsigned i : order) {
      Thread& t = b.threads[i];
      store(t_thread, &t);
      __atomic_store_n(&t_coords, &t.coords, __ATOMIC_RELAXED);
      t.fiber->resume();
      if (b.failed.load(std::memory_order_relaxed)) {
        DETDL_HB_ACQUIRE(&b.end_sync);
        store(t_thread, static_cast<Thread*>(nullptr));
        std::string what = "an exception";
        try {
          std::rethrow_exception(b.error);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        kernel_error(b, "thread " + std::to_string(b.error_thread) + ": " + what);
      }
      if (load(t.state) == State::done) --live;
    }
  }
  store(t_thread, static_cast<Thread*>(nullptr));
  __atomic_store_n(&t_coords, static_cast<const ThreadCoords*>(nullptr), __ATOMIC_RELAXED);
  rt.shared_dirty = load(b.shared_static);
  DETDL_HB_ACQUIRE(&b.end_sync);
}

bool valid_configuration(const Launch& l) {
  const std::uint64_t threads = std::uint64_t{l.block.x} * l.block.y * l.block.z;
  return threads >= 1 && threads <= 1024 && l.block.x <= 1024 && l.block.y <= 1024 &&
         l.block.z <= 64 && l.grid.x >= 1 && l.grid.x <= 0x7fffffffu && l.grid.y >= 1 &&
         l.grid.y <= 65535 && l.grid.z >= 1 && l.grid.z <= 65535 &&
         l.dynamic_shared <= kDynamicSharedLimit;
}

}  // namespace

void set_last_error(cudaError_t e);  // kernels/cuda/host/memory.cpp

void run_grid(const Launch& launch, void (*body)(void*), void* ctx) {
  if (!valid_configuration(launch)) {
    set_last_error(cudaErrorInvalidConfiguration);
    return;
  }
  Runtime& rt = runtime();
  std::lock_guard<std::mutex> lock(rt.mutex);
  const std::uint64_t launch_index = rt.launches_since_seed++;
  const unsigned nthreads = launch.block.x * launch.block.y * launch.block.z;
  while (rt.fibers.size() < nthreads) rt.fibers.push_back(std::make_unique<Fiber>());

  auto b = std::make_unique<Block>();
  b->launch = &launch;
  b->body = body;
  b->ctx = ctx;
  b->shared = rt.shared_arena.data();
  b->threads.resize(nthreads);
  b->warps.resize((nthreads + 31) / 32);
  const uint3 grid{launch.grid.x, launch.grid.y, launch.grid.z};
  const uint3 block{launch.block.x, launch.block.y, launch.block.z};
  for (unsigned i = 0; i < nthreads; ++i) {
    Thread& t = b->threads[i];
    t.linear = i;
    t.coords.thread = uint3{i % block.x, i / block.x % block.y, i / (block.x * block.y)};
    t.coords.block_dim = block;
    t.coords.grid_dim = grid;
  }

  const std::uint64_t blocks = std::uint64_t{grid.x} * grid.y * grid.z;
  const std::uint64_t seed = rt.seed == 0 ? 0 : rt.seed ^ (launch_index * 0x9e3779b97f4a7c15ull);
  std::vector<std::uint64_t> order;
  if (seed != 0) {
    order.resize(blocks);
    for (std::uint64_t i = 0; i < blocks; ++i) order[i] = i;
    std::uint64_t rng = seed;
    shuffle(order, rng);
  }
  for (std::uint64_t k = 0; k < blocks; ++k) {
    const std::uint64_t id = seed != 0 ? order[k] : k;
    const uint3 idx{static_cast<unsigned>(id % grid.x), static_cast<unsigned>(id / grid.x % grid.y),
                    static_cast<unsigned>(id / (std::uint64_t{grid.x} * grid.y))};
    for (Thread& t : b->threads) t.coords.block = idx;
    run_block(*b, seed, id + 1);
  }
}

void syncthreads() {
  // Nothing of the block is read between the release and the acquire: an abandoned block
  // (kernel_error) is freed while its threads sit here.
  Thread& t = current("__syncthreads");
  Fiber* const fiber = t.fiber;
  char* const sync = &t.block->barrier_sync;
  store(t.state, State::barrier);
  DETDL_HB_RELEASE(sync);
  fiber->yield();
  DETDL_HB_ACQUIRE(sync);
}

unsigned lane_id() { return current("a warp operation").linear % 32; }

WarpValues warp_exchange(unsigned mask, std::uint64_t value) {
  Thread& t = current("a warp operation");
  const unsigned lane = t.linear % 32;
  WarpSlots& w = t.block->warps[t.linear / 32];
  const int slot = static_cast<int>(t.warp_seq & 1);
  w.slot[slot][lane] = value;
  Fiber* const fiber = t.fiber;
  store(t.warp_mask, mask | (1u << lane));
  store(t.state, State::warp);
  DETDL_HB_RELEASE(&w.sync);
  fiber->yield();
  DETDL_HB_ACQUIRE(&w.sync);
  WarpValues out;
  std::memcpy(out.lane, w.slot[slot], sizeof out.lane);
  ++t.warp_seq;
  return out;
}

void* shared_declaration(std::size_t bytes) {
  Thread& t = current("a __shared__ declaration");
  Block& b = *t.block;
  const int n = t.declarations++;
  if (n < load(b.declarations)) {
    if (load(b.declared[n][1]) != bytes)
      throw std::logic_error("__shared__ declaration " + std::to_string(n) + " has " +
                             std::to_string(bytes) + " bytes in this thread and " +
                             std::to_string(load(b.declared[n][1])) +
                             " in another (declarations in different orders)");
    return b.shared + load(b.declared[n][0]);
  }
  if (n >= kMaxDeclarations)
    throw std::logic_error("more than " + std::to_string(kMaxDeclarations) +
                           " __shared__ declarations in one kernel");
  const std::size_t offset = (load(b.shared_static) + 15) / 16 * 16;
  if (offset + bytes > kStaticSharedLimit)
    throw std::logic_error("__shared__ declarations exceed " + std::to_string(kStaticSharedLimit) +
                           " bytes per block");
  store(b.declared[n][0], offset);
  store(b.declared[n][1], bytes);
  store(b.shared_static, offset + bytes);
  store(b.declarations, n + 1);
  return b.shared + offset;
}

void set_schedule_seed(std::uint64_t seed) {
  Runtime& rt = runtime();
  std::lock_guard<std::mutex> lock(rt.mutex);
  rt.seed = seed;
  rt.launches_since_seed = 0;
}

std::uint64_t schedule_seed() {
  Runtime& rt = runtime();
  std::lock_guard<std::mutex> lock(rt.mutex);
  return rt.seed;
}

}  // namespace detdl::cuda::host
