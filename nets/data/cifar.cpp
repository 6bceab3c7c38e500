#include "nets/data/cifar.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <vector>

namespace detdl::data {

namespace {

constexpr std::int64_t kPixels = 3 * 32 * 32;  // one image: R, G, B planes of 32x32

// The label byte that y takes, its offset in the record, and the bound of every label byte.
struct RecordLayout {
  std::int64_t label_bytes;  // 1 (CIFAR-10) or 2 (CIFAR-100: coarse, fine)
  std::int64_t y_offset;     // which label byte is y
};

RecordLayout layout(CifarKind kind) {
  switch (kind) {
    case CifarKind::cifar10: return {1, 0};
    case CifarKind::cifar100_coarse: return {2, 0};
    case CifarKind::cifar100_fine: return {2, 1};
  }
  throw std::invalid_argument("unknown CifarKind");
}

// Bound of label byte `offset` in a record of `kind`.
int label_bound(CifarKind kind, std::int64_t offset) {
  if (kind == CifarKind::cifar10) return 10;
  return offset == 0 ? 20 : 100;
}

const char* label_name(CifarKind kind, std::int64_t offset) {
  if (kind == CifarKind::cifar10) return "label";
  return offset == 0 ? "coarse label" : "fine label";
}

Dataset concat_rows(const std::vector<Dataset>& parts) {
  std::int64_t n = 0;
  for (const Dataset& p : parts) n += p.size();
  Shape xs = parts.at(0).x.shape();
  xs[0] = n;
  Dataset out{Tensor::empty(xs), Tensor::empty({n}, DType::i32)};
  float* x = out.x.f32();
  std::int32_t* y = out.y.i32();
  for (const Dataset& p : parts) {
    std::memcpy(x, p.x.f32(), static_cast<std::size_t>(p.x.numel()) * sizeof(float));
    std::memcpy(y, p.y.i32(), static_cast<std::size_t>(p.size()) * sizeof(std::int32_t));
    x += p.x.numel();
    y += p.size();
  }
  return out;
}

// `dir` itself if it holds `probe` (plain or gz), else `dir`/`subdir`.
std::string data_dir(const std::string& dir, const std::string& subdir, const std::string& probe) {
  namespace fs = std::filesystem;
  const fs::path d(dir);
  if (fs::is_regular_file(d / probe) || fs::is_regular_file(d / (probe + ".gz"))) return d.string();
  return (d / subdir).string();
}

void check_pixels_shape(const Tensor& x, const char* what) {
  check_dtype(x, DType::f32, what);
  if (x.ndim() != 4 || x.dim(1) != 3 || x.dim(2) != 32 || x.dim(3) != 32 || x.dim(0) < 1)
    throw std::invalid_argument(std::string(what) +
                                ": expected shape [N, 3, 32, 32] with N >= 1, got " +
                                shape_str(x.shape()));
}

void check_labels(const Tensor& y, std::int64_t n, int bound, const char* what) {
  check_dtype(y, DType::i32, what);
  check_shape(y, {n}, what);
  const std::int32_t* p = y.i32();
  for (std::int64_t i = 0; i < n; ++i)
    if (p[i] < 0 || p[i] >= bound)
      throw std::invalid_argument(std::string(what) + ": label " + std::to_string(p[i]) +
                                  " at row " + std::to_string(i) + " is not in [0, " +
                                  std::to_string(bound) + ")");
}

// Records of x (N, 3, 32, 32) with label bytes labels[k] (each a (N) int32 tensor).
void write_records(const std::string& path, const Tensor& x,
                   const std::vector<const Tensor*>& labels) {
  const std::int64_t n = x.dim(0);
  const float* px = x.f32();
  for (std::int64_t i = 0; i < x.numel(); ++i)
    if (!(px[i] >= 0.0f && px[i] <= 1.0f))
      throw std::invalid_argument("write_cifar_file: x[" + std::to_string(i) +
                                  "] = " + std::to_string(px[i]) + " is not in [0, 1]");
  const std::size_t record = labels.size() + kPixels;
  std::vector<std::uint8_t> buf(static_cast<std::size_t>(n) * record);
  for (std::int64_t i = 0; i < n; ++i) {
    std::uint8_t* r = buf.data() + static_cast<std::size_t>(i) * record;
    for (std::size_t k = 0; k < labels.size(); ++k)
      r[k] = static_cast<std::uint8_t>(labels[k]->i32()[i]);
    for (std::int64_t j = 0; j < kPixels; ++j)
      r[labels.size() + j] =
          static_cast<std::uint8_t>(std::lround(static_cast<double>(px[i * kPixels + j]) * 255.0));
  }
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) throw std::runtime_error(path + ": cannot open for writing");
  if (std::fwrite(buf.data(), 1, buf.size(), f.get()) != buf.size())
    throw std::runtime_error(path + ": write failed");
  if (std::fclose(f.release()) != 0) throw std::runtime_error(path + ": write failed on close");
}

}  // namespace

std::int64_t cifar_classes(CifarKind kind) {
  switch (kind) {
    case CifarKind::cifar10: return 10;
    case CifarKind::cifar100_fine: return 100;
    case CifarKind::cifar100_coarse: return 20;
  }
  throw std::invalid_argument("unknown CifarKind");
}

std::int64_t cifar_record_bytes(CifarKind kind) { return layout(kind).label_bytes + kPixels; }

Dataset read_cifar_file(const std::string& path, CifarKind kind) {
  const RecordLayout lay = layout(kind);
  // The file has no header: its length is its record count. The largest official file
  // (CIFAR-100 train.bin) is 153.7 MB; 1 GiB (340,000 records) bounds what a small gzip
  // may inflate to before it is refused.
  constexpr std::uint64_t kMaxCifarFileBytes = std::uint64_t{1} << 30;
  const std::vector<std::uint8_t> raw = read_file_bytes(path, kMaxCifarFileBytes);
  const auto record = static_cast<std::size_t>(cifar_record_bytes(kind));
  if (raw.empty()) throw std::runtime_error(path + ": empty CIFAR file");
  if (raw.size() % record != 0)
    throw std::runtime_error(path + ": truncated CIFAR file: " + std::to_string(raw.size()) +
                             " bytes is not a multiple of the " + std::to_string(record) +
                             "-byte record (the last record has " +
                             std::to_string(raw.size() % record) + " bytes)");
  const auto n = static_cast<std::int64_t>(raw.size() / record);
  Dataset d{Tensor::empty({n, 3, 32, 32}), Tensor::empty({n}, DType::i32)};
  float* x = d.x.f32();
  std::int32_t* y = d.y.i32();
  for (std::int64_t i = 0; i < n; ++i) {
    const std::uint8_t* r = raw.data() + static_cast<std::size_t>(i) * record;
    for (std::int64_t k = 0; k < lay.label_bytes; ++k)
      if (r[k] >= label_bound(kind, k))
        throw std::runtime_error(path + ": " + label_name(kind, k) + " " + std::to_string(r[k]) +
                                 " in record " + std::to_string(i) + " is not in [0, " +
                                 std::to_string(label_bound(kind, k)) + ")");
    y[i] = r[lay.y_offset];
    const std::uint8_t* pix = r + lay.label_bytes;
    for (std::int64_t j = 0; j < kPixels; ++j)
      x[i * kPixels + j] = static_cast<float>(pix[j]) / 255.0f;
  }
  return d;
}

ImageSplit load_cifar_dir(const std::string& dir, CifarKind kind) {
  ImageSplit s;
  s.classes = cifar_classes(kind);
  if (kind == CifarKind::cifar10) {
    const std::string d = data_dir(dir, "cifar-10-batches-bin", "data_batch_1.bin");
    std::vector<Dataset> parts;
    for (int b = 1; b <= 5; ++b)
      parts.push_back(
          read_cifar_file(find_plain_or_gz(d, "data_batch_" + std::to_string(b) + ".bin"), kind));
    s.train = concat_rows(parts);
    s.test = read_cifar_file(find_plain_or_gz(d, "test_batch.bin"), kind);
  } else {
    const std::string d = data_dir(dir, "cifar-100-binary", "train.bin");
    s.train = read_cifar_file(find_plain_or_gz(d, "train.bin"), kind);
    s.test = read_cifar_file(find_plain_or_gz(d, "test.bin"), kind);
  }
  return s;
}

void write_cifar_file(const std::string& path, const Dataset& d, CifarKind kind) {
  check_pixels_shape(d.x, "write_cifar_file: x");
  const std::int64_t n = d.x.dim(0);
  check_labels(d.y, n, static_cast<int>(cifar_classes(kind)), "write_cifar_file: y");
  if (kind == CifarKind::cifar10) {
    write_records(path, d.x, {&d.y});
    return;
  }
  const Tensor zeros = Tensor::zeros({n}, DType::i32);
  if (kind == CifarKind::cifar100_coarse)
    write_records(path, d.x, {&d.y, &zeros});
  else
    write_records(path, d.x, {&zeros, &d.y});
}

void write_cifar100_file(const std::string& path, const Tensor& x, const Tensor& coarse,
                         const Tensor& fine) {
  check_pixels_shape(x, "write_cifar100_file: x");
  check_labels(coarse, x.dim(0), 20, "write_cifar100_file: coarse");
  check_labels(fine, x.dim(0), 100, "write_cifar100_file: fine");
  write_records(path, x, {&coarse, &fine});
}

}  // namespace detdl::data
