#include "kernels/cpu/parallel.h"

#include "kernels/cpu/fpmode.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace detdl::cpu {
namespace {

// Spins before sleeping: small kernels (BUTTER's layers are a few thousand elements) come
// one after another every few microseconds, and a futex sleep and wake on each side of every
// job cost more than the job. About 30-100 us of pause instructions, then the condition
// variable (so an idle pool sleeps). Which thread runs which block never changes: speed only.
constexpr int kSpins = 4000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// A pool of persistent workers woken per job: a generation counter the workers watch
// (spinning a while, then on a condition variable), the job's fields read under the mutex.
class Pool {
 public:
  ~Pool() { resize(1); }

  void resize(int n) {
    std::lock_guard<std::mutex> run(run_mutex_);
    {
      std::unique_lock<std::mutex> lk(m_);
      stop_ = true;
      ++generation_;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
    stop_ = false;
    threads_ = std::max(1, n);
    // Each worker starts from the generation current now: reading it in the worker itself
    // would race with the first job posted before the worker got to run.
    std::uint64_t start;
    {
      std::lock_guard<std::mutex> lk(m_);
      start = generation_;
    }
    for (int w = 1; w < threads_; ++w) workers_.emplace_back([this, w, start] { loop(w, start); });
  }

  int threads() const { return threads_; }

  void set_flush(bool on) { flush_.store(on, std::memory_order_relaxed); }
  bool flush() const { return flush_.load(std::memory_order_relaxed); }

  void run(std::int64_t n, const std::function<void(std::int64_t, std::int64_t, int)>& fn) {
    if (n <= 0) return;
    const int T = static_cast<int>(std::min<std::int64_t>(threads_, n));
    if (T <= 1 || in_job_) {
      fn(0, n, 0);
      return;
    }
    std::lock_guard<std::mutex> run(run_mutex_);
    {
      std::unique_lock<std::mutex> lk(m_);
      job_ = &fn;
      job_n_ = n;
      job_threads_ = T;
      job_flush_ = flush_.load(std::memory_order_relaxed);
      pending_ = T - 1;
      ++generation_;
    }
    cv_.notify_all();
    in_job_ = true;
    fn(0, n / T, 0);  // the calling thread takes block 0
    in_job_ = false;
    for (int i = 0; i < kSpins && pending_.load(std::memory_order_acquire) != 0; ++i) cpu_relax();
    std::unique_lock<std::mutex> lk(m_);
    done_cv_.wait(lk, [this] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void loop(int w, std::uint64_t seen) {
    for (;;) {
      const std::function<void(std::int64_t, std::int64_t, int)>* job;
      std::int64_t n;
      int T;
      bool flush;
      for (int i = 0; i < kSpins && generation_.load(std::memory_order_acquire) == seen; ++i)
        cpu_relax();
      {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk, [&] { return generation_ != seen; });
        seen = generation_;
        if (stop_) return;
        job = job_;
        n = job_n_;
        T = job_threads_;
        flush = job_flush_;
      }
      if (w < T) {
        // The run's subnormal mode (fpmode.h), read from this thread's MXCSR: a few cycles.
        if (thread_flushes_subnormals() != flush) set_thread_flush_subnormals(flush);
        in_job_ = true;
        (*job)(n * w / T, n * (w + 1) / T, w);
        in_job_ = false;
        std::lock_guard<std::mutex> lk(m_);
        if (--pending_ == 0) done_cv_.notify_one();
      }
    }
  }

  std::mutex run_mutex_;  // one job at a time
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void(std::int64_t, std::int64_t, int)>* job_ = nullptr;
  std::int64_t job_n_ = 0;
  int job_threads_ = 1;
  bool job_flush_ = false;
  std::atomic<bool> flush_{false};  // the process-wide subnormal mode (fpmode.h)
  // Written under m_; read without it only while spinning.
  std::atomic<int> pending_{0};
  std::atomic<std::uint64_t> generation_{0};
  bool stop_ = false;
  int threads_ = 1;
  static thread_local bool in_job_;
};
thread_local bool Pool::in_job_ = false;

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

void set_num_threads(int n) {
  if (n < 1 || n > 1024)
    throw std::invalid_argument("threads must be in [1, 1024], got " + std::to_string(n));
  if (n != pool().threads()) pool().resize(n);
}

int num_threads() { return pool().threads(); }

void set_pool_flush_subnormals(bool on) { pool().set_flush(on); }
bool pool_flush_subnormals() { return pool().flush(); }

void parallel_ranges(std::int64_t n,
                     const std::function<void(std::int64_t, std::int64_t, int)>& fn) {
  pool().run(n, fn);
}

void parallel_for(std::int64_t n_tasks, const std::function<void(std::int64_t)>& fn) {
  pool().run(n_tasks, [&](std::int64_t b, std::int64_t e, int) {
    for (std::int64_t i = b; i < e; ++i) fn(i);
  });
}

namespace {
std::vector<int>& forced_assignment() {
  static std::vector<int> a;
  return a;
}
}  // namespace

void set_dynamic_assignment_for_testing(std::vector<int> assignment) {
  forced_assignment() = std::move(assignment);
}

void parallel_dynamic(std::int64_t n_pieces, const std::function<void(std::int64_t, int)>& fn) {
  const int T = static_cast<int>(std::min<std::int64_t>(num_threads(), n_pieces));
  if (T <= 1) {
    for (std::int64_t i = 0; i < n_pieces; ++i) fn(i, 0);
    return;
  }
  const std::vector<int> forced = forced_assignment();
  std::atomic<std::int64_t> next{0};
  pool().run(T, [&](std::int64_t b, std::int64_t e, int) {
    if (!forced.empty()) {  // [b, e) is more than one worker only when run serially (nested)
      for (std::int64_t w = b; w < e; ++w)
        for (std::int64_t i = 0; i < n_pieces; ++i)
          if (forced[i % forced.size()] % T == w) fn(i, static_cast<int>(w));
      return;
    }
    for (std::int64_t i = next.fetch_add(1); i < n_pieces; i = next.fetch_add(1))
      fn(i, static_cast<int>(b));
  });
}

}  // namespace detdl::cpu
