// Claims: how several `detdl study run` processes, on one machine or on machines sharing a
// store, feed one store without running a row twice. Before a runner forks the worker of a
// row it claims the row in the store (one write transaction: not stored, not claimed by
// anyone alive -> claimed); the worker's put_run drops the claim in the transaction that
// stores the run; a failed run's claim is released by its runner.
//
// A claim whose claimant is gone is stale and may be taken over:
//   - same machine (host name, boot id and pid namespace all equal): the claimant's pid
//     is not running, is a zombie, or runs a process that started at another time than
//     the claimant did (the pid was reused);
//   - another machine: its runner has not renewed the heartbeat for `lease_seconds`
//     (a pid there cannot be checked from here).
// A runner killed with SIGKILL leaves its claims behind; the next runner on the same
// machine takes them over at once, one on another machine after the lease.
#pragma once
#include <cstdint>
#include <string>

namespace detdl::variance {

struct Claimant {
  std::int64_t pid = 0;
  std::string host;             // gethostname()
  std::string machine;          // boot id + pid namespace: where a pid means the same process
  std::int64_t start_time = 0;  // the process's start (clock ticks after boot, /proc/PID/stat)

  // This process.
  static Claimant self();
  bool same_machine(const Claimant& other) const {
    return host == other.host && machine == other.machine;
  }
};

struct Claim {
  std::string key, study;
  Claimant by;
  std::int64_t claimed_at = 0, heartbeat_at = 0;  // Unix seconds
};

enum class ClaimResult { claimed, stored, held };

// Whether process `pid` runs and started at `start_time` (a zombie does not run). Reads
// /proc; without it (not Linux) falls back to kill(pid, 0) and ignores the start time.
bool process_alive(std::int64_t pid, std::int64_t start_time);
// The start time of `pid` from /proc/PID/stat (field 22); -1 when unreadable.
std::int64_t process_start_time(std::int64_t pid);

// Whether `claim` may be taken over by `me` at Unix time `now` (rules above).
bool claim_is_stale(const Claim& claim, const Claimant& me, std::int64_t now,
                    std::int64_t lease_seconds);

}  // namespace detdl::variance
