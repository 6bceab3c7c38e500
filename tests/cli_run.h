// Runs the built `detdl` executable as a user would, for the tests of the command line:
// its exit status and everything it printed (stdout and stderr together).
#pragma once
#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace detdl::test_util {

struct CliResult {
  int status = -1;     // exit status; -1 when it did not exit normally
  std::string output;  // stdout + stderr
};

inline CliResult run_detdl(const std::string& args) {
  const std::string cmd = std::string(DETDL_BINARY_DIR) + "/detdl " + args + " 2>&1";
  CliResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) r.output.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace detdl::test_util
