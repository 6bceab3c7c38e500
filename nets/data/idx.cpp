#include "nets/data/idx.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "nets/data/gz_reader.h"

namespace detdl::data {

std::vector<std::uint8_t> read_file_bytes(const std::string& path, std::uint64_t max_bytes) {
  GzReader in(path);
  std::vector<std::uint8_t> out;
  constexpr std::size_t kChunk = std::size_t{1} << 20;
  for (;;) {
    const std::size_t old = out.size();
    if (old > max_bytes)
      throw std::runtime_error(path + ": longer than " + std::to_string(max_bytes) +
                               " bytes (decompressed), more than this kind of file holds");
    out.resize(old + kChunk);
    const std::size_t got = in.read(out.data() + old, kChunk);
    out.resize(old + got);
    if (got < kChunk) break;
  }
  if (out.size() > max_bytes)
    throw std::runtime_error(path + ": longer than " + std::to_string(max_bytes) +
                             " bytes (decompressed), more than this kind of file holds");
  return out;
}

std::string find_plain_or_gz(const std::string& dir, const std::string& name) {
  const std::filesystem::path plain = std::filesystem::path(dir) / name;
  if (std::filesystem::is_regular_file(plain)) return plain.string();
  const std::filesystem::path gz = std::filesystem::path(dir) / (name + ".gz");
  if (std::filesystem::is_regular_file(gz)) return gz.string();
  throw std::runtime_error(plain.string() + ": missing (neither " + name + " nor " + name +
                           ".gz in " + dir + ")");
}

namespace {

std::string dims_str(const std::vector<std::int64_t>& dims) {
  std::string s;
  for (auto d : dims) s += (s.empty() ? "" : " x ") + std::to_string(d);
  return s;
}

// Reads and checks the header of the IDX file `in` reads: a.dims is filled; returns the
// number of data bytes the dims declare. Nothing of the data is read or allocated.
std::uint64_t read_idx_header(GzReader& in, IdxArray& a) {
  const std::string& path = in.path();
  std::uint8_t magic[4] = {};
  const std::size_t got = in.read(magic, 4);
  if (got < 4)
    throw std::runtime_error(path + ": not an IDX file: " + std::to_string(got) +
                             " bytes, shorter than the 4-byte magic");
  // Magic: 0x00 0x00 <type> <ndims>; type 0x08 = unsigned byte (the only one MNIST uses).
  if (magic[0] != 0 || magic[1] != 0)
    throw std::runtime_error(path + ": bad IDX magic (the first two bytes must be zero)");
  if (magic[2] != 0x08) {
    char type[8];
    std::snprintf(type, sizeof type, "0x%02x", magic[2]);
    throw std::runtime_error(path + ": IDX data type " + type + " is not 0x08 (unsigned byte)");
  }
  const int ndims = magic[3];
  if (ndims < 1 || ndims > 8)
    throw std::runtime_error(path + ": IDX with " + std::to_string(ndims) +
                             " dims (expected 1..8)");
  std::uint8_t raw[32] = {};
  const std::size_t need = 4 * static_cast<std::size_t>(ndims);
  if (const std::size_t have = in.read(raw, need); have < need)
    throw std::runtime_error(path + ": truncated IDX header (" + std::to_string(4 + have) +
                             " bytes, need " + std::to_string(4 + need) + ")");
  for (int d = 0; d < ndims; ++d) {
    const std::uint8_t* p = raw + 4 * d;
    a.dims.push_back(static_cast<std::int64_t>((std::uint64_t{p[0]} << 24) |
                                               (std::uint64_t{p[1]} << 16) |
                                               (std::uint64_t{p[2]} << 8) | p[3]));
  }
  if (std::find(a.dims.begin(), a.dims.end(), 0) != a.dims.end()) return 0;
  std::uint64_t count = 1;
  for (const auto dim : a.dims) {
    // count <= kMaxIdxDataBytes (2^31) and dim < 2^32 here: the product cannot overflow.
    count *= static_cast<std::uint64_t>(dim);
    if (count > kMaxIdxDataBytes)
      throw std::runtime_error(
          path + ": IDX dims " + dims_str(a.dims) + " declare more than " +
          std::to_string(kMaxIdxDataBytes) +
          " bytes of data (the most this reader accepts); refused before reading it");
  }
  return count;
}

// The `count` data bytes after the header, then checks that nothing follows them. The buffer
// grows with what is actually read, so a stream shorter than its header claims costs only
// what it holds.
std::vector<std::uint8_t> read_idx_data(GzReader& in, std::uint64_t count) {
  std::vector<std::uint8_t> bytes;
  constexpr std::uint64_t kChunk = std::uint64_t{1} << 24;
  while (bytes.size() < count) {
    const std::size_t old = bytes.size();
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, count - old));
    bytes.resize(old + want);
    const std::size_t got = in.read(bytes.data() + old, want);
    bytes.resize(old + got);
    if (got < want) break;
  }
  if (bytes.size() < count)
    throw std::runtime_error(in.path() + ": truncated IDX data: " + std::to_string(bytes.size()) +
                             " bytes, dims need " + std::to_string(count));
  // Reading on to the end also finds a gzip trailer that is cut or corrupt.
  constexpr std::uint64_t kTrailingLimit = std::uint64_t{1} << 20;
  if (const std::uint64_t trailing = in.skip_rest(kTrailingLimit); trailing > kTrailingLimit)
    throw std::runtime_error(in.path() + ": more than " + std::to_string(kTrailingLimit) +
                             " trailing bytes after the IDX data");
  else if (trailing > 0)
    throw std::runtime_error(in.path() + ": " + std::to_string(trailing) +
                             " trailing bytes after the IDX data");
  return bytes;
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  GzReader in(path);
  IdxArray a;
  const std::uint64_t count = read_idx_header(in, a);
  a.bytes = read_idx_data(in, count);
  return a;
}

namespace {

// Images (N, R, C) and labels (N) of one half into x (N, 1, R, C) in [0, 1] and y (N).
Dataset load_mnist_half(const std::string& dir, const std::string& prefix) {
  const std::string images_path = find_plain_or_gz(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_plain_or_gz(dir, prefix + "-labels-idx1-ubyte");
  // Both headers first: a count that disagrees with the other file's is refused before
  // either file's data is inflated.
  GzReader images_in(images_path), labels_in(labels_path);
  IdxArray images, labels;
  const std::uint64_t image_bytes = read_idx_header(images_in, images);
  const std::uint64_t label_bytes = read_idx_header(labels_in, labels);
  if (images.dims.size() != 3)
    throw std::runtime_error(images_path + ": images need 3 dims (N, rows, cols), got " +
                             std::to_string(images.dims.size()));
  if (labels.dims.size() != 1)
    throw std::runtime_error(labels_path + ": labels need 1 dim (N), got " +
                             std::to_string(labels.dims.size()));
  const std::int64_t n = images.dims[0], rows = images.dims[1], cols = images.dims[2];
  if (labels.dims[0] != n)
    throw std::runtime_error(labels_path + ": " + std::to_string(labels.dims[0]) + " labels for " +
                             std::to_string(n) + " images in " + images_path);
  if (n == 0 || rows == 0 || cols == 0)
    throw std::runtime_error(images_path + ": empty image array");
  labels.bytes = read_idx_data(labels_in, label_bytes);
  images.bytes = read_idx_data(images_in, image_bytes);
  Dataset d{Tensor::empty({n, 1, rows, cols}), Tensor::empty({n}, DType::i32)};
  float* x = d.x.f32();
  for (std::size_t i = 0; i < images.bytes.size(); ++i)
    x[i] = static_cast<float>(images.bytes[i]) / 255.0f;
  std::int32_t* y = d.y.i32();
  for (std::int64_t i = 0; i < n; ++i) {
    const std::uint8_t label = labels.bytes[static_cast<std::size_t>(i)];
    if (label >= 10)
      throw std::runtime_error(labels_path + ": label " + std::to_string(label) + " at row " +
                               std::to_string(i) + " is not in [0, 10)");
    y[i] = label;
  }
  return d;
}

}  // namespace

ImageSplit load_mnist_dir(const std::string& dir) {
  ImageSplit s;
  s.train = load_mnist_half(dir, "train");
  s.test = load_mnist_half(dir, "t10k");
  if (s.train.x.shape()[2] != s.test.x.shape()[2] || s.train.x.shape()[3] != s.test.x.shape()[3])
    throw std::runtime_error(dir + ": train images " + shape_str(s.train.x.shape()) +
                             " and t10k images " + shape_str(s.test.x.shape()) + " differ in size");
  s.classes = 10;
  return s;
}

std::pair<Dataset, Dataset> split_head(const Dataset& d, std::int64_t head) {
  if (head <= 0 || head >= d.size())
    throw std::invalid_argument("split_head: head " + std::to_string(head) + " must be in (0, " +
                                std::to_string(d.size()) + ")");
  return {slice_rows(d, 0, head), slice_rows(d, head, d.size())};
}

}  // namespace detdl::data
