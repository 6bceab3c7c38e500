#include "engine/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <vector>

namespace detdl {
namespace fs = std::filesystem;

namespace {

fs::path folder_of(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? fs::path(".") : parent;
}

// The umask, read without changing it (umask(2) sets it process-wide, racing other threads).
mode_t process_umask() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  unsigned mask = 022;
  if (f) {
    char line[256];
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "Umask: %o", &mask) == 1) break;
    std::fclose(f);
  }
  return static_cast<mode_t>(mask);
}

}  // namespace

void write_file_atomically(const std::string& path, const std::string& bytes,
                           const std::string& what) {
  std::string tmpl = path + ".tmp.XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  const int fd = ::mkstemp(name.data());
  if (fd < 0)
    throw std::runtime_error(what + ": cannot create a temporary file beside " + path + ": " +
                             std::strerror(errno));
  const std::string tmp(name.data());
  auto fail = [&](const std::string& why) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw std::runtime_error(what + ": " + why + " " + tmp + ": " + std::strerror(err));
  };
  std::size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write failed (disk full?) for");
    }
    off += static_cast<std::size_t>(n);
  }
  // mkstemp creates the file 0600; give it the permissions an ordinary file would get.
  ::fchmod(fd, 0666 & ~process_umask());
  if (::fsync(fd) != 0) fail("cannot flush");
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw std::runtime_error(what + ": cannot close " + tmp + ": " + std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error(what + ": cannot rename " + tmp + " to " + path + ": " +
                             std::strerror(err));
  }
}

void check_output_path(const std::string& path, bool overwrite, const std::string& what) {
  if (path.empty()) throw std::invalid_argument(what + ": empty path");
  std::error_code ec;
  const fs::path dir = folder_of(path);
  if (!fs::is_directory(dir, ec))
    throw std::invalid_argument(what + ": cannot write " + path + ": folder " + dir.string() +
                                " does not exist");
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    throw std::invalid_argument(what + ": cannot write " + path + ": folder " + dir.string() +
                                " is not writable");
  if (fs::is_directory(path, ec))
    throw std::invalid_argument(what + ": " + path + " is a folder, not a file");
  if (!overwrite && fs::exists(path, ec))
    throw std::invalid_argument(what + ": " + path +
                                " exists; refusing to overwrite it (add --force to replace it)");
}

}  // namespace detdl
