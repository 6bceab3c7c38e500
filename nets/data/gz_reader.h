// A gzipped or plain file read piece by piece through zlib (gzread passes plain files
// through), so that a loader can check a header before it inflates, or allocates for, the
// body: a few MB of gzip can inflate to many GB.
#pragma once
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace detdl::data {

class GzReader {
 public:
  // Throws std::runtime_error "<path>: cannot open".
  explicit GzReader(std::string path);
  ~GzReader();
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to n bytes into dst and returns how many; fewer than n only at the end of the
  // data. Throws std::runtime_error naming the file on a read error and on a gzip stream that
  // is corrupt or cut short (zlib reports those only through gzerror, not gzread's count).
  std::size_t read(void* dst, std::size_t n);
  // Reads to the end without keeping anything; returns the bytes read, but stops counting
  // (and reading) at limit + 1, so that an endless stream costs at most that much.
  std::uint64_t skip_rest(std::uint64_t limit);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  gzFile file_ = nullptr;
};

}  // namespace detdl::data
