// A net, a data set and a loss that cannot train together are refused before training,
// with a message naming the net, the data set and (where it is the problem) the loss,
// instead of an op's shape error from deep inside the first step ("pool2d_shape: KH must
// be ...", two tensor shapes for a loss).
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "nets/compat.h"
#include "nets/experiment.h"
#include "tests/cli_run.h"

namespace detdl::nets {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path = fs::temp_directory_path() /
           ("detdl_compat_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(path);
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
  gzwrite(f, b.data(), static_cast<unsigned>(b.size()));
  gzclose(f);
}

// MNIST layout with n images of size x size.
std::string write_images(const fs::path& dir, std::uint32_t n, std::uint32_t size) {
  fs::create_directories(dir);
  for (const std::string half : {"train", "t10k"}) {
    std::vector<std::uint8_t> pixels(std::size_t{n} * size * size), labels(n);
    for (std::size_t i = 0; i < pixels.size(); ++i)
      pixels[i] = static_cast<std::uint8_t>(i * 29 % 256);
    for (std::uint32_t i = 0; i < n; ++i) labels[i] = static_cast<std::uint8_t>(i % 10);
    write_idx_gz(dir / (half + "-images-idx3-ubyte.gz"), {n, size, size}, pixels);
    write_idx_gz(dir / (half + "-labels-idx1-ubyte.gz"), {n}, labels);
  }
  return dir.string();
}

// The message of the std::invalid_argument run_experiment throws (empty: none).
std::string refusal(const std::string& net, const std::string& data,
                    const std::string& loss = "auto") {
  Experiment e;
  e.net = net;
  e.data = data;
  e.loss = loss;
  e.epochs = 1;
  e.batch_size = 8;
  try {
    run_experiment(e);
  } catch (const std::invalid_argument& ex) {
    return ex.what();
  }
  return "";
}

// A hand-made bundle: float targets y (N, 1) of `task`, or class labels for multiclass.
data::DataBundle bundle(const std::string& name, data::Task task, const Shape& sample,
                        std::int64_t outputs, float target = 0.5f) {
  data::DataBundle b;
  b.name = name;
  b.task = task;
  b.outputs = outputs;
  b.loss = task == data::Task::multiclass ? LossKind::softmax_ce
           : task == data::Task::binary   ? LossKind::bce
                                          : LossKind::mse;
  b.sample_shape = sample;
  Shape xs{4};
  xs.insert(xs.end(), sample.begin(), sample.end());
  for (Dataset* d : {&b.train, &b.test}) {
    d->x = Tensor::zeros(xs);
    d->y = task == data::Task::multiclass ? Tensor::zeros({4}, DType::i32)
                                          : Tensor::full({4, 1}, target);
  }
  return b;
}

std::string check_message(const std::string& net, const data::DataBundle& b,
                          const std::string& loss = "auto") {
  try {
    check_fits(net, b, loss);
  } catch (const std::invalid_argument& ex) {
    return ex.what();
  }
  return "";
}

TEST(Compat, ImageNetOnTooSmallImagesNamesNetDataAndSizes) {
  TempDir t;
  const std::string tiny = write_images(t.path / "tiny", 8, 1);
  EXPECT_EQ(refusal("cnn", tiny),
            "--net cnn does not fit --data " + tiny +
                ": images are 1x1, cnn needs at least 2x2 (its 2x2 max pooling)");
  // The smallest size it needs is enough: a 2x2 set trains.
  const std::string small = write_images(t.path / "small", 8, 2);
  EXPECT_EQ(refusal("cnn", small), "");
  // Through the CLI: the same message and a failing status, not the op's shape error.
  const auto r = test_util::run_detdl("train --net cnn --epochs 1 --data " + tiny);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--net cnn does not fit --data " + tiny + ": images are 1x1"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("pool2d"), std::string::npos) << r.output;
}

TEST(Compat, NetsOnDataOfTheWrongShape) {
  EXPECT_EQ(
      refusal("cnn", "blobs"),
      "--net cnn does not fit --data blobs: rows are flat (16 values), cnn needs C x H x W images");
  EXPECT_EQ(
      refusal("lenet5", "bars"),
      "--net lenet5 does not fit --data bars: images are 1x12x12, lenet5 needs 1x28x28 images");
  EXPECT_EQ(refusal("lenet1:classic", "synthetic-mnist:8"),
            "--net lenet1:classic does not fit --data synthetic-mnist:8: images are 1x28x28, "
            "lenet1 needs 1x32x32 images");
  EXPECT_EQ(refusal("resnet20", "synthetic-mnist:8"),
            "--net resnet20 does not fit --data synthetic-mnist:8: images are 1x28x28, resnet20 "
            "needs 3x32x32 images");
  EXPECT_EQ(refusal("wrn-10-1", "blobs"),
            "--net wrn-10-1 does not fit --data blobs: rows are flat (16 values), wrn-10-1 needs "
            "3x32x32 images");
  // BUTTER's dense nets take images as their pixel columns (flattened), like mlp.
  EXPECT_EQ(refusal("butter:rectangle:3:256", "synthetic-mnist:8"), "");
  // LeNet's 10 outputs, and the classifiers' need for class labels.
  EXPECT_EQ(check_message("lenet4", bundle("six", data::Task::multiclass, {1, 28, 28}, 6)),
            "--net lenet4 does not fit --data six: 6 classes, lenet4 has 10 outputs");
  EXPECT_EQ(check_message("resnet20", bundle("yes-no", data::Task::binary, {3, 32, 32}, 1)),
            "--net resnet20 does not fit --data yes-no: the targets are binary, 1 output, resnet20 "
            "is a classifier and "
            "needs class labels");
  // The mlp takes any rows (images are flattened).
  EXPECT_EQ(refusal("mlp:8", "synthetic-mnist:8"), "");
}

TEST(Compat, LossesThatDoNotFitTheTargetsNameLossDataAndNet) {
  const std::string bce = refusal("mlp", "blobs", "bce");
  EXPECT_EQ(
      bce.rfind(
          "--loss bce does not fit --data blobs (multiclass, 4 classes) with --net mlp: bce needs",
          0),
      0u)
      << bce;
  EXPECT_NE(bce.find("use softmax_ce"), std::string::npos) << bce;
  const std::string mse = refusal("cnn", "bars", "mse");
  EXPECT_EQ(mse.rfind("--loss mse does not fit --data bars (multiclass, 6 classes) with --net cnn: "
                      "mse needs float targets",
                      0),
            0u)
      << mse;
  EXPECT_EQ(check_message("mlp", bundle("yes-no", data::Task::binary, {3}, 1), "softmax_ce"),
            "--loss softmax_ce does not fit --data yes-no (binary, 1 output) with --net mlp: "
            "softmax_ce needs class "
            "labels, the targets are binary values; use bce");
  EXPECT_EQ(check_message("mlp", bundle("yes-no", data::Task::binary, {3}, 1), "keras_ce"),
            "--loss keras_ce does not fit --data yes-no (binary, 1 output) with --net mlp: "
            "keras_ce needs class labels, the targets are binary values; use bce");
  EXPECT_EQ(check_message("mlp", bundle("level", data::Task::regression, {3}, 1, 2.5f), "bce"),
            "--loss bce does not fit --data level (regression, 1 output) with --net mlp: bce needs "
            "targets in [0, 1], "
            "one is 2.500000; use mse");
  // Through the CLI: the loss's name, not two tensor shapes.
  const auto r = test_util::run_detdl("train --net mlp --data blobs --loss bce --epochs 1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--loss bce does not fit --data blobs"), std::string::npos) << r.output;
}

TEST(Compat, FittingPairsPass) {
  EXPECT_EQ(check_message("mlp", bundle("yes-no", data::Task::binary, {3}, 1)), "");
  EXPECT_EQ(check_message("mlp", bundle("yes-no", data::Task::binary, {3}, 1), "mse"), "");
  EXPECT_EQ(check_message("butter:rectangle:3:64", bundle("level", data::Task::regression, {3}, 1),
                          "bce"),
            "");
  EXPECT_EQ(check_message("cnn", bundle("pictures", data::Task::binary, {1, 4, 4}, 1)), "");
  EXPECT_EQ(check_message("lenet5", bundle("digits", data::Task::multiclass, {1, 28, 28}, 10)), "");
  EXPECT_EQ(
      check_message("lenet5:classic", bundle("digits", data::Task::multiclass, {1, 32, 32}, 10)),
      "");
  EXPECT_EQ(check_message("wrn-16-4", bundle("cifar", data::Task::multiclass, {3, 32, 32}, 100),
                          "softmax_ce"),
            "");
  EXPECT_EQ(check_message("lenet1", bundle("digits", data::Task::multiclass, {1, 28, 28}, 10),
                          "keras_ce"),
            "");
}

}  // namespace
}  // namespace detdl::nets
