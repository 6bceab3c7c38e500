// CIFAR binary files: round trips through write_cifar_file / read_cifar_file for CIFAR-10
// and CIFAR-100, the byte layout checked directly in the file, directory layouts, and
// broken files (truncated, empty, labels out of range) refused with the file's name.
// No real CIFAR copy exists on these machines (../shared/data/SOURCES.md).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "nets/data/cifar.h"

using namespace detdl;
using namespace detdl::data;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kImage = 3 * 32 * 32;

struct TempDir {
  fs::path path;
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path = fs::temp_directory_path() /
           ("detdl_cifar_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::vector<std::uint8_t> read_raw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_raw(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// The pixel byte of image i at flat position j (channel-major: R plane, G, B), distinct
// enough that a swapped plane, row or image shows.
std::uint8_t pixel_byte(std::int64_t i, std::int64_t j) {
  return static_cast<std::uint8_t>((i * 31 + j * 7 + j / 1024 * 5) % 256);
}

// n images whose pixels are pixel_byte / 255 (exact after a round trip) and labels
// label(i) (int32, (n)).
Dataset make_images(std::int64_t n, std::int32_t (*label)(std::int64_t)) {
  Dataset d{Tensor::empty({n, 3, 32, 32}), Tensor::empty({n}, DType::i32)};
  for (std::int64_t i = 0; i < n; ++i) {
    d.y.i32()[i] = label(i);
    for (std::int64_t j = 0; j < kImage; ++j)
      d.x.f32()[i * kImage + j] = static_cast<float>(pixel_byte(i, j)) / 255.0f;
  }
  return d;
}

std::int32_t label10(std::int64_t i) { return static_cast<std::int32_t>((i * 3 + 1) % 10); }
std::int32_t label100(std::int64_t i) { return static_cast<std::int32_t>((i * 37 + 5) % 100); }
std::int32_t label20(std::int64_t i) { return static_cast<std::int32_t>((i * 7 + 2) % 20); }

void expect_same(const Dataset& a, const Dataset& b) {
  ASSERT_EQ(a.x.shape(), b.x.shape());
  ASSERT_EQ(a.y.shape(), b.y.shape());
  for (std::int64_t i = 0; i < a.x.numel(); ++i)
    ASSERT_EQ(a.x.f32()[i], b.x.f32()[i]) << "pixel " << i;
  for (std::int64_t i = 0; i < a.y.numel(); ++i)
    ASSERT_EQ(a.y.i32()[i], b.y.i32()[i]) << "label " << i;
}

template <typename F>
void expect_error_containing(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL() << "no exception; expected one containing " << parts.at(0);
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "message: " << msg << "\nmissing: " << p;
  }
}

}  // namespace

TEST(Cifar, Cifar10RoundTripAndByteLayout) {
  TempDir t;
  const Dataset d = make_images(5, label10);
  write_cifar_file(t.file("batch.bin"), d, CifarKind::cifar10);
  // The format, read directly: 1 label byte then the R, G, B planes, 32x32 row-major each.
  const auto raw = read_raw(t.file("batch.bin"));
  ASSERT_EQ(raw.size(), 5u * 3073u);
  for (std::int64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(raw[i * 3073], label10(i));
    for (std::int64_t c = 0; c < 3; ++c)
      for (std::int64_t r = 0; r < 32; r += 7)
        for (std::int64_t q = 0; q < 32; q += 5) {
          const std::int64_t j = c * 1024 + r * 32 + q;
          ASSERT_EQ(raw[i * 3073 + 1 + j], pixel_byte(i, j));
        }
  }
  const Dataset back = read_cifar_file(t.file("batch.bin"), CifarKind::cifar10);
  expect_same(back, d);
}

TEST(Cifar, Cifar100RoundTripBothLabels) {
  TempDir t;
  const Dataset fine = make_images(4, label100);
  const Dataset coarse = make_images(4, label20);
  write_cifar100_file(t.file("train.bin"), fine.x, coarse.y, fine.y);
  const auto raw = read_raw(t.file("train.bin"));
  ASSERT_EQ(raw.size(), 4u * 3074u);
  for (std::int64_t i = 0; i < 4; ++i) {
    EXPECT_EQ(raw[i * 3074], label20(i));       // coarse first
    EXPECT_EQ(raw[i * 3074 + 1], label100(i));  // then fine
    EXPECT_EQ(raw[i * 3074 + 2], pixel_byte(i, 0));
  }
  expect_same(read_cifar_file(t.file("train.bin"), CifarKind::cifar100_fine), fine);
  expect_same(read_cifar_file(t.file("train.bin"), CifarKind::cifar100_coarse), coarse);

  // write_cifar_file with one label set writes the other byte as 0.
  write_cifar_file(t.file("fine.bin"), fine, CifarKind::cifar100_fine);
  expect_same(read_cifar_file(t.file("fine.bin"), CifarKind::cifar100_fine), fine);
  const Dataset zero_coarse = read_cifar_file(t.file("fine.bin"), CifarKind::cifar100_coarse);
  for (std::int64_t i = 0; i < 4; ++i) EXPECT_EQ(zero_coarse.y.i32()[i], 0);
  write_cifar_file(t.file("coarse.bin"), coarse, CifarKind::cifar100_coarse);
  expect_same(read_cifar_file(t.file("coarse.bin"), CifarKind::cifar100_coarse), coarse);
}

TEST(Cifar, WriterRoundsToNearestByteAndRefusesBadInput) {
  TempDir t;
  Dataset d = make_images(1, label10);
  d.x.f32()[0] = 0.5f;                   // 127.5 -> 128 (half away from zero)
  d.x.f32()[1] = 0.3f;                   // 76.5 in float64 (0.3f = 0.30000001...) -> 77
  d.x.f32()[2] = 1.0f / 255.0f * 0.49f;  // below half a step -> 0
  write_cifar_file(t.file("r.bin"), d, CifarKind::cifar10);
  const auto raw = read_raw(t.file("r.bin"));
  EXPECT_EQ(raw[1], 128);
  EXPECT_EQ(raw[2], 77);
  EXPECT_EQ(raw[3], 0);

  Dataset out_of_range = make_images(1, label10);
  out_of_range.x.f32()[10] = 1.5f;
  expect_error_containing(
      [&] { write_cifar_file(t.file("x.bin"), out_of_range, CifarKind::cifar10); }, {"x[10]"});
  Dataset bad_label = make_images(2, label10);
  bad_label.y.i32()[1] = 10;
  expect_error_containing([&] { write_cifar_file(t.file("x.bin"), bad_label, CifarKind::cifar10); },
                          {"label 10", "row 1"});
  Dataset bad_shape{Tensor::zeros({2, 3, 32, 31}), Tensor::zeros({2}, DType::i32)};
  EXPECT_THROW(write_cifar_file(t.file("x.bin"), bad_shape, CifarKind::cifar10),
               std::invalid_argument);
}

TEST(Cifar, TruncatedEmptyAndBadLabelFilesAreRefused) {
  TempDir t;
  write_cifar_file(t.file("good.bin"), make_images(3, label10), CifarKind::cifar10);
  auto raw = read_raw(t.file("good.bin"));

  write_raw(t.file("truncated.bin"), std::vector<std::uint8_t>(raw.begin(), raw.end() - 100));
  expect_error_containing([&] { read_cifar_file(t.file("truncated.bin"), CifarKind::cifar10); },
                          {"truncated.bin", "truncated", "9119 bytes", "3073", "2973 bytes"});

  write_raw(t.file("empty.bin"), {});
  expect_error_containing([&] { read_cifar_file(t.file("empty.bin"), CifarKind::cifar10); },
                          {"empty.bin", "empty"});

  auto bad = raw;
  bad[2 * 3073] = 10;  // record 2's label
  write_raw(t.file("label.bin"), bad);
  expect_error_containing([&] { read_cifar_file(t.file("label.bin"), CifarKind::cifar10); },
                          {"label.bin", "label 10", "record 2"});

  // A CIFAR-10 file read as CIFAR-100 has the wrong record size.
  expect_error_containing([&] { read_cifar_file(t.file("good.bin"), CifarKind::cifar100_fine); },
                          {"good.bin", "3074"});

  // CIFAR-100: both label bytes are checked, whichever one y takes.
  const Dataset d = make_images(2, label100);
  write_cifar100_file(t.file("c100.bin"), d.x, Tensor::zeros({2}, DType::i32), d.y);
  auto raw100 = read_raw(t.file("c100.bin"));
  raw100[3074] = 20;  // record 1's coarse label
  write_raw(t.file("coarse20.bin"), raw100);
  expect_error_containing(
      [&] { read_cifar_file(t.file("coarse20.bin"), CifarKind::cifar100_fine); },
      {"coarse20.bin", "coarse label 20", "record 1"});
  raw100[3074] = 0;
  raw100[1] = 100;  // record 0's fine label
  write_raw(t.file("fine100.bin"), raw100);
  expect_error_containing(
      [&] { read_cifar_file(t.file("fine100.bin"), CifarKind::cifar100_coarse); },
      {"fine100.bin", "fine label 100", "record 0"});

  expect_error_containing([&] { read_cifar_file(t.file("absent.bin"), CifarKind::cifar10); },
                          {"absent.bin"});
}

TEST(Cifar, Cifar10DirectoryConcatenatesBatchesInOrder) {
  TempDir t;
  const fs::path sub = t.path / "cifar-10-batches-bin";
  fs::create_directories(sub);
  // Batch b holds 2 images whose labels are b-1 and (b-1+5) % 10, so the order shows.
  for (int b = 1; b <= 5; ++b) {
    Dataset d = make_images(2, label10);
    d.y.i32()[0] = b - 1;
    d.y.i32()[1] = (b - 1 + 5) % 10;
    write_cifar_file((sub / ("data_batch_" + std::to_string(b) + ".bin")).string(), d,
                     CifarKind::cifar10);
  }
  write_cifar_file((sub / "test_batch.bin").string(), make_images(3, label10), CifarKind::cifar10);
  for (const fs::path& dir : {t.path, sub}) {  // the parent or the subdir itself
    const ImageSplit s = load_cifar_dir(dir.string(), CifarKind::cifar10);
    EXPECT_EQ(s.classes, 10);
    ASSERT_EQ(s.train.x.shape(), (Shape{10, 3, 32, 32}));
    ASSERT_EQ(s.test.x.shape(), (Shape{3, 3, 32, 32}));
    for (int b = 0; b < 5; ++b) {
      EXPECT_EQ(s.train.y.i32()[2 * b], b);
      EXPECT_EQ(s.train.y.i32()[2 * b + 1], (b + 5) % 10);
      EXPECT_EQ(s.train.x.f32()[(2 * b + 1) * kImage + 100],
                static_cast<float>(pixel_byte(1, 100)) / 255.0f);
    }
  }
  fs::remove(sub / "data_batch_3.bin");
  expect_error_containing([&] { load_cifar_dir(t.path.string(), CifarKind::cifar10); },
                          {"data_batch_3.bin"});
}

TEST(Cifar, Cifar100Directory) {
  TempDir t;
  const fs::path sub = t.path / "cifar-100-binary";
  fs::create_directories(sub);
  const Dataset train = make_images(3, label100), test = make_images(2, label100);
  const Dataset train_coarse = make_images(3, label20), test_coarse = make_images(2, label20);
  write_cifar100_file((sub / "train.bin").string(), train.x, train_coarse.y, train.y);
  write_cifar100_file((sub / "test.bin").string(), test.x, test_coarse.y, test.y);
  const ImageSplit fine = load_cifar_dir(t.path.string(), CifarKind::cifar100_fine);
  EXPECT_EQ(fine.classes, 100);
  expect_same(fine.train, train);
  expect_same(fine.test, test);
  const ImageSplit coarse = load_cifar_dir(sub.string(), CifarKind::cifar100_coarse);
  EXPECT_EQ(coarse.classes, 20);
  expect_same(coarse.train, train_coarse);
  expect_same(coarse.test, test_coarse);
}
