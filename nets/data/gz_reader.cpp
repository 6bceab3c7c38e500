#include "nets/data/gz_reader.h"

#include <algorithm>
#include <climits>
#include <stdexcept>
#include <vector>

namespace detdl::data {

GzReader::GzReader(std::string path) : path_(std::move(path)) {
  file_ = gzopen(path_.c_str(), "rb");
  if (!file_) throw std::runtime_error(path_ + ": cannot open");
  gzbuffer(file_, 1u << 17);
}

GzReader::~GzReader() {
  if (file_) gzclose(file_);
}

std::size_t GzReader::read(void* dst, std::size_t n) {
  auto* out = static_cast<unsigned char*>(dst);
  std::size_t done = 0;
  while (done < n) {
    // gzread takes an unsigned count and returns an int: at most INT_MAX per call.
    const auto want = static_cast<unsigned>(std::min<std::size_t>(n - done, 1u << 30));
    const int got = gzread(file_, out + done, want);
    if (got < 0) {
      int code = 0;
      throw std::runtime_error(path_ + ": read error: " + gzerror(file_, &code));
    }
    done += static_cast<std::size_t>(got);
    if (static_cast<unsigned>(got) < want)
      break;  // the end of the data, or of what could be inflated
  }
  if (done < n) {
    // A gzip stream cut short is not an error to gzread (it returns what it could inflate),
    // only to gzerror: Z_BUF_ERROR "unexpected end of file".
    int code = Z_OK;
    const std::string msg = gzerror(file_, &code);
    if (code != Z_OK) throw std::runtime_error(path_ + ": corrupt or truncated gzip data: " + msg);
  }
  return done;
}

std::uint64_t GzReader::skip_rest(std::uint64_t limit) {
  std::vector<unsigned char> buf(1u << 16);
  std::uint64_t total = 0;
  while (total <= limit) {
    const std::size_t got = read(buf.data(), buf.size());
    total += got;
    if (got < buf.size()) break;
  }
  return std::min(total, limit + 1);
}

}  // namespace detdl::data
