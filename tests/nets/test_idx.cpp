// MNIST-format IDX files: the real MNIST (and Fashion-MNIST where Debian's package is
// installed), the study's 7500/2500 split of the test set, and broken files, each of which
// must be refused with the file's name in the message.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "nets/data/idx.h"

using namespace detdl;
using namespace detdl::data;
namespace fs = std::filesystem;

namespace {

// A fresh directory per test, removed at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path = fs::temp_directory_path() /
           ("detdl_idx_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_plain(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void write_gz(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  gzclose(f);
}

// An IDX file of unsigned bytes: magic 00 00 08 <ndims>, big-endian dims, data.
std::vector<std::uint8_t> idx_bytes(const std::vector<std::uint32_t>& dims,
                                    const std::vector<std::uint8_t>& data) {
  std::vector<std::uint8_t> b = {0, 0, 0x08, static_cast<std::uint8_t>(dims.size())};
  for (std::uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(d >> s));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

std::vector<std::uint8_t> pattern(std::size_t n, unsigned mult) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>((i * mult + 3) % 256);
  return v;
}

// Runs f, expects a std::runtime_error whose message contains every one of `parts`.
template <typename F>
void expect_error_containing(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL() << "no exception; expected one containing " << parts.at(0);
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "message: " << msg << "\nmissing: " << p;
  }
}

// A small MNIST-layout directory: n images of rows x cols, labels 0..9 cycling.
void write_small_mnist(const TempDir& t, std::uint32_t n_train, std::uint32_t n_test,
                       std::uint32_t rows, std::uint32_t cols) {
  auto labels = [](std::uint32_t n) {
    std::vector<std::uint8_t> l(n);
    for (std::uint32_t i = 0; i < n; ++i) l[i] = static_cast<std::uint8_t>((i * 7) % 10);
    return l;
  };
  write_gz(t.file("train-images-idx3-ubyte.gz"),
           idx_bytes({n_train, rows, cols}, pattern(std::size_t{n_train} * rows * cols, 11)));
  write_plain(t.file("train-labels-idx1-ubyte"), idx_bytes({n_train}, labels(n_train)));
  write_plain(t.file("t10k-images-idx3-ubyte"),
              idx_bytes({n_test, rows, cols}, pattern(std::size_t{n_test} * rows * cols, 13)));
  write_gz(t.file("t10k-labels-idx1-ubyte.gz"), idx_bytes({n_test}, labels(n_test)));
}

std::array<std::int64_t, 10> histogram(const Tensor& y) {
  std::array<std::int64_t, 10> h{};
  for (std::int64_t i = 0; i < y.numel(); ++i) ++h.at(static_cast<std::size_t>(y.i32()[i]));
  return h;
}

}  // namespace

TEST(Mnist, RealDataShapesLabelsAndPixels) {
  const ImageSplit s = load_mnist_dir(DETDL_SHARED_DIR "/data/mnist");
  ASSERT_EQ(s.train.x.shape(), (Shape{60000, 1, 28, 28}));
  ASSERT_EQ(s.train.y.shape(), (Shape{60000}));
  ASSERT_EQ(s.test.x.shape(), (Shape{10000, 1, 28, 28}));
  ASSERT_EQ(s.test.y.shape(), (Shape{10000}));
  EXPECT_EQ(s.classes, 10);
  // The first digits of MNIST's training and test files are a 5 and a 7.
  EXPECT_EQ(s.train.y.i32()[0], 5);
  EXPECT_EQ(s.test.y.i32()[0], 7);
  // MNIST's published class counts (LeCun's page; e.g. torchvision's docs).
  const std::array<std::int64_t, 10> train_counts = {5923, 6742, 5958, 6131, 5842,
                                                     5421, 5918, 6265, 5851, 5949};
  const std::array<std::int64_t, 10> test_counts = {980, 1135, 1032, 1010, 982,
                                                    892, 958,  1028, 974,  1009};
  EXPECT_EQ(histogram(s.train.y), train_counts);
  EXPECT_EQ(histogram(s.test.y), test_counts);
  // Pixels are bytes / 255: in [0, 1], each k / 255.0f for an integer k, with 0 and 1 present.
  for (const Tensor* x : {&s.train.x, &s.test.x}) {
    const float* p = x->f32();
    float lo = 1.0f, hi = 0.0f;
    std::int64_t bad = 0;
    for (std::int64_t i = 0; i < x->numel(); ++i) {
      lo = std::min(lo, p[i]);
      hi = std::max(hi, p[i]);
      const long k = std::lround(p[i] * 255.0);
      if (k < 0 || k > 255 || p[i] != static_cast<float>(k) / 255.0f) ++bad;
    }
    EXPECT_EQ(bad, 0);
    EXPECT_EQ(lo, 0.0f);
    EXPECT_EQ(hi, 1.0f);
  }
}

TEST(Mnist, SplitHeadGivesTheStudysValidationAndTestSets) {
  const ImageSplit s = load_mnist_dir(DETDL_SHARED_DIR "/data/mnist");
  const auto [validation, test] = split_head(s.test, 7500);
  ASSERT_EQ(validation.size(), 7500);
  ASSERT_EQ(test.size(), 2500);
  EXPECT_EQ(validation.x.shape(), (Shape{7500, 1, 28, 28}));
  EXPECT_EQ(validation.y.i32()[0], 7);
  // Row 7500 of the official test set is the test split's row 0, pixels and label.
  EXPECT_EQ(test.y.i32()[0], s.test.y.i32()[7500]);
  EXPECT_EQ(test.y.i32()[2499], s.test.y.i32()[9999]);
  for (std::int64_t j = 0; j < 784; ++j) ASSERT_EQ(test.x.f32()[j], s.test.x.f32()[7500 * 784 + j]);
  const auto hv = histogram(validation.y), ht = histogram(test.y), h = histogram(s.test.y);
  for (int c = 0; c < 10; ++c) EXPECT_EQ(hv[c] + ht[c], h[c]);
  EXPECT_THROW(split_head(s.test, 0), std::invalid_argument);
  EXPECT_THROW(split_head(s.test, 10000), std::invalid_argument);
}

TEST(Mnist, FashionMnistFromDebianPackage) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(fs::path(dir) / "train-images-idx3-ubyte.gz") &&
      !fs::exists(fs::path(dir) / "train-images-idx3-ubyte"))
    GTEST_SKIP() << dir << " not installed (apt-get install dataset-fashion-mnist)";
  const ImageSplit s = load_mnist_dir(dir);
  ASSERT_EQ(s.train.x.shape(), (Shape{60000, 1, 28, 28}));
  ASSERT_EQ(s.test.x.shape(), (Shape{10000, 1, 28, 28}));
  // Fashion-MNIST is balanced by construction: 6000 / 1000 images per class.
  for (std::int64_t c : histogram(s.train.y)) EXPECT_EQ(c, 6000);
  for (std::int64_t c : histogram(s.test.y)) EXPECT_EQ(c, 1000);
}

TEST(Idx, SmallDirectoryMixingPlainAndGzip) {
  TempDir t;
  write_small_mnist(t, 6, 4, 3, 5);
  const ImageSplit s = load_mnist_dir(t.path.string());
  ASSERT_EQ(s.train.x.shape(), (Shape{6, 1, 3, 5}));
  ASSERT_EQ(s.test.x.shape(), (Shape{4, 1, 3, 5}));
  const auto train_bytes = pattern(6 * 15, 11), test_bytes = pattern(4 * 15, 13);
  for (std::size_t i = 0; i < train_bytes.size(); ++i)
    ASSERT_EQ(s.train.x.f32()[i], static_cast<float>(train_bytes[i]) / 255.0f);
  for (std::size_t i = 0; i < test_bytes.size(); ++i)
    ASSERT_EQ(s.test.x.f32()[i], static_cast<float>(test_bytes[i]) / 255.0f);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(s.train.y.i32()[i], (i * 7) % 10);
}

TEST(Idx, ReadIdxKeepsDimsAndBytes) {
  TempDir t;
  const auto data = pattern(2 * 3 * 4, 5);
  write_plain(t.file("a.idx"), idx_bytes({2, 3, 4}, data));
  const IdxArray a = read_idx(t.file("a.idx"));
  EXPECT_EQ(a.dims, (std::vector<std::int64_t>{2, 3, 4}));
  EXPECT_EQ(a.bytes, data);
}

TEST(Idx, BrokenFilesAreRefusedNamingTheFile) {
  TempDir t;
  const auto good = idx_bytes({2, 3, 3}, pattern(18, 3));

  auto wrong_type = good;
  wrong_type[2] = 0x09;
  write_plain(t.file("wrong-type.idx"), wrong_type);
  expect_error_containing([&] { read_idx(t.file("wrong-type.idx")); }, {"wrong-type.idx", "0x09"});

  auto nonzero_magic = good;
  nonzero_magic[0] = 0x1f;
  write_plain(t.file("bad-magic.idx"), nonzero_magic);
  expect_error_containing([&] { read_idx(t.file("bad-magic.idx")); }, {"bad-magic.idx", "magic"});

  write_plain(t.file("truncated.idx"), std::vector<std::uint8_t>(good.begin(), good.end() - 5));
  expect_error_containing([&] { read_idx(t.file("truncated.idx")); },
                          {"truncated.idx", "truncated", "13 bytes", "18"});

  write_plain(t.file("short-header.idx"),
              std::vector<std::uint8_t>(good.begin(), good.begin() + 9));
  expect_error_containing([&] { read_idx(t.file("short-header.idx")); },
                          {"short-header.idx", "header"});

  auto trailing = good;
  trailing.insert(trailing.end(), {1, 2, 3});
  write_plain(t.file("trailing.idx"), trailing);
  expect_error_containing([&] { read_idx(t.file("trailing.idx")); },
                          {"trailing.idx", "3 trailing bytes"});

  write_plain(t.file("empty.idx"), {});
  expect_error_containing([&] { read_idx(t.file("empty.idx")); }, {"empty.idx"});

  expect_error_containing([&] { read_idx(t.file("absent.idx")); }, {"absent.idx"});
}

TEST(Idx, TruncatedGzipIsRefusedNamingTheFile) {
  TempDir t;
  // Incompressible-ish data so that the gzip stream is long enough to cut in the middle.
  std::vector<std::uint8_t> data(20000);
  std::uint32_t state = 12345;
  for (auto& b : data) {
    state = state * 1664525u + 1013904223u;
    b = static_cast<std::uint8_t>(state >> 24);
  }
  write_gz(t.file("whole.idx.gz"), idx_bytes({20000}, data));
  EXPECT_EQ(read_idx(t.file("whole.idx.gz")).bytes, data);
  std::ifstream in(t.file("whole.idx.gz"), std::ios::binary);
  std::vector<std::uint8_t> gz((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
  ASSERT_GT(gz.size(), 10000u);
  // Cut inside the deflate data, and cut only the 8-byte gzip trailer (CRC + length).
  write_plain(t.file("cut-middle.idx.gz"),
              std::vector<std::uint8_t>(gz.begin(),
                                        gz.begin() + static_cast<std::ptrdiff_t>(gz.size() / 2)));
  expect_error_containing([&] { read_idx(t.file("cut-middle.idx.gz")); }, {"cut-middle.idx.gz"});
  write_plain(t.file("cut-trailer.idx.gz"), std::vector<std::uint8_t>(gz.begin(), gz.end() - 4));
  expect_error_containing([&] { read_idx(t.file("cut-trailer.idx.gz")); }, {"cut-trailer.idx.gz"});
}

TEST(Idx, DirectoryErrorsNameTheFile) {
  {
    TempDir t;
    write_small_mnist(t, 6, 4, 3, 5);
    write_plain(t.file("train-labels-idx1-ubyte"), idx_bytes({5}, {0, 1, 2, 3, 4}));
    expect_error_containing([&] { load_mnist_dir(t.path.string()); },
                            {"train-labels-idx1-ubyte", "5 labels for 6 images"});
  }
  {
    TempDir t;
    write_small_mnist(t, 6, 4, 3, 5);
    fs::remove(t.file("t10k-labels-idx1-ubyte.gz"));
    write_gz(t.file("t10k-labels-idx1-ubyte.gz"), idx_bytes({4}, {0, 1, 10, 3}));
    expect_error_containing([&] { load_mnist_dir(t.path.string()); },
                            {"t10k-labels-idx1-ubyte.gz", "label 10"});
  }
  {
    TempDir t;
    write_small_mnist(t, 6, 4, 3, 5);
    fs::remove(t.file("t10k-images-idx3-ubyte"));
    expect_error_containing([&] { load_mnist_dir(t.path.string()); },
                            {"t10k-images-idx3-ubyte", "missing"});
  }
  {
    TempDir t;
    write_small_mnist(t, 6, 4, 3, 5);
    write_plain(t.file("train-labels-idx1-ubyte"), idx_bytes({6, 1}, {0, 1, 2, 3, 4, 5}));
    expect_error_containing([&] { load_mnist_dir(t.path.string()); },
                            {"train-labels-idx1-ubyte", "1 dim"});
  }
}
