// Loaders check what a file declares before they allocate for it: an IDX header is read
// and checked (magic, dims, the dims' product, the other file's count) before the data is
// inflated; any gzipped file inflates only up to a bound; a PMLB text column that would
// one-hot into more values than memory holds is refused first. Before, a 3.5 MB IDX .gz was
// inflated whole (1.2 GB) before its header was looked at.
//
// Memory is measured as the growth of this process's peak RSS (ctest runs each test in its
// own process, so the peak starts near the loader's).
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "nets/data/idx.h"
#include "nets/data/pmlb.h"
#include "nets/data/registry.h"

namespace detdl::data {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path = fs::temp_directory_path() /
           ("detdl_limits_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::vector<std::uint8_t> idx_header(const std::vector<std::uint32_t>& dims) {
  std::vector<std::uint8_t> b = {0, 0, 0x08, static_cast<std::uint8_t>(dims.size())};
  for (std::uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(d >> s));
  return b;
}

// `head`, then `zero_mib` MiB of zero bytes, gzipped at level 1: a few hundred KB on disk.
void write_gz_bomb(const std::string& path, const std::vector<std::uint8_t>& head, int zero_mib) {
  gzFile f = gzopen(path.c_str(), "wb1");
  ASSERT_NE(f, nullptr);
  if (!head.empty()) gzwrite(f, head.data(), static_cast<unsigned>(head.size()));
  const std::vector<std::uint8_t> zeros(1 << 20, 0);
  for (int i = 0; i < zero_mib; ++i) gzwrite(f, zeros.data(), static_cast<unsigned>(zeros.size()));
  gzclose(f);
}

long peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;  // Linux: KiB
}

// Runs f; expects a std::runtime_error (not std::bad_alloc) containing every one of parts.
template <typename F>
void expect_refused(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL() << "no exception; expected one containing " << parts.at(0);
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "message: " << msg << "\nmissing: " << p;
  }
}

constexpr int kBombMib = 128;   // what the old loader would have inflated first
constexpr long kSlackMib = 48;  // growth allowed: buffers, not the bomb

TEST(DataLimits, IdxHeaderClaimingHugeDimsIsRefusedBeforeReadingData) {
  TempDir t;
  const std::string path = t.file("huge-images-idx3-ubyte.gz");
  write_gz_bomb(path, idx_header({1u << 31, 28, 28}), kBombMib);
  const long before = peak_rss_mib();
  expect_refused([&] { read_idx(path); },
                 {path, "2147483648 x 28 x 28", "declare more than 2147483648 bytes"});
  EXPECT_LT(peak_rss_mib() - before, kSlackMib)
      << "the body was inflated before the header was checked";
}

TEST(DataLimits, IdxBadMagicIsRefusedBeforeReadingData) {
  TempDir t;
  const std::string path = t.file("bad-magic.gz");
  write_gz_bomb(path, {0x1f, 0x00, 0x08, 0x03}, kBombMib);
  const long before = peak_rss_mib();
  expect_refused([&] { read_idx(path); }, {path, "magic"});
  EXPECT_LT(peak_rss_mib() - before, kSlackMib);
}

TEST(DataLimits, IdxTrailingStreamIsRefusedWithoutInflatingIt) {
  TempDir t;
  const std::string path = t.file("trailing.gz");
  std::vector<std::uint8_t> head = idx_header({2, 2, 2});
  head.insert(head.end(), 8, 7);
  write_gz_bomb(path, head, kBombMib);
  const long before = peak_rss_mib();
  expect_refused([&] { read_idx(path); }, {path, "more than 1048576 trailing bytes"});
  EXPECT_LT(peak_rss_mib() - before, kSlackMib);
}

TEST(DataLimits, IdxCountsAreComparedBeforeEitherFileIsRead) {
  TempDir t;
  // Images: a header for 6 images of 3x5 and then far less data than that; labels: 5. The
  // disagreement is found from the two headers, before the truncated data is read.
  std::vector<std::uint8_t> images = idx_header({6, 3, 5});
  images.insert(images.end(), 10, 1);
  std::ofstream(t.file("train-images-idx3-ubyte"), std::ios::binary)
      .write(reinterpret_cast<const char*>(images.data()),
             static_cast<std::streamsize>(images.size()));
  std::vector<std::uint8_t> labels = idx_header({5});
  labels.insert(labels.end(), {0, 1, 2, 3, 4});
  std::ofstream(t.file("train-labels-idx1-ubyte"), std::ios::binary)
      .write(reinterpret_cast<const char*>(labels.data()),
             static_cast<std::streamsize>(labels.size()));
  expect_refused([&] { load_mnist_dir(t.path.string()); },
                 {"train-labels-idx1-ubyte", "5 labels for 6 images"});
}

TEST(DataLimits, GzipInflatingPastTheBoundIsRefusedNamingTheFile) {
  TempDir t;
  const std::string path = t.file("long.bin.gz");
  write_gz_bomb(path, {}, kBombMib);
  const long before = peak_rss_mib();
  expect_refused([&] { read_file_bytes(path, std::uint64_t{4} << 20); },
                 {path, "longer than 4194304 bytes"});
  EXPECT_LT(peak_rss_mib() - before, kSlackMib);
  // Within the bound the content comes back whole.
  const std::string small = t.file("short.bin.gz");
  write_gz_bomb(small, {1, 2, 3}, 2);
  const auto bytes = read_file_bytes(small, std::uint64_t{4} << 20);
  ASSERT_EQ(bytes.size(), (std::size_t{2} << 20) + 3);
  EXPECT_EQ(bytes[2], 3);
}

TEST(DataLimits, PmlbOneHotWiderThanMemoryIsRefusedBeforeAllocating) {
  TempDir t;
  const std::string path = t.file("ids.tsv");
  {
    // A text ID column with a distinct value in every row would one-hot into rows x rows
    // floats (34,000^2 x 4 bytes = 4.6 GB).
    std::ofstream f(path);
    f << "id\tx\ttarget\n";
    for (int i = 0; i < 34000; ++i) f << "row" << i << '\t' << (i % 7) << '\t' << (i % 2) << '\n';
  }
  const long before = peak_rss_mib();
  expect_refused([&] { load_pmlb(path); }, {path, "column 'id'", "34000 distinct values"});
  EXPECT_LT(peak_rss_mib() - before, 256) << "the one-hot columns were allocated";
}

TEST(DataLimits, GeneratedSetsOfAbsurdSizeAreRefused) {
  const long before = peak_rss_mib();
  expect_refused([] { load_data("synthetic-cifar10:99999999999", DataOptions{}); },
                 {"synthetic-cifar10:99999999999", "row count of 8 to 1048576"});
  expect_refused([] { load_data("synthetic-mnist:5", DataOptions{}); }, {"synthetic-mnist:5"});
  EXPECT_LT(peak_rss_mib() - before, 64);
}

}  // namespace
}  // namespace detdl::data
