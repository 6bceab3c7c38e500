#include "engine/checkpoint.h"

#include "engine/atomic_file.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace detdl {
namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("checkpoint " + path + ": " + what);
}

std::uint32_t crc32_of(const std::string& bytes) {
  uLong c = crc32(0L, Z_NULL, 0);
  // zlib's length is 32-bit: feed large buffers in pieces.
  std::size_t off = 0;
  while (off < bytes.size()) {
    const std::size_t n = std::min<std::size_t>(bytes.size() - off, 1u << 30);
    c = crc32(c, reinterpret_cast<const Bytef*>(bytes.data() + off), static_cast<uInt>(n));
    off += n;
  }
  return static_cast<std::uint32_t>(c);
}

std::string hex8(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

// The metadata in one canonical byte string: every pair but the two CRCs, in key order,
// each as key NUL value NUL (so no two different maps give the same bytes).
std::string canonical_metadata(const std::map<std::string, std::string>& meta) {
  std::string out;
  for (const auto& [k, v] : meta) {
    if (k == kDataCrcKey || k == kMetaCrcKey) continue;
    out += k;
    out.push_back('\0');
    out += v;
    out.push_back('\0');
  }
  return out;
}

}  // namespace

const Tensor* TensorFile::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

void save_safetensors(const std::string& path, const TensorFile& file) {
  json header = json::object();
  std::string data;
  for (const auto& [name, t] : file.tensors) {
    if (name == "__metadata__")
      throw std::invalid_argument("a tensor may not be named __metadata__");
    const std::size_t begin = data.size();
    const std::size_t bytes = static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype());
    const Tensor host = t.to(Device::cpu);  // device tensors are saved from a host copy
    data.append(static_cast<const char*>(host.impl().storage->data), bytes);
    header[name] = {{"dtype", t.dtype() == DType::f32 ? "F32" : "I32"},
                    {"shape", t.shape()},
                    {"data_offsets", {begin, begin + bytes}}};
  }
  json meta = json::object();
  for (const auto& [k, v] : file.metadata) meta[k] = v;
  meta[kDataCrcKey] = hex8(crc32_of(data));
  meta[kMetaCrcKey] = hex8(crc32_of(canonical_metadata(file.metadata)));
  header["__metadata__"] = meta;
  std::string h = header.dump();
  while (h.size() % 8) h.push_back(' ');  // the format allows trailing spaces for alignment
  const std::uint64_t n = h.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));

  std::string bytes(reinterpret_cast<const char*>(len), 8);
  bytes += h;
  bytes += data;
  write_file_atomically(path, bytes, "checkpoint " + path);
}

TensorFile load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open (missing or unreadable)");
  in.seekg(0, std::ios::end);
  const std::uint64_t size = static_cast<std::uint64_t>(in.tellg());
  in.seekg(0);
  if (size < 8)
    fail(path,
         "truncated: " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<std::uint64_t>(len[i]) << (8 * i);
  if (n > size - 8)
    fail(path, "truncated or not a safetensors file: header length " + std::to_string(n) +
                   " exceeds the file's remaining " + std::to_string(size - 8) + " bytes");
  std::string h(n, '\0');
  in.read(h.data(), static_cast<std::streamsize>(n));
  json header;
  try {
    header = json::parse(h);
  } catch (const std::exception& e) {
    fail(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail(path, "header is not a JSON object");
  const std::uint64_t data_size = size - 8 - n;
  std::string data(data_size, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data_size));
  if (!in) fail(path, "read failed");

  TensorFile file;
  if (header.contains("__metadata__")) {
    const auto& meta = header["__metadata__"];
    if (!meta.is_object()) fail(path, "__metadata__ is not an object");
    for (auto it = meta.begin(); it != meta.end(); ++it) {
      if (!it.value().is_string()) fail(path, "__metadata__." + it.key() + " is not a string");
      file.metadata[it.key()] = it.value().get<std::string>();
    }
  }
  // Tensors in order of their data offsets (the JSON object's own order is alphabetical).
  struct Entry {
    std::string name;
    std::uint64_t begin, end;
    DType dtype;
    Shape shape;
  };
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const std::string& name = it.key();
    const auto& e = it.value();
    try {
      const std::string dt = e.at("dtype").get<std::string>();
      DType dtype;
      if (dt == "F32")
        dtype = DType::f32;
      else if (dt == "I32")
        dtype = DType::i32;
      else
        fail(path,
             "tensor '" + name + "': unsupported dtype " + dt + " (detdl stores F32 and I32)");
      // Lists of integers only: json's get would convert a float element (4.6e26) with an
      // out-of-range cast, undefined behaviour (fuzz_safetensors).
      auto integers = [&](const char* field) -> const json& {
        const json& v = e.at(field);
        if (!v.is_array())
          fail(path, "tensor '" + name + "': " + field + " is not a list of integers");
        for (const json& x : v)
          if (!x.is_number_integer())
            fail(path, "tensor '" + name + "': " + field + " is not a list of integers");
        return v;
      };
      Shape shape = integers("shape").get<Shape>();
      // Sizes checked before anything multiplies them: the product of the non-zero sizes
      // must fit an int64 (shape_numel multiplies in order, so [2^32, 2^32, 0] would
      // overflow before the 0), and the element count must fit the data section; a count
      // that wraps to the byte count given is refused, not allocated (fuzz_safetensors).
      std::uint64_t nonzero = 1;
      bool has_zero = false;
      for (auto d : shape) {
        if (d < 0) fail(path, "tensor '" + name + "': negative size in shape");
        if (d == 0) {
          has_zero = true;
        } else if (nonzero >
                   static_cast<std::uint64_t>(INT64_MAX) / static_cast<std::uint64_t>(d)) {
          fail(path, "tensor '" + name + "': shape " + shape_str(shape) +
                         " has more elements than an int64 holds");
        } else {
          nonzero *= static_cast<std::uint64_t>(d);
        }
      }
      const std::uint64_t elements = has_zero ? 0 : nonzero;
      if (elements > data_size / 4)
        fail(path, "tensor '" + name + "': shape " + shape_str(shape) + " needs more than the " +
                       std::to_string(data_size) + "-byte data section");
      const auto off = integers("data_offsets").get<std::vector<std::uint64_t>>();
      if (off.size() != 2 || off[0] > off[1]) fail(path, "tensor '" + name + "': bad data_offsets");
      if (off[1] > data_size)
        fail(path, "truncated: tensor '" + name + "' ends at byte " + std::to_string(off[1]) +
                       " of a " + std::to_string(data_size) + "-byte data section");
      if (off[1] - off[0] != elements * 4)
        fail(path, "tensor '" + name + "': data_offsets do not match shape " + shape_str(shape));
      entries.push_back({name, off[0], off[1], dtype, shape});
    } catch (const nlohmann::json::exception& ex) {
      fail(path, "tensor '" + name + "': malformed entry (" + ex.what() + ")");
    }
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  std::uint64_t expect = 0;
  for (const auto& e : entries) {
    if (e.begin != expect) fail(path, "tensor '" + e.name + "': data overlaps or leaves a hole");
    expect = e.end;
  }
  if (expect != data_size)
    fail(path, "data section is " + std::to_string(data_size) + " bytes but the tensors cover " +
                   std::to_string(expect) + " (truncated or trailing garbage)");
  if (auto it = file.metadata.find(kDataCrcKey); it != file.metadata.end()) {
    const std::string crc = hex8(crc32_of(data));
    if (it->second != crc)
      fail(path, "corrupt: CRC-32 of the data is " + crc + ", header says " + it->second);
  }
  if (auto it = file.metadata.find(kMetaCrcKey); it != file.metadata.end()) {
    const std::string crc = hex8(crc32_of(canonical_metadata(file.metadata)));
    if (it->second != crc)
      fail(path, "corrupt or edited: CRC-32 of the metadata is " + crc + ", header says " +
                     it->second + " (a metadata field was changed after the file was written)");
  }
  for (const auto& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    if (e.end > e.begin)
      std::memcpy(t.impl().storage->data, data.data() + e.begin, e.end - e.begin);
    file.tensors.emplace_back(e.name, t);
  }
  return file;
}

}  // namespace detdl
