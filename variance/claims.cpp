#include "variance/claims.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

namespace detdl::variance {

namespace {

std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// /proc/PID/stat: "pid (comm) state ppid ...", comm may hold spaces and parentheses, so
// the fields after it are counted from the last ')'. Returns false when unreadable.
bool read_stat(std::int64_t pid, char& state, std::int64_t& start_time) {
  const std::string stat = read_line("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(stat.substr(close + 1));
  rest >> state;  // field 3
  std::string skip;
  for (int field = 4; field < 22; ++field) rest >> skip;
  return static_cast<bool>(rest >> start_time);  // field 22
}

}  // namespace

Claimant Claimant::self() {
  Claimant c;
  c.pid = ::getpid();
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  c.host = host;
  // Containers on one kernel share the boot id but not their pids: the pid namespace is
  // part of "the same machine".
  char ns[128] = {};
  const ssize_t n = ::readlink("/proc/self/ns/pid", ns, sizeof ns - 1);
  c.machine =
      read_line("/proc/sys/kernel/random/boot_id") + "/" + (n > 0 ? std::string(ns, n) : "");
  c.start_time = process_start_time(c.pid);
  return c;
}

std::int64_t process_start_time(std::int64_t pid) {
  char state = 0;
  std::int64_t start = -1;
  return read_stat(pid, state, start) ? start : -1;
}

bool process_alive(std::int64_t pid, std::int64_t start_time) {
  if (pid <= 0) return false;
  char state = 0;
  std::int64_t start = -1;
  if (read_stat(pid, state, start)) return state != 'Z' && state != 'X' && start == start_time;
  if (::access("/proc/self/stat", R_OK) == 0) return false;  // /proc works: no such process
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

bool claim_is_stale(const Claim& claim, const Claimant& me, std::int64_t now,
                    std::int64_t lease_seconds) {
  if (claim.by.same_machine(me)) return !process_alive(claim.by.pid, claim.by.start_time);
  return now - claim.heartbeat_at > lease_seconds;
}

}  // namespace detdl::variance
