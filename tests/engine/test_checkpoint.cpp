// safetensors checkpoints: round trip, and clear errors for bad files.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <cstring>
#include <unistd.h>

#include "engine/checkpoint.h"

using namespace detdl;
namespace fs = std::filesystem;

namespace {

fs::path temp_file(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("detdl_ckpt_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / name;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_all(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << s;
}

std::string error_of(const fs::path& p) {
  try {
    load_safetensors(p.string());
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TensorFile sample() {
  TensorFile f;
  f.tensors.emplace_back("w", Tensor::from_vector({2, 3}, {1, -2, 3.5f, 0, -0.0f, 1e-30f}));
  f.tensors.emplace_back("labels", Tensor::from_vector_i32({3}, {7, -1, 2}));
  f.tensors.emplace_back("empty", Tensor::zeros({0}));
  f.metadata["step"] = "42";
  return f;
}

}  // namespace

TEST(Checkpoint, RoundTripKeepsBitsNamesOrderAndMetadata) {
  const auto p = temp_file("round.safetensors");
  save_safetensors(p.string(), sample());
  const TensorFile g = load_safetensors(p.string());
  ASSERT_EQ(g.tensors.size(), 3u);
  EXPECT_EQ(g.tensors[0].first, "w");
  EXPECT_EQ(g.tensors[1].first, "labels");
  EXPECT_EQ(g.tensors[0].second.shape(), (Shape{2, 3}));
  EXPECT_EQ(std::memcmp(g.tensors[0].second.f32(), sample().tensors[0].second.f32(), 24), 0);
  EXPECT_EQ(g.tensors[1].second.i32()[1], -1);
  EXPECT_EQ(g.metadata.at("step"), "42");
  EXPECT_FALSE(fs::exists(p.string() + ".tmp"));
  // The header length is little-endian and the header is 8-byte aligned (format rule).
  const std::string bytes = read_all(p);
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes[8], '{');
}

TEST(Checkpoint, MissingFileIsNamed) {
  const std::string e = error_of(temp_file("does_not_exist.safetensors"));
  EXPECT_NE(e.find("does_not_exist.safetensors"), std::string::npos) << e;
}

TEST(Checkpoint, TruncatedFilesAreRefusedAtEveryLength) {
  const auto p = temp_file("trunc.safetensors");
  save_safetensors(p.string(), sample());
  const std::string full = read_all(p);
  const auto q = temp_file("trunc_cut.safetensors");
  for (std::size_t len : {std::size_t{0}, std::size_t{5}, std::size_t{8}, std::size_t{20},
                          full.size() - 1, full.size() - 12}) {
    write_all(q, full.substr(0, len));
    const std::string e = error_of(q);
    EXPECT_NE(e.find("trunc_cut.safetensors"), std::string::npos) << "length " << len << ": " << e;
  }
}

TEST(Checkpoint, CorruptDataFailsTheCrc) {
  const auto p = temp_file("crc.safetensors");
  save_safetensors(p.string(), sample());
  std::string bytes = read_all(p);
  bytes[bytes.size() - 3] ^= 0x40;
  write_all(p, bytes);
  const std::string e = error_of(p);
  EXPECT_NE(e.find("CRC"), std::string::npos) << e;
}

TEST(Checkpoint, WrongMagicAndBadHeaderAreClearErrors) {
  const auto p = temp_file("junk.safetensors");
  write_all(p, "PK\x03\x04 this is a zip file, not a checkpoint, really");
  EXPECT_NE(error_of(p).find("header length"), std::string::npos) << error_of(p);
  std::string bad = std::string("\x08\0\0\0\0\0\0\0", 8) + "{not jso";
  write_all(p, bad);
  EXPECT_NE(error_of(p).find("JSON"), std::string::npos) << error_of(p);
  std::string h = R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})";
  while (h.size() % 8) h += ' ';
  std::string len(8, '\0');
  len[0] = static_cast<char>(h.size());
  write_all(p, len + h + std::string(8, '\0'));
  EXPECT_NE(error_of(p).find("F64"), std::string::npos) << error_of(p);
}

TEST(Checkpoint, AnUnwritableDestinationIsAnErrorAndLeavesTheOldFile) {
  const auto p = temp_file("keep.safetensors");
  save_safetensors(p.string(), sample());
  EXPECT_THROW(save_safetensors("/nonexistent_dir_detdl/x.safetensors", sample()),
               std::runtime_error);
  EXPECT_NO_THROW(load_safetensors(p.string()));
}
