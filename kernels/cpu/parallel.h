// The CPU thread pool. Work is split with a fixed partition of task indices; in the
// `portable` and `repeatable` levels every output is computed by exactly one task in the
// canonical order, so results never depend on the thread count. Only `fast` kernels
// combine partial results in completion order.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace detdl::cpu {

// Threads used by CPU kernels (the calling thread is one of them). Default: 1.
void set_num_threads(int n);
int num_threads();

// The subnormal mode the workers run jobs in (kernels/cpu/fpmode.h, whose
// set_flush_subnormals also sets the calling thread's: use that).
void set_pool_flush_subnormals(bool on);
bool pool_flush_subnormals();

// Runs fn(task) for task in [0, n_tasks) on the pool; returns when all are done. Tasks are
// dealt in contiguous blocks: thread t runs tasks [t*n/T, (t+1)*n/T). Nested calls run
// serially on the calling thread.
void parallel_for(std::int64_t n_tasks, const std::function<void(std::int64_t)>& fn);

// Like parallel_for, but fn receives a contiguous range [begin, end) and the worker index.
void parallel_ranges(std::int64_t n,
                     const std::function<void(std::int64_t, std::int64_t, int)>& fn);

// For the `fast` level only: runs fn(piece, worker) for piece in [0, n_pieces), handing
// pieces to workers dynamically (an atomic counter), so which worker gets which piece, and
// in which order, depends on timing. A kernel that sums its pieces into per-worker
// partials and then combines the partials therefore gives run-to-run variation even on
// 2 threads (with a static split, two partials p0 + p1 == p1 + p0 would hide it).
void parallel_dynamic(std::int64_t n_pieces, const std::function<void(std::int64_t, int)>& fn);

// Test hook: while set (non-empty), parallel_dynamic gives piece i to worker
// assignment[i % size] (modulo the worker count) instead of by timing, so tests can force
// two different interleavings and show that `fast` results depend on them.
void set_dynamic_assignment_for_testing(std::vector<int> assignment);

}  // namespace detdl::cpu
