// CIFAR-10 / CIFAR-100 in the binary version Krizhevsky distributes (cifar-10-binary.tar.gz,
// cifar-100-binary.tar.gz), and a writer for the same format (tests; generated data).
#pragma once
#include <cstdint>
#include <string>

#include "engine/dataset.h"
#include "nets/data/idx.h"  // ImageSplit

namespace detdl::data {

// Which label a file's records carry and which one y takes. CIFAR-100 records carry both
// (coarse first, then fine).
enum class CifarKind { cifar10, cifar100_fine, cifar100_coarse };
std::int64_t cifar_classes(CifarKind kind);       // 10, 100, 20
std::int64_t cifar_record_bytes(CifarKind kind);  // 3073 (CIFAR-10), 3074 (CIFAR-100)

// One binary file. CIFAR-10 record: 1 label byte + 3072 pixel bytes (R plane, G, B; each
// 32x32 row-major); CIFAR-100: 1 coarse + 1 fine label byte + 3072. gz or plain.
// x float32 (N, 3, 32, 32) = byte / 255.0f; y int32 (N).
// Errors (std::runtime_error naming the file): empty file, size not a multiple of the
// record (says how many bytes the last record has), a label (either byte for CIFAR-100)
// out of range (10 / coarse 20 / fine 100 classes).
Dataset read_cifar_file(const std::string& path, CifarKind kind);

// A directory: CIFAR-10 data_batch_1..5.bin + test_batch.bin, in `dir` or in its
// cifar-10-batches-bin subdir; CIFAR-100 train.bin + test.bin, in `dir` or its
// cifar-100-binary subdir. Each file may also be gzipped (name.gz).
ImageSplit load_cifar_dir(const std::string& dir, CifarKind kind);

// Writes d in the format above: x (N, 3, 32, 32) float32 in [0, 1] -> round(x * 255) (half
// away from zero); y int32 (N) labels of `kind`. CIFAR-100 records need both labels: this
// writes y into the byte `kind` names and 0 into the other one (use write_cifar100_file to
// set both). Throws std::invalid_argument on a bad shape, dtype, pixel or label.
void write_cifar_file(const std::string& path, const Dataset& d, CifarKind kind);

// CIFAR-100 with both labels: x (N, 3, 32, 32) in [0, 1], coarse and fine int32 (N).
void write_cifar100_file(const std::string& path, const Tensor& x, const Tensor& coarse,
                         const Tensor& fine);

}  // namespace detdl::data
