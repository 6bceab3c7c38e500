// Regression tests for what the fuzz harnesses (fuzz/, docs/fuzzing.md) found in the data
// and checkpoint loaders. Each test loads the committed input from fuzz/corpus/<harness>/
// (the input that crashed the harness before the fix) through the loader, as the harness
// does, and checks the clean outcome: an error naming the file, or the documented result.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "engine/checkpoint.h"
#include "nets/experiment.h"
#include "nets/data/pmlb.h"
#include "tests/fuzz_corpus.h"

namespace fs = std::filesystem;
using detdl::test_util::corpus_file;
using detdl::test_util::error_of;

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The harnesses whose first byte picks a mode write the rest of the input to a file.
fs::path write_after_first_byte(const std::string& input, const std::string& name) {
  const fs::path p =
      fs::temp_directory_path() / ("detdl_fuzzreg_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(p, std::ios::binary) << input.substr(1);
  return p;
}

}  // namespace

// A shape of 2^62 F32 elements has 2^64 bytes, which wrapped to 0 and matched empty
// data_offsets: the tensor was made with a 0-byte buffer (fuzz_safetensors invariant).
TEST(FuzzRegressions, SafetensorsShapeWrappingToZeroBytesIsRefused) {
  const std::string path = corpus_file("fuzz_safetensors", "crash-shape-wraps-to-0-bytes");
  const std::string msg = error_of([&] { detdl::load_safetensors(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("needs more than the 0-byte data section"), std::string::npos) << msg;
}

// A shape of 2^32 x 2^32 x 4: the element count overflowed int64 in shape_numel (UBSan:
// signed integer overflow, engine/tensor.cpp).
TEST(FuzzRegressions, SafetensorsShapeOverflowingInt64IsRefused) {
  const std::string path = corpus_file("fuzz_safetensors", "crash-shape-numel-overflow");
  const std::string msg = error_of([&] { detdl::load_safetensors(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("has more elements than an int64 holds"), std::string::npos) << msg;
}

// [4198289258, 4294692796, 0] has 0 elements and matched data_offsets [0, 0], but
// Tensor::empty's shape_numel multiplied the first two sizes before the 0 (UBSan: signed
// integer overflow, engine/tensor.cpp:126, from load_safetensors). Found by a 600 s run.
TEST(FuzzRegressions, SafetensorsOverflowBeforeAZeroSizeIsRefused) {
  const std::string path = corpus_file("fuzz_safetensors", "crash-overflow-before-zero-dim");
  const std::string msg = error_of([&] { detdl::load_safetensors(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("has more elements than an int64 holds"), std::string::npos) << msg;
}

// A shape holding 4.6e26, a float: json's get<Shape> cast it to int64 out of range (UBSan
// float-cast-overflow, nlohmann/detail/conversions/from_json.hpp:67, from load_safetensors).
// Found by the CI-length run of fuzz_safetensors (scripts/fuzz.sh 60).
TEST(FuzzRegressions, SafetensorsFloatInShapeOrOffsetsIsRefused) {
  const std::string path = corpus_file("fuzz_safetensors", "crash-float-in-shape");
  const std::string msg = error_of([&] { detdl::load_safetensors(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("tensor 'a': shape is not a list of integers"), std::string::npos) << msg;
  // data_offsets go through the same check.
  const std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}})";
  std::string bytes(8, '\0');
  bytes[0] = static_cast<char>(header.size());
  const fs::path p = fs::temp_directory_path() /
                     ("detdl_fuzzreg_" + std::to_string(::getpid()) + "_offsets.safetensors");
  std::ofstream(p, std::ios::binary) << bytes << header << std::string(4, '\0');
  const std::string msg2 = error_of([&] { detdl::load_safetensors(p.string()); });
  fs::remove(p);
  EXPECT_NE(msg2.find("tensor 'a': data_offsets is not a list of integers"), std::string::npos)
      << msg2;
}

// A continuous column from -1.7e308 to 1.7e308: hi - lo overflowed to inf and min-max
// scaling gave NaN for most rows (fuzz_pmlb invariant: inputs in [0, 1]). Not an error:
// the column is valid, so it must load, scaled into [0, 1] like any other.
TEST(FuzzRegressions, PmlbColumnSpanningMoreThanDblMaxScalesIntoUnitRange) {
  const std::string input = read_bytes(corpus_file("fuzz_pmlb", "crash-range-overflows-to-nan"));
  ASSERT_FALSE(input.empty());
  const fs::path p = write_after_first_byte(input, "range.tsv");
  const detdl::data::TabularData t = detdl::data::load_pmlb(p.string());
  fs::remove(p);
  ASSERT_EQ(t.input_columns.front(), "a");  // min-max scaled, not one-hot
  const std::int64_t n = t.all.x.dim(0), f = t.n_inputs;
  ASSERT_EQ(n, 21);
  for (std::int64_t r = 0; r < n; ++r) {
    const float v = t.all.x.f32()[r * f];
    EXPECT_TRUE(v >= 0.0f && v <= 1.0f) << "row " << r << ": " << v;
  }
  EXPECT_EQ(t.all.x.f32()[0], 0.0f);            // the minimum
  EXPECT_EQ(t.all.x.f32()[(n - 1) * f], 1.0f);  // the maximum
}

// schedule.milestones with a float element of 1.8e36: json's get<std::vector<int64_t>>
// converted it with an out-of-range float-to-integer cast (UBSan: float-cast-overflow in
// nlohmann/detail/conversions/from_json.hpp, from FieldReader::get in nets/experiment.cpp).
TEST(FuzzRegressions, ExperimentFloatMilestoneIsRefused) {
  const std::string path =
      corpus_file("fuzz_experiment_json", "crash-float-milestone-cast-overflow.json");
  const nlohmann::json j = nlohmann::json::parse(read_bytes(path));
  const std::string msg = error_of([&] { detdl::nets::experiment_from_json(j, path); });
  EXPECT_NE(msg.find(path + ".schedule.milestones: expected a list of integers"), std::string::npos)
      << msg;
  // Any float is refused, not truncated (2.5 used to become milestone 2 silently).
  const std::string msg2 = error_of([&] {
    detdl::nets::experiment_from_json(
        nlohmann::json::parse(R"({"schedule": {"milestones": [2.5]}})"), "e.json");
  });
  EXPECT_NE(msg2.find("e.json.schedule.milestones: expected a list of integers"), std::string::npos)
      << msg2;
}
