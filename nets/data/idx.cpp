#include "nets/data/idx.h"

#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <limits>
#include <stdexcept>

namespace detdl::data {

std::vector<std::uint8_t> read_file_bytes(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error(path + ": cannot open");
  gzbuffer(f, 1u << 17);
  std::vector<std::uint8_t> out;
  constexpr unsigned kChunk = 1u << 20;
  for (;;) {
    const std::size_t old = out.size();
    out.resize(old + kChunk);
    const int got = gzread(f, out.data() + old, kChunk);
    if (got < 0) {
      int code = 0;
      const std::string msg = gzerror(f, &code);
      gzclose(f);
      throw std::runtime_error(path + ": read error: " + msg);
    }
    out.resize(old + static_cast<std::size_t>(got));
    if (got == 0) break;
  }
  // A gzip stream cut short is not an error to gzread (it returns what it could inflate),
  // only to gzerror: Z_BUF_ERROR "unexpected end of file".
  int code = Z_OK;
  const std::string msg = gzerror(f, &code);
  gzclose(f);
  if (code != Z_OK) throw std::runtime_error(path + ": corrupt or truncated gzip data: " + msg);
  return out;
}

std::string find_plain_or_gz(const std::string& dir, const std::string& name) {
  const std::filesystem::path plain = std::filesystem::path(dir) / name;
  if (std::filesystem::is_regular_file(plain)) return plain.string();
  const std::filesystem::path gz = std::filesystem::path(dir) / (name + ".gz");
  if (std::filesystem::is_regular_file(gz)) return gz.string();
  throw std::runtime_error(plain.string() + ": missing (neither " + name + " nor " + name + ".gz in " + dir + ")");
}

IdxArray read_idx(const std::string& path) {
  const std::vector<std::uint8_t> raw = read_file_bytes(path);
  if (raw.size() < 4) throw std::runtime_error(path + ": not an IDX file: " + std::to_string(raw.size()) + " bytes, shorter than the 4-byte magic");
  // Magic: 0x00 0x00 <type> <ndims>; type 0x08 = unsigned byte (the only one MNIST uses).
  if (raw[0] != 0 || raw[1] != 0)
    throw std::runtime_error(path + ": bad IDX magic (the first two bytes must be zero)");
  if (raw[2] != 0x08) {
    char type[8];
    std::snprintf(type, sizeof type, "0x%02x", raw[2]);
    throw std::runtime_error(path + ": IDX data type " + type + " is not 0x08 (unsigned byte)");
  }
  const int ndims = raw[3];
  if (ndims < 1 || ndims > 8) throw std::runtime_error(path + ": IDX with " + std::to_string(ndims) + " dims (expected 1..8)");
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(ndims);
  if (raw.size() < header)
    throw std::runtime_error(path + ": truncated IDX header (" + std::to_string(raw.size()) + " bytes, need " + std::to_string(header) + ")");
  IdxArray a;
  std::uint64_t count = 1;
  for (int d = 0; d < ndims; ++d) {
    const std::uint8_t* p = raw.data() + 4 + 4 * d;
    const std::uint64_t dim = (std::uint64_t{p[0]} << 24) | (std::uint64_t{p[1]} << 16) | (std::uint64_t{p[2]} << 8) | p[3];
    if (dim != 0 && count > (std::uint64_t{1} << 40) / dim)
      throw std::runtime_error(path + ": IDX dims too large");
    count *= dim;
    a.dims.push_back(static_cast<std::int64_t>(dim));
  }
  const std::uint64_t have = raw.size() - header;
  if (have < count)
    throw std::runtime_error(path + ": truncated IDX data: " + std::to_string(have) + " bytes, dims need " + std::to_string(count));
  if (have > count)
    throw std::runtime_error(path + ": " + std::to_string(have - count) + " trailing bytes after the IDX data");
  a.bytes.assign(raw.begin() + static_cast<std::ptrdiff_t>(header), raw.end());
  return a;
}

namespace {

// Images (N, R, C) and labels (N) of one half into x (N, 1, R, C) in [0, 1] and y (N).
Dataset load_mnist_half(const std::string& dir, const std::string& prefix) {
  const std::string images_path = find_plain_or_gz(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_plain_or_gz(dir, prefix + "-labels-idx1-ubyte");
  const IdxArray images = read_idx(images_path);
  const IdxArray labels = read_idx(labels_path);
  if (images.dims.size() != 3)
    throw std::runtime_error(images_path + ": images need 3 dims (N, rows, cols), got " + std::to_string(images.dims.size()));
  if (labels.dims.size() != 1)
    throw std::runtime_error(labels_path + ": labels need 1 dim (N), got " + std::to_string(labels.dims.size()));
  const std::int64_t n = images.dims[0], rows = images.dims[1], cols = images.dims[2];
  if (labels.dims[0] != n)
    throw std::runtime_error(labels_path + ": " + std::to_string(labels.dims[0]) + " labels for " + std::to_string(n) +
                             " images in " + images_path);
  if (n == 0 || rows == 0 || cols == 0) throw std::runtime_error(images_path + ": empty image array");
  Dataset d{Tensor::empty({n, 1, rows, cols}), Tensor::empty({n}, DType::i32)};
  float* x = d.x.f32();
  for (std::size_t i = 0; i < images.bytes.size(); ++i) x[i] = static_cast<float>(images.bytes[i]) / 255.0f;
  std::int32_t* y = d.y.i32();
  for (std::int64_t i = 0; i < n; ++i) {
    const std::uint8_t label = labels.bytes[static_cast<std::size_t>(i)];
    if (label >= 10)
      throw std::runtime_error(labels_path + ": label " + std::to_string(label) + " at row " + std::to_string(i) + " is not in [0, 10)");
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
    throw std::runtime_error(dir + ": train images " + shape_str(s.train.x.shape()) + " and t10k images " +
                             shape_str(s.test.x.shape()) + " differ in size");
  s.classes = 10;
  return s;
}

std::pair<Dataset, Dataset> split_head(const Dataset& d, std::int64_t head) {
  if (head <= 0 || head >= d.size())
    throw std::invalid_argument("split_head: head " + std::to_string(head) + " must be in (0, " + std::to_string(d.size()) + ")");
  return {slice_rows(d, 0, head), slice_rows(d, head, d.size())};
}

}  // namespace detdl::data
