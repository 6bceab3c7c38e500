// Shared by the libFuzzer harnesses (docs/fuzzing.md). Most loaders take a path, so the
// input goes to a temporary file first: one name per process (pid), so parallel runs
// (-jobs, -fork, several harnesses at once) never share a file.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace detdl::fuzz {

// $DETDL_FUZZ_TMP, else /dev/shm (no disk writes at 10^4 execs/s), else $TMPDIR, else /tmp.
inline std::string temp_dir() {
  if (const char* d = std::getenv("DETDL_FUZZ_TMP")) return d;
  if (access("/dev/shm", W_OK) == 0) return "/dev/shm";
  if (const char* d = std::getenv("TMPDIR")) return d;
  return "/tmp";
}

// The input as a file named <dir>/detdl-fuzz-<harness>-<pid><suffix>; removed (with the
// extra suffixes given, e.g. SQLite's -wal and -shm) by the destructor.
class TempFile {
 public:
  TempFile(const char* harness, const std::uint8_t* data, std::size_t size,
           const std::string& suffix, std::vector<std::string> extra = {})
      : path_(temp_dir() + "/detdl-fuzz-" + harness + "-" + std::to_string(getpid()) + suffix),
        extra_(std::move(extra)) {
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    // A harness that cannot write its input tests nothing: stop loudly, not silently.
    if (!f || (size && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
      std::fprintf(stderr, "fuzz: cannot write %s\n", path_.c_str());
      std::abort();
    }
  }
  ~TempFile() {
    std::remove(path_.c_str());
    for (const std::string& e : extra_) std::remove((path_ + e).c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<std::string> extra_;
};

// A broken invariant of a loader's result (not an expected error): report it as a crash.
#define DETDL_FUZZ_CHECK(cond)                                                                 \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "fuzz: invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)

}  // namespace detdl::fuzz
