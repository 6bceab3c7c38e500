// MNIST-format data: the IDX container (LeCun's format for MNIST and Fashion-MNIST), read
// gzipped or plain through zlib, and the dl-variance study's validation/test split of the
// official test set (../shared/design/VARIANCE.md, "Data splits").
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/dataset.h"

namespace detdl::data {

// The whole content of a file, decompressed if it is gzipped (gzread passes plain files
// through). Throws std::runtime_error naming the file when it cannot be opened, read, its
// gzip stream is truncated or corrupt, or its content is longer than max_bytes (checked
// while inflating: memory stays bounded by max_bytes whatever the stream holds).
std::vector<std::uint8_t> read_file_bytes(const std::string& path, std::uint64_t max_bytes);

// `dir`/`name` if it exists, else `dir`/`name`.gz; throws std::runtime_error naming both
// when neither exists.
std::string find_plain_or_gz(const std::string& dir, const std::string& name);

// An unsigned-byte IDX array: dims (big-endian uint32 each in the file), then the bytes in
// row-major order.
struct IdxArray {
  std::vector<std::int64_t> dims;
  std::vector<std::uint8_t> bytes;
};

// The most data bytes an IDX file may declare: 2 GiB, 4x EMNIST's largest file (a float
// tensor of it is 8 GiB). A header claiming more is refused before anything is allocated.
inline constexpr std::uint64_t kMaxIdxDataBytes = std::uint64_t{1} << 31;

// Reads an IDX file of type 0x08 (unsigned byte), gzipped or plain, as a stream: the
// header first, checked (two zero bytes, type 0x08, 1..8 dims, the dims' product at most
// kMaxIdxDataBytes) before the data is read; then that the data is not truncated and that
// nothing follows it (without inflating more than 1 MiB of what follows). Errors are
// std::runtime_error naming the file.
IdxArray read_idx(const std::string& path);

// Train and test halves of an image data set; y is int32 labels in [0, classes).
struct ImageSplit {
  Dataset train;
  Dataset test;
  std::int64_t classes = 10;
};

// `dir` holds train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
// t10k-labels-idx1-ubyte, each plain or .gz (MNIST and Fashion-MNIST naming).
// x float32 (N, 1, R, C) = byte / 255.0f (R = C = 28 for MNIST); y int32 (N).
// Both files' headers are checked against each other before either's data is read.
// Errors (std::runtime_error, naming the file): missing file, any read_idx error, images
// not 3-dimensional, labels not 1-dimensional, image count != label count, label >= 10.
ImageSplit load_mnist_dir(const std::string& dir);

// The dl-variance study's split of the official test set: validation = rows [0, head)
// (head = 7500 there), test = rows [head, N). Needs 0 < head < N.
std::pair<Dataset, Dataset> split_head(const Dataset& d, std::int64_t head);

}  // namespace detdl::data
