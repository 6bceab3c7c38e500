// Runs the built `detdl` executable as a user would, for the tests of the command line:
// its exit status and everything it printed (stdout and stderr together); and any command,
// for the tests of the project's Python scripts.
#pragma once
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

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

// A command's stdout, with its stderr after 2>&1 where `with_stderr` (else stderr is
// dropped); its exit status in *status (-1 when it did not exit normally).
inline std::string run_command(const std::string& cmd, int* status, bool with_stderr) {
  std::string out;
  FILE* p = popen((cmd + (with_stderr ? " 2>&1" : " 2>/dev/null")).c_str(), "r");
  if (!p) {
    *status = -1;
    return out;
  }
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int st = pclose(p);
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

// The Python the scripts' tests run: Debian's, else the first on PATH.
inline std::string python3() {
  return std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

// A CSV line's fields (no quoting: the scripts' outputs have none).
inline std::vector<std::string> split_fields(const std::string& line, char sep) {
  std::vector<std::string> f;
  std::stringstream ss(line);
  std::string x;
  while (std::getline(ss, x, sep)) f.push_back(x);
  return f;
}

}  // namespace detdl::test_util
