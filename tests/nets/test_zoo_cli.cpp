// Every net of the zoo trained by `detdl train` on a small data set that fits it: each run
// must exit 0 and print the final "weight hash" line. Before the CPU allocator outlived the
// static data set cache, every such run printed its hash and then crashed in the exit
// handlers (status 139), when the cache's tensors were freed into a destroyed allocator.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "tests/cli_run.h"

namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("detdl_zoo_cli_" + std::to_string(::getpid()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

void write_idx_gz(const fs::path& p, const std::vector<std::uint32_t>& dims,
                  const std::vector<std::uint8_t>& data) {
  std::vector<std::uint8_t> b = {0, 0, 0x08, static_cast<std::uint8_t>(dims.size())};
  for (std::uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(d >> s));
  b.insert(b.end(), data.begin(), data.end());
  gzFile f = gzopen(p.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, b.data(), static_cast<unsigned>(b.size())), static_cast<int>(b.size()));
  gzclose(f);
}

// An MNIST-layout directory of n 1 x size x size images with labels 0..9 (for lenetN:classic,
// which takes 32x32, a size none of the generated sets has).
void write_idx_dir(const fs::path& dir, std::uint32_t n, std::uint32_t size) {
  fs::create_directories(dir);
  for (const std::string half : {"train", "t10k"}) {
    std::vector<std::uint8_t> pixels(std::size_t{n} * size * size), labels(n);
    for (std::size_t i = 0; i < pixels.size(); ++i)
      pixels[i] = static_cast<std::uint8_t>((i * 37 + 11) % 256);
    for (std::uint32_t i = 0; i < n; ++i) labels[i] = static_cast<std::uint8_t>(i % 10);
    write_idx_gz(dir / (half + "-images-idx3-ubyte.gz"), {n, size, size}, pixels);
    write_idx_gz(dir / (half + "-labels-idx1-ubyte.gz"), {n}, labels);
  }
}

// A PMLB-style table: two numeric inputs and a target that is binary (0/1) or numeric with
// more than 20 distinct values (regression).
void write_tsv(const fs::path& p, bool binary) {
  std::ofstream f(p);
  f << "a\tb\ttarget\n";
  for (int i = 0; i < 96; ++i) {
    const double a = (i * 37 % 96) / 96.0, b = (i * 53 % 96) / 96.0;
    f << a << '\t' << b << '\t';
    if (binary)
      f << (a + b > 1.0 ? 1 : 0) << '\n';
    else
      f << a * 3 + b << '\n';
  }
}

void expect_trains(const std::string& net, const std::string& data, const std::string& extra = "") {
  const auto r = detdl::test_util::run_detdl("train --quiet --no-metrics --epochs 1 --net " + net +
                                             " --data " + data + " " + extra);
  EXPECT_EQ(r.status, 0) << "--net " << net << " --data " << data << "\n" << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex("weight hash [0-9a-f]{16}  steps [1-9]")))
      << "--net " << net << " --data " << data << "\n"
      << r.output;
}

TEST(ZooCli, SimpleNetsExitCleanly) {
  expect_trains("mlp", "blobs", "--batch-size 250");
  expect_trains("mlp:16", "synthetic-mnist:16", "--batch-size 8");  // images, flattened
  expect_trains("cnn", "bars", "--batch-size 250");
}

TEST(ZooCli, LeNetsExitCleanly) {
  for (const std::string net :
       {"lenet1", "lenet4", "lenet5", "lenet1:keras", "lenet4:keras", "lenet5:keras"})
    expect_trains(net, "synthetic-mnist:16", "--batch-size 8");
  TempDir t;
  write_idx_dir(t.path / "idx32", 16, 32);
  for (const std::string net : {"lenet1:classic", "lenet4:classic", "lenet5:classic"})
    expect_trains(net, (t.path / "idx32").string(), "--batch-size 8");
}

TEST(ZooCli, ResNetAndWrnExitCleanly) {
  expect_trains("resnet20", "synthetic-cifar10:8", "--batch-size 8");
  expect_trains("wrn-10-1", "synthetic-cifar100:8", "--batch-size 8");
  expect_trains("wrn-10-1:0.3", "synthetic-cifar10:8", "--batch-size 8");
}

TEST(ZooCli, ButterShapesOnEveryTaskExitCleanly) {
  for (const std::string shape :
       {"rectangle", "trapezoid", "exponential", "wide_first_2x", "wide_first_4x", "wide_first_8x",
        "wide_first_16x", "rectangle_residual"})
    expect_trains("butter:" + shape + ":4:2048", "blobs", "--batch-size 500");
  TempDir t;
  write_tsv(t.path / "binary.tsv", true);
  write_tsv(t.path / "regression.tsv", false);
  for (const std::string data : {"binary.tsv", "regression.tsv"}) {
    expect_trains("butter:rectangle:3:256", (t.path / data).string(), "--batch-size 16");
    expect_trains("mlp:8", (t.path / data).string(), "--batch-size 16");
  }
}

}  // namespace
